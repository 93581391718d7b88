"""The closed loop: labels from the event log refit the calibrator and the thresholds.

``failwise recalibrate --store URL --policy PATH [--calibrator PATH] [--write DIR]`` or
:func:`recalibrate`. Only labels whose inclusion probability is known (the guard's own
escalations and audits) are used, weighted by its inverse; a refitted policy replaces the
one in service only when the log certifies its risk target.
"""

from __future__ import annotations

from failwise.loop._log import LABEL_EVENTS, LoggedTasks, read_logged_tasks
from failwise.loop._recalibrate import recalibrate
from failwise.loop._refit import recalibrate_tasks
from failwise.loop._report import PolicyFigures, RecalibrationReport
from failwise.loop._sampling import (
    inverse_probability_resample,
    inverse_probability_weights,
    uniform_subsample,
)

__all__ = [
    "LABEL_EVENTS",
    "LoggedTasks",
    "PolicyFigures",
    "RecalibrationReport",
    "inverse_probability_resample",
    "inverse_probability_weights",
    "read_logged_tasks",
    "recalibrate",
    "recalibrate_tasks",
    "uniform_subsample",
]
