"""`failwise serve` and `failwise keys`: run the HTTP service and manage its API keys."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from failwise.cli._console import console, err_console, fail
from failwise.exceptions import FailwiseError

__all__ = ["keys_app", "serve"]

_DEFAULT_STORE = "sqlite:///failwise.db"
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help=f"Store URL (sqlite:///path.db or postgresql://...); default {_DEFAULT_STORE} "
        "in the working directory.",
    ),
]


def _open_store(url: str | None, *, create: bool = True) -> Any:
    from failwise import store

    try:
        return store.open(url or _DEFAULT_STORE, create=create)
    except FailwiseError as error:
        fail(str(error))


def serve(
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Policy artefact, or a folder written by `failwise demo --save-policy DIR`.",
        ),
    ] = None,
    store: StoreOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="module:attribute of a model to call on `input` (else: `scores`)."
        ),
    ] = None,
    policy_model: Annotated[
        str | None,
        typer.Option("--policy-model", help="Which model's folder of a --save-policy folder."),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            help="module:attribute of the feature function the reference was built with "
            "(with --model): each decision records its input's features for the monitor.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (default 1).")
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8000).")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML, JSON or YAML file of settings (options win)."),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Label names for the reviewer page, class 0 first: one per line, or a JSON "
            "list (overrides `labels` in --config).",
        ),
    ] = None,
) -> None:
    """Serve decisions, the review queue and product metrics over HTTP."""
    try:
        import uvicorn  # noqa: F401  (run_server needs it: refuse early without the extra)

        from failwise.service import (
            SETTINGS_ENV,
            check_label_count,
            find_policy,
            load_policy,
            load_settings,
            read_labels,
            run_server,
        )
    except ImportError:
        fail("`failwise serve` needs the `service` extra: pip install 'failwise[service]'.")
    if port is not None and not 1 <= port <= 65_535:
        fail(f"--port must be a TCP port from 1 to 65535; got {port}.")
    if workers is not None and workers < 1:
        fail(f"--workers must be at least 1; got {workers}.")
    try:
        settings = load_settings(
            config,
            policy=policy,
            store=store,
            model=model,
            policy_model=policy_model,
            features=features,
            workers=workers,
            host=host,
            port=port,
            labels=None if labels is None else read_labels(labels),
        )
        if settings.policy is not None:
            policy_path, calibrator_path = find_policy(settings.policy, settings.policy_model)
            source = f"--labels {labels}" if labels is not None else f"`labels` in {config}"
            check_label_count(settings.labels, load_policy(settings).n_classes, source)
            console.print(
                f"policy {escape(str(policy_path))}"
                + (f", calibrator {escape(str(calibrator_path))}" if calibrator_path else "")
            )
        else:
            err_console.print(
                "[yellow]no --policy:[/yellow] the service will not decide (POST /v1/decisions "
                "answers 503); pass --policy DIR (e.g. from `failwise demo --save-policy DIR`)."
            )
        opened = _open_store(settings.store)
        try:
            if not opened.keys.list(include_revoked=False):
                err_console.print(
                    "[yellow]no API key yet:[/yellow] create one with `failwise keys create "
                    f"--role admin --name NAME --store {escape(settings.store)}`."
                )
        finally:
            opened.close()
    except FailwiseError as error:
        fail(str(error))
    os.environ[SETTINGS_ENV] = settings.to_env()
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="failwise-prometheus-")
    console.print(
        f"serving on http://{settings.host}:{settings.port} with {settings.workers} worker(s), "
        f"store {escape(settings.store)}"
    )
    run_server(
        "failwise.service:app_from_env",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
    )


keys_app = typer.Typer(
    name="keys",
    help="Create, revoke and list the service's API keys.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@keys_app.command("create")
def create_key(
    role: Annotated[
        str, typer.Option("--role", help="admin, reviewer, viewer or service.")
    ] = "admin",
    name: Annotated[
        str | None, typer.Option("--name", help="Who holds it (a reviewer's name).")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Create an API key; it is printed once, keep it."""
    from failwise.store import ROLES

    if role not in ROLES:
        fail(
            f"--role must be one of {', '.join(ROLES)}; got {role!r}. admin: everything; "
            "reviewer: the review queue; viewer: read-only; service: decisions and feedback."
        )
    opened = _open_store(store)
    try:
        created = opened.keys.create(role, name if name is not None else role)
    except FailwiseError as error:
        fail(str(error))
    finally:
        opened.close()
    err_console.print(
        f"created {created.key.role} key {created.key.id} for {escape(created.key.name)}; "
        "it is shown only now:"
    )
    typer.echo(created.token)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key id (as `failwise keys list` shows).")],
    store: StoreOption = None,
) -> None:
    """Revoke an API key (it stops working within a few seconds)."""
    if re.fullmatch(r"[0-9a-f]{12}", key_id) is None:
        fail(
            f"KEY_ID must be the 12 hexadecimal digits of a key's id, as `failwise keys list` "
            f"shows them; got {key_id!r}."
        )
    opened = _open_store(store, create=False)
    try:
        key = opened.keys.revoke(key_id)
    except FailwiseError as error:
        fail(str(error))
    finally:
        opened.close()
    console.print(f"revoked {key.role} key {key.id} ({escape(key.name)})")


@keys_app.command("list")
def list_keys(store: StoreOption = None) -> None:
    """List the API keys (never their secrets)."""
    from datetime import UTC, datetime

    opened = _open_store(store, create=False)
    try:
        keys = opened.keys.list()
    finally:
        opened.close()
    table = Table(title="API keys", title_justify="left")
    for column in ("id", "prefix", "role", "name", "created", "revoked"):
        table.add_column(column)

    def when(at: float | None) -> str:
        if at is None:
            return ""
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")

    for key in keys:
        table.add_row(
            key.id,
            key.prefix,
            key.role,
            escape(key.name),
            when(key.created_at),
            when(key.revoked_at),
        )
    console.print(table)
