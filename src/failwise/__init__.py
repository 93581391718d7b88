"""failwise: make ML systems handle their own failures.

Calibrated confidence (:mod:`failwise.calibration`), a decision ladder with certified
thresholds (:mod:`failwise.policy`), calibration and selective metrics
(:mod:`failwise.metrics`) and product metrics projected from an outcome model
(:mod:`failwise.outcomes`).
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

#: Label that marks an input belonging to none of the model's classes.
OUT_OF_SCOPE = -1

from failwise.calibration import (  # noqa: E402  (the constants above are part of the API)
    CorrectnessCalibration,
    IsotonicCalibration,
    TemperatureScaling,
)
from failwise.exceptions import (  # noqa: E402
    FailwiseError,
    InputError,
    NotFittedError,
    UncertifiedWarning,
)
from failwise.metrics import expected_calibration_error  # noqa: E402
from failwise.outcomes import (  # noqa: E402
    OutcomeModel,
    ProductMetrics,
    compare,
    project,
)
from failwise.policy import (  # noqa: E402
    Action,
    ConformalPredictionSets,
    Decision,
    Decisions,
    KNNDistance,
    OutcomeCosts,
    Policy,
    RiskThreshold,
)
from failwise.runtime import Guard  # noqa: E402

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
    "project",
]
