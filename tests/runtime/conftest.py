"""Fixtures of the runtime tests: a real guarded digits classifier (see ``_digits.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from failwise import Policy


def load_digits_helper() -> ModuleType:
    """The shared ``_digits`` helper module (loaded once, by path)."""
    name = "failwise_test_digits"
    if name not in sys.modules:
        path = Path(__file__).with_name("_digits.py")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


helper = load_digits_helper()


@pytest.fixture(scope="session")
def data():  # type: ignore[no-untyped-def]
    return helper.digits()


@pytest.fixture(scope="session")
def policies() -> dict[str, Policy]:
    return {name: helper.named_policy(name) for name in helper.POLICIES}


@pytest.fixture(params=sorted(helper.POLICIES))
def policy_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)
