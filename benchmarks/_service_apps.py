"""The same-run baselines of ``bench_service.py``: apps uvicorn starts as factories.

- :func:`bare_app`: a bare FastAPI app whose ``POST /v1/decisions`` parses the service's
  own request model (:class:`failwise.service.DecisionRequest`) and answers a small JSON
  object — no middleware, no authentication, no store: what FastAPI and uvicorn cost alone.
- :func:`auth_app`: the service's app (:func:`failwise.service.create_app`, with its
  middleware and store) plus two routes that parse the same request model and touch
  nothing else, one open and one behind the service's API-key dependency
  (``require("service")``): the ratio of their throughputs is what authentication costs.

Started as ``python benchmarks/_service_apps.py bare_app --port P --workers 2``, through
the service's own :func:`failwise.service.run_server` (so the baselines get the same
sockets as ``failwise serve``); ``auth_app`` reads the service settings from the
environment as ``failwise serve`` passes them.
"""

from __future__ import annotations

import argparse
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI

from failwise.service import Principal, create_app, require, run_server
from failwise.service._models import DecisionRequest
from failwise.service._settings import settings_from_env


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/decisions")
    def decide(body: DecisionRequest) -> dict[str, Any]:
        return {"action": "answer", "n_scores": len(body.scores or ())}

    return app


def auth_app() -> FastAPI:
    router = APIRouter(prefix="/bench")

    @router.post("/open")
    def open_route(body: DecisionRequest) -> dict[str, Any]:
        return {"action": "answer", "n_scores": len(body.scores or ())}

    @router.post("/auth")
    def auth_route(
        body: DecisionRequest, principal: Annotated[Principal, Depends(require("service"))]
    ) -> dict[str, Any]:
        return {"action": "answer", "n_scores": len(body.scores or ())}

    return create_app(settings_from_env(), routers=[router])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve a baseline app of bench_service.py.")
    parser.add_argument("app", choices=["bare_app", "auth_app"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    run_server(
        f"_service_apps:{args.app}",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )
