"""Settings from a config file and the environment, and finding the policy to serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from failwise import artifacts
from failwise.exceptions import InputError
from failwise.service import SETTINGS_ENV, Settings, find_policy, load_settings
from failwise.service._settings import settings_from_env


def test_a_toml_file_with_a_serve_table_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "failwise.toml"
    path.write_text("[serve]\nworkers = 2\nport = 9000\nsla_audit_minutes = 60\n")
    settings = load_settings(path, port=9100, host=None)
    assert (settings.workers, settings.port, settings.host) == (2, 9100, "127.0.0.1")
    assert settings.service_levels().due_s("audit", 0.0) == 3600.0
    assert settings.service_levels().due_s("escalation", 0.9) == 900.0


def test_json_and_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"max_batch_size": 10}))
    (tmp_path / "a.yaml").write_text("concurrency_limit: 3\nmetrics_public: true\n")
    assert load_settings(tmp_path / "a.json").max_batch_size == 10
    loaded = load_settings(tmp_path / "a.yaml")
    assert (loaded.concurrency_limit, loaded.metrics_public) == (3, True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('workers = "two"', r"`workers` got 'two' \(str\); expected a valid integer"),
        ("workers = 0", r"`workers` got 0 \(int\); expected greater than or equal to 1"),
        ("colour = 1", r"`colour` is not a setting \(known: .*workers"),
        ('store = "mysql://x"', r"`store` got 'mysql://x' \(str\); expected a store URL"),
        ('model = "nocolon"', r"`model` got 'nocolon' \(str\); expected 'module:attribute'"),
        ("lease_s = -1", r"`lease_s` got -1 \(int\); expected greater than 0"),
        ("sla_escalation_minutes = []", r"`sla_escalation_minutes` got \[\] \(list\)"),
    ],
)
def test_a_bad_setting_is_named_with_what_it_got_and_what_was_expected(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(text + "\n")
    with pytest.raises(InputError, match=message) as caught:
        load_settings(path)
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("s.ini", "workers=2", "expected a .toml, .json, .yaml or .yml config file"),
        ("s.toml", "workers = = 2", "is not valid TOML"),
        ("s.json", "{", "is not valid JSON"),
        ("s.yaml", "a: [", "is not valid YAML"),
        ("s.json", "[1, 2]", "expected a table of settings"),
    ],
)
def test_an_unreadable_config_file_says_why(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_settings(path)
    with pytest.raises(InputError, match="cannot read the config file"):
        load_settings(tmp_path / "missing.toml")


def test_the_settings_travel_to_the_workers_through_the_environment() -> None:
    settings = Settings(workers=3, session_secret=SecretStr("s3cret"), sla_default_minutes=5)
    again = settings_from_env({SETTINGS_ENV: settings.to_env()})
    assert again == settings
    assert again.session_secret is not None
    assert again.session_secret.get_secret_value() == "s3cret"
    with pytest.raises(InputError, match=f"{SETTINGS_ENV} is not set"):
        settings_from_env({})
    with pytest.raises(InputError, match=f"{SETTINGS_ENV}: `port`"):
        settings_from_env({SETTINGS_ENV: json.dumps({"port": "x"})})


def test_the_policy_is_found_in_each_layout(policy_dir: Path, tmp_path: Path) -> None:
    assert find_policy(policy_dir) == (policy_dir, None)
    policy = artifacts.load(policy_dir)
    for model in ("b-model", "a-model"):
        artifacts.save(policy, tmp_path / "saved" / model / "policy")
    assert find_policy(tmp_path / "saved") == (tmp_path / "saved" / "a-model" / "policy", None)
    chosen = find_policy(tmp_path / "saved", "b-model")
    assert chosen == (tmp_path / "saved" / "b-model" / "policy", None)
    with pytest.raises(InputError, match=r"policy_model 'c' is not in .* \['a-model', 'b-model'\]"):
        find_policy(tmp_path / "saved", "c")
    with pytest.raises(InputError, match="no such folder"):
        find_policy(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no policy artefact"):
        find_policy(tmp_path / "empty")
