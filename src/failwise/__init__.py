"""failwise: make ML systems handle their own failures.

Calibrated confidence (:mod:`failwise.calibration`), a decision ladder with certified
thresholds (:mod:`failwise.policy`), calibration and selective metrics
(:mod:`failwise.metrics`) and product metrics projected from an outcome model
(:mod:`failwise.outcomes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from failwise.exceptions import (
    FailwiseError,
    InputError,
    NotFittedError,
    UncertifiedWarning,
)

__version__ = "0.1.0.dev0"

#: Label that marks an input belonging to none of the model's classes.
OUT_OF_SCOPE = -1

#: Public name → the subpackage it comes from, imported on first use (PEP 562), so that
#: ``import failwise`` stays cheap: the store, its database drivers, scikit-learn and
#: ``scipy.stats`` load only when something needs them.
_LAZY: dict[str, str] = {
    "Action": "failwise.policy",
    "ConformalPredictionSets": "failwise.policy",
    "CorrectnessCalibration": "failwise.calibration",
    "Decision": "failwise.policy",
    "Decisions": "failwise.policy",
    "Guard": "failwise.runtime",
    "IsotonicCalibration": "failwise.calibration",
    "KNNDistance": "failwise.policy",
    "OutcomeCosts": "failwise.policy",
    "OutcomeModel": "failwise.outcomes",
    "Policy": "failwise.policy",
    "ProductMetrics": "failwise.outcomes",
    "RiskThreshold": "failwise.policy",
    "TemperatureScaling": "failwise.calibration",
    "compare": "failwise.outcomes",
    "expected_calibration_error": "failwise.metrics",
    "measure": "failwise.outcomes",
    "project": "failwise.outcomes",
}

if TYPE_CHECKING:
    from failwise.calibration import (
        CorrectnessCalibration,
        IsotonicCalibration,
        TemperatureScaling,
    )
    from failwise.metrics import expected_calibration_error
    from failwise.outcomes import OutcomeModel, ProductMetrics, compare, measure, project
    from failwise.policy import (
        Action,
        ConformalPredictionSets,
        Decision,
        Decisions,
        KNNDistance,
        OutcomeCosts,
        Policy,
        RiskThreshold,
    )
    from failwise.runtime import Guard


#: Subpackages reachable as attributes (``failwise.policy``) without importing them first.
_SUBPACKAGES = frozenset(
    {
        "artifacts",
        "calibration",
        "cli",
        "datasets",
        "evaluation",
        "export",
        "loop",
        "metrics",
        "models",
        "monitor",
        "outcomes",
        "policy",
        "report",
        "runtime",
        "store",
        "testing",
    }
)


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module(f"failwise.{name}")
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'failwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "OUT_OF_SCOPE",
    "Action",
    "ConformalPredictionSets",
    "CorrectnessCalibration",
    "Decision",
    "Decisions",
    "FailwiseError",
    "Guard",
    "InputError",
    "IsotonicCalibration",
    "KNNDistance",
    "NotFittedError",
    "OutcomeCosts",
    "OutcomeModel",
    "Policy",
    "ProductMetrics",
    "RiskThreshold",
    "TemperatureScaling",
    "UncertifiedWarning",
    "__version__",
    "compare",
    "expected_calibration_error",
    "measure",
    "project",
]
