"""The closed loop: labels from the event log refit the calibrator and the thresholds.

``failwise recalibrate --store URL --policy PATH [--calibrator PATH] [--write DIR]`` or
:func:`recalibrate`.
"""

from __future__ import annotations

from failwise.loop._recalibrate import LABEL_EVENTS, RecalibrationReport, recalibrate

__all__ = ["LABEL_EVENTS", "RecalibrationReport", "recalibrate"]
