"""The `failwise` command line."""

from __future__ import annotations

from failwise.cli._app import app, main

__all__ = ["app", "main"]
