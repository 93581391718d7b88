"""Fixtures of the artefact tests: the same real digits policies as the runtime tests."""

from __future__ import annotations

from tests.runtime.conftest import data, policies, policy_name

__all__ = ["data", "policies", "policy_name"]
