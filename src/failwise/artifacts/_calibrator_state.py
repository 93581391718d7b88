"""A fitted calibrator as plain data, and back, through its own ``to_state``/``from_state``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from failwise.calibration import BaseCalibrator
from failwise.exceptions import InputError

__all__ = ["calibrator_from_state", "calibrator_to_state"]


def calibrator_to_state(calibrator: BaseCalibrator) -> dict[str, Any]:
    """Return ``calibrator.to_state()`` after checking that it is a failwise calibrator.

    Parameters
    ----------
    calibrator : BaseCalibrator
        A fitted calibrator, e.g. :class:`~failwise.TemperatureScaling`.

    Returns
    -------
    dict
        ``{"calibrator": class name, "format": int, "params": {...}, "fitted": {...}}``.
    """
    if not isinstance(calibrator, BaseCalibrator):
        raise InputError(
            f"`calibrator` must be a failwise calibrator (a BaseCalibrator subclass); got "
            f"{type(calibrator).__name__}."
        )
    return calibrator.to_state()


def calibrator_from_state(state: Mapping[str, Any]) -> BaseCalibrator:
    """Rebuild the calibrator a state names (any :class:`BaseCalibrator` subclass)."""
    return BaseCalibrator.from_state(state)
