"""The app in process (httpx over ASGI): admission limits under concurrency, a configured
model, and a deployment's OpenAPI description."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from failwise import store
from failwise.exceptions import InputError
from failwise.service import Settings, create_app
from tests.service.conftest import N_CLASSES, scores


def three_scores(x: Any) -> list[float]:
    """A model ``x -> scores``: confident when the input says so."""
    return scores(0.99 if x == "sure" else 0.34)


class ProbaModel:
    """A model with ``predict_proba`` over a batch of inputs."""

    def predict_proba(self, xs: list[Any]) -> np.ndarray[Any, Any]:
        return np.array([three_scores(x) for x in xs])


PROBA_MODEL = ProbaModel()


def _token(url: str, role: str = "admin") -> dict[str, str]:
    with store.open(url) as opened:
        return {"Authorization": f"Bearer {opened.keys.create(role, role).token}"}


@contextlib.asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


def test_limits_refuse_big_bodies_and_a_second_request_in_flight(
    policy_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    headers = {**_token(url), "Content-Type": "application/json"}
    settings = Settings(policy=policy_dir, store=url, concurrency_limit=1, max_body_bytes=2048)
    app = create_app(settings)

    async def scenario() -> tuple[int, int, int, int, str | None, int]:
        async with _serve(app) as client:
            declared = await client.post("/v1/decisions", content=b"x" * 3000, headers=headers)
            started, finish = asyncio.Event(), asyncio.Event()

            async def slow_body() -> AsyncIterator[bytes]:
                yield b'{"scores": [0.99, 0.005, 0.005]'
                started.set()
                await finish.wait()
                yield b"}"

            async def big_body() -> AsyncIterator[bytes]:
                yield b'{"scores": [0.99, 0.005, 0.005], "context": {"t": "'
                yield b"x" * 3000

            slow = asyncio.create_task(
                client.post("/v1/decisions", content=slow_body(), headers=headers)
            )
            await started.wait()
            refused = await client.get("/v1/queue", headers=headers)
            live = await client.get("/livez")
            finish.set()
            done = await slow
            streamed = await client.post("/v1/decisions", content=big_body(), headers=headers)
            return (
                declared.status_code,
                refused.status_code,
                live.status_code,
                done.status_code,
                refused.headers.get("Retry-After"),
                streamed.status_code,
            )

    declared, refused, live, done, retry, streamed = asyncio.run(scenario())
    assert (declared, refused, live, done, streamed) == (413, 503, 200, 200, 413)
    assert retry == "1"


@pytest.mark.parametrize("model", ["three_scores", "PROBA_MODEL"])
def test_a_configured_model_decides_from_the_input(
    policy_dir: Path, tmp_path: Path, model: str
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    headers = _token(url, "service")
    spec = f"tests.service.test_in_process:{model}"
    app = create_app(Settings(policy=policy_dir, store=url, model=spec))
    with TestClient(app, headers=headers) as client:
        sure = client.post("/v1/decisions", json={"input": "sure", "context": {"q": 1}})
        unsure = client.post("/v1/decisions:batch", json={"items": [{"input": "hmm"}] * 2})
        both = client.post("/v1/decisions", json={"input": "x", "scores": scores(0.5)})
        mixed = client.post(
            "/v1/decisions:batch", json={"items": [{"input": "x"}, {"scores": scores(0.9)}]}
        )
        described = client.get("/openapi.json").json()
    assert sure.json()["action"] == "answer"
    assert [d["action"] for d in unsure.json()["decisions"]] == ["escalate", "escalate"]
    assert both.status_code == 422
    assert both.json()["error"]["code"] == "scores_or_input"
    assert mixed.status_code == 422
    assert mixed.json()["error"]["code"] == "mixed_batch"
    request = described["components"]["schemas"]["DecisionRequest"]
    assert request["properties"]["scores"]["minItems"] == N_CLASSES
    assert "input" in request["properties"]
    assert len(request["oneOf"]) == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_here:f", "cannot import 'no_such_module_here'"),
        ("tests.service.test_in_process:missing", "has no attribute 'missing'"),
        ("tests.service.test_in_process:N_CLASSES", "--model must name an object"),
    ],
)
def test_a_bad_model_is_refused_at_start(
    policy_dir: Path, tmp_path: Path, spec: str, message: str
) -> None:
    app = create_app(
        Settings(policy=policy_dir, store=f"sqlite:///{tmp_path / 'e.db'}", model=spec)
    )
    with pytest.raises(InputError, match=message), TestClient(app):
        pass


def test_without_a_policy_the_service_decides_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    headers = _token(url, "service")
    with TestClient(create_app(Settings(store=url)), headers=headers) as client:
        response = client.post("/v1/decisions", json={"scores": [0.5, 0.5]})
        described = client.get("/openapi.json").json()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_policy"
    assert "input" in described["components"]["schemas"]["DecisionRequest"]["properties"]


def test_create_app_needs_settings() -> None:
    with pytest.raises(TypeError, match=r"create_app needs failwise\.service\.Settings"):
        create_app({"store": "sqlite:///x.db"})  # type: ignore[arg-type]


def two_features(x: Any) -> list[float]:
    """A feature function ``x -> vector``."""
    return [float(len(str(x))), 1.0]


class Vectoriser:
    """A feature function with ``transform`` over a batch of inputs."""

    def transform(self, xs: list[Any]) -> np.ndarray[Any, Any]:
        return np.array([two_features(x) for x in xs])


VECTORISER = Vectoriser()


@pytest.mark.parametrize("features", ["two_features", "VECTORISER"])
def test_configured_features_are_recorded_with_each_decision_from_an_input(
    policy_dir: Path, tmp_path: Path, features: str
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    headers = _token(url, "service")
    module = "tests.service.test_in_process"
    settings = Settings(
        policy=policy_dir,
        store=url,
        model=f"{module}:three_scores",
        features=f"{module}:{features}",
    )
    with TestClient(create_app(settings), headers=headers) as client:
        one = client.post("/v1/decisions", json={"input": "sure"}).json()
        many = client.post("/v1/decisions:batch", json={"items": [{"input": "hmm!"}] * 2}).json()
        sent = client.post("/v1/decisions", json={"scores": scores(0.9)}).json()
    ids = [one["task_id"], *(d["task_id"] for d in many["decisions"]), sent["task_id"]]
    with store.open(url) as opened:
        recorded = opened.task_features(ids)
    assert sorted(recorded.task_ids) == sorted(ids[:3])  # sent scores carry no input
    np.testing.assert_array_equal(recorded.features, [[4.0, 1.0], [4.0, 1.0], [4.0, 1.0]])


@pytest.mark.parametrize(
    ("model", "features", "message"),
    [
        (None, "two_features", "--features computes each input's features.*needs --model"),
        ("three_scores", "missing", "--features .* has no attribute 'missing'"),
        ("three_scores", "N_CLASSES", "--features must name an object with encode or transform"),
    ],
)
def test_bad_features_are_refused_at_start(
    policy_dir: Path, tmp_path: Path, model: str | None, features: str, message: str
) -> None:
    module = "tests.service.test_in_process"
    settings = Settings(
        policy=policy_dir,
        store=f"sqlite:///{tmp_path / 'e.db'}",
        model=None if model is None else f"{module}:{model}",
        features=f"{module}:{features}",
    )
    with pytest.raises(InputError, match=message), TestClient(create_app(settings)):
        pass


def test_a_worker_without_its_store_answers_503_then_serves_once_it_opens(
    policy_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "not-yet"
    url = f"sqlite:///{folder / 'events.db'}"
    app = create_app(Settings(policy=policy_dir, store=url))
    body = {"scores": scores(0.99)}

    async def scenario() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with _serve(app) as client:
            down = [
                await client.get("/readyz"),
                await client.post("/v1/decisions", json=body),
                await client.get("/livez"),
            ]
            folder.mkdir()
            headers = _token(url, "service")
            for _ in range(200):  # the worker tries again every STORE_RETRY_S (1 s)
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            up = [
                await client.get("/readyz"),
                await client.post("/v1/decisions", json=body, headers=headers),
            ]
        return down, up

    down, up = asyncio.run(scenario())
    ready, decision, live = down
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert "does not exist" in ready.json()["detail"]
    assert decision.status_code == 503
    assert decision.headers["Retry-After"] == "1"
    assert "cannot reach its store yet" in decision.json()["error"]["message"]
    assert live.status_code == 200
    assert [response.status_code for response in up] == [200, 200]
    assert up[1].json()["action"] == "answer"
