"""Fixtures of the artefact tests: the same real digits policies as the runtime tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "failwise_test_runtime_fixtures"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        _NAME, Path(__file__).resolve().parents[1] / "runtime" / "conftest.py"
    )
    if _spec is None or _spec.loader is None:
        raise ImportError("tests/runtime/conftest.py could not be loaded")
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])

_fixtures = sys.modules[_NAME]
data = _fixtures.data
policies = _fixtures.policies
policy_name = _fixtures.policy_name
