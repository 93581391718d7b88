"""Fixtures of the runtime tests: a real guarded digits classifier (see ``_digits.py``)."""

from __future__ import annotations

import pytest

from failwise import Policy
from tests.runtime import _digits as helper


@pytest.fixture(scope="session")
def data() -> helper.Digits:
    return helper.digits()


@pytest.fixture(scope="session")
def policies() -> dict[str, Policy]:
    return {name: helper.named_policy(name) for name in helper.POLICIES}


@pytest.fixture(params=sorted(helper.POLICIES))
def policy_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)
