"""The service's settings: one validated model, from arguments, a config file or the environment.

``failwise serve`` builds :class:`Settings` from its options and an optional ``--config``
file (TOML, JSON or YAML; options given on the command line win), then hands them to every
worker process through the environment variable :data:`SETTINGS_ENV` as JSON, so the
workers that uvicorn's supervisor starts (and restarts) all run with the same settings.

Every error names the key, what it got and what was expected, e.g.
``config.toml: `workers` got 'two' (str); expected a valid integer``.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from failwise.exceptions import InputError
from failwise.store import ServiceLevels

__all__ = [
    "SETTINGS_ENV",
    "Settings",
    "load_settings",
    "settings_error",
    "settings_from_env",
]

#: The environment variable that carries the settings (JSON) to the worker processes.
SETTINGS_ENV = "FAILWISE_SERVE_SETTINGS"

_Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_Finite = Annotated[float, Field(allow_inf_nan=False)]


class Settings(BaseModel):
    """Everything ``failwise serve`` and :func:`~failwise.service.create_app` need.

    Attributes
    ----------
    policy : path or None
        A policy artefact (``failwise.artifacts.save``), a folder holding ``policy`` and
        (optionally) ``calibrator`` artefacts, or a folder written by ``--save-policy``
        (one sub-folder per model; see ``policy_model``). None: the service decides
        nothing (``/v1/decisions`` answers 503) but serves the queue and metrics.
    policy_model : str or None
        Which model's sub-folder of a ``--save-policy`` folder to serve; by default the
        only one, or the first by name when there are several.
    store : str
        Store URL; default a SQLite file ``failwise.db`` in the working directory.
    model : str or None
        ``module:attribute`` of a model to call on ``input`` (an object with
        ``predict_proba`` or ``decision_function``, or a callable ``x -> scores``).
        Without one, clients send ``scores``.
    features : str or None
        ``module:attribute`` of the feature function the policy's monitor reference was
        built with (its ``feature_source``): an object with ``encode`` or ``transform``
        over a list of inputs (a sentence embedder, a vectoriser), or a callable
        ``x -> 1-D vector``. With ``model``, every decision made from an ``input`` records
        its features (``Guard(features=...)``), which ``failwise monitor`` and
        ``failwise gaps`` compare with the reference.
    workers, host, port
        uvicorn's worker processes and where they listen.
    max_batch_size : int
        Most inputs in one ``POST /v1/decisions:batch``.
    group_commit : int
        Most single decisions (``POST /v1/decisions``) arriving at the same time that
        a worker records in one transaction (:class:`failwise.runtime.GroupCommit`); each
        is answered once that transaction commits. 1 records every decision on its own.
    max_body_bytes : int
        Largest request body; larger ones get 413 before they are parsed.
    concurrency_limit : int
        Most requests in flight per worker; beyond it requests get 503 with
        ``Retry-After`` at once.
    session_secret : str or None
        Key that signs session cookies; by default a random one kept in the store, shared
        by every worker.
    session_max_age_s : float
        Lifetime of a session cookie.
    cookie_secure : bool or None
        Mark cookies ``Secure``; None: when the request came over https.
    metrics_public : bool
        Serve the Prometheus ``/metrics`` without a key (default: viewer role or above).
    lease_s : float
        Default lease of a claimed queue item.
    undo_window_s : float
        How long after resolving an item its reviewer may undo the resolution.
    audit_rate : float
        Share of non-escalated decisions sampled for audit (``Guard(audit_rate=...)``).
    model_timeout_s : float or None
        Longest wait for the model (``Guard(timeout_s=...)``).
    sla_escalation_minutes, sla_default_minutes, sla_audit_minutes
        The review queue's service levels (:class:`failwise.store.ServiceLevels`): an
        escalation whose priority reaches ``min_priority`` is due ``minutes`` after it was
        queued (first matching ``[min_priority, minutes]`` pair), else after
        ``sla_default_minutes``; an audit after ``sla_audit_minutes``.
    readiness_timeout_s : float
        ``/readyz`` answers 503 when the database does not answer within this time.
    key_cache_s : float
        How long a worker trusts a verified API key before reading it again (a revoked
        key stops working within this time).
    labels : list of str or None
        The name of each label (class index → name), shown by the reviewer page and its
        label picker; None shows ``label 0``, ``label 1``…
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Path | None = None
    policy_model: str | None = None
    store: str = "sqlite:///failwise.db"
    model: str | None = None
    features: str | None = None
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    max_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    group_commit: Annotated[int, Field(ge=1, le=10_000)] = 64
    max_body_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    concurrency_limit: Annotated[int, Field(ge=1)] = 256
    session_secret: SecretStr | None = None
    session_max_age_s: _Seconds = 12 * 3600.0
    cookie_secure: bool | None = None
    metrics_public: bool = False
    lease_s: _Seconds = 300.0
    undo_window_s: _Seconds = 300.0
    audit_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    model_timeout_s: _Seconds | None = None
    sla_escalation_minutes: tuple[tuple[_Finite, _Seconds], ...] = (
        (0.8, 15.0),
        (0.5, 30.0),
        (0.0, 60.0),
    )
    sla_default_minutes: _Seconds = 120.0
    sla_audit_minutes: _Seconds = 1440.0
    readiness_timeout_s: _Seconds = 1.0
    key_cache_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 5.0
    labels: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] | None = None

    @field_validator("model", "features")
    @classmethod
    def _model_path(cls, value: str | None) -> str | None:
        if value is not None and (value.count(":") != 1 or not all(value.split(":"))):
            raise ValueError("expected 'module:attribute', e.g. 'mypackage.models:classifier'")
        return value

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("expected a store URL: sqlite:///path.db or postgresql://user@host/db")
        return value

    @field_validator("sla_escalation_minutes")
    @classmethod
    def _sla_rows(cls, value: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if not value:
            raise ValueError("expected at least one [min_priority, minutes] pair")
        return value

    def service_levels(self) -> ServiceLevels:
        """The review queue's due times, as every queue read derives them."""
        return ServiceLevels(
            escalation_minutes=self.sla_escalation_minutes,
            default_minutes=self.sla_default_minutes,
            audit_minutes=self.sla_audit_minutes,
        )

    def to_env(self) -> str:
        """The settings as the JSON that :func:`settings_from_env` reads back."""
        data = self.model_dump(mode="json")
        if self.session_secret is not None:
            data["session_secret"] = self.session_secret.get_secret_value()
        return json.dumps(data)


def _received(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def settings_error(error: ValidationError, source: str) -> InputError:
    """One message naming each bad key, what it got and what was expected."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            known = ", ".join(sorted(Settings.model_fields))
            lines.append(f"`{key}` is not a setting (known: {known})")
            continue
        expected = str(item["msg"]).removeprefix("Value error, ")
        expected = expected[0].lower() + expected[1:] if expected else expected
        expected = expected.removeprefix("input should be ").removeprefix("expected ")
        lines.append(f"`{key}` got {_received(item.get('input'))}; expected {expected}")
    return InputError(f"{source}: " + "; ".join(lines) + ".")


def _read_file(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the config file {path}: {exc.strerror or exc}.") from None
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise InputError(
                    f"{path}: reading YAML needs the `yaml` extra (pip install "
                    "'failwise[yaml]'); or write the config as TOML or JSON."
                ) from None
            data = yaml.safe_load(text)
        else:
            raise InputError(
                f"{path}: expected a .toml, .json, .yaml or .yml config file; got "
                f"{suffix or 'no suffix'!r}."
            )
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path} is not valid {suffix.lstrip('.').upper()}: {exc}.") from None
    except Exception as exc:  # yaml.YAMLError: yaml is optional, so caught by its base
        raise InputError(f"{path} is not valid YAML: {exc}.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: expected a table of settings (e.g. workers = 2); got a {type(data).__name__}."
        )
    section = data.get("serve", data) if set(data) <= {"serve"} else data
    if not isinstance(section, dict):
        raise InputError(f"{path}: `serve` must be a table of settings.")
    return dict(section)


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Settings from a config file (optional) with ``overrides`` on top (None: not given).

    Parameters
    ----------
    path : path, optional
        A ``.toml``, ``.json``, ``.yaml`` or ``.yml`` file: a table of settings, at the
        top level or under ``[serve]``.
    **overrides
        Settings given otherwise (the command line); None values are ignored.

    Raises
    ------
    InputError
        Naming each bad key, what it got and what was expected.

    Examples
    --------
    >>> load_settings(workers=2).workers
    2
    >>> try:
    ...     load_settings(workers="two")
    ... except Exception as error:
    ...     print(str(error)[:45])
    settings: `workers` got 'two' (str); expected
    """
    data: dict[str, Any] = {}
    source = "settings"
    if path is not None:
        data = _read_file(Path(path))
        source = str(path)
    data.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise settings_error(error, source) from None


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    """The settings that ``failwise serve`` put in :data:`SETTINGS_ENV`."""
    env = os.environ if environ is None else environ
    text = env.get(SETTINGS_ENV)
    if not text:
        raise InputError(
            f"{SETTINGS_ENV} is not set: start the service with `failwise serve`, or build "
            "the app with failwise.service.create_app(Settings(...))."
        )
    try:
        return Settings.model_validate_json(text)
    except ValidationError as error:
        raise settings_error(error, SETTINGS_ENV) from None
