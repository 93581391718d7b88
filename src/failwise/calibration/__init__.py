"""Calibrators: turn raw model scores into probabilities that mean what they say.

Every calibrator follows the scikit-learn contract (``fit(scores, y)`` returns the
calibrator, fitted attributes end in ``_``), returns float64 probabilities of shape
(n_samples, n_classes) from ``predict_proba``, pickles cleanly, and round-trips through
``to_state()`` / ``from_state()`` (plain values and NumPy arrays only).

- Multiclass logits: :class:`TemperatureScaling`, :class:`VectorScaling`.
- Binary scores: :class:`PlattScaling`, :class:`BetaCalibration`.
- Binary or multiclass probabilities: :class:`IsotonicCalibration`, :class:`HistogramBinning`.
- Any confidence signal → P(correct): :class:`CorrectnessCalibration`.
"""

from __future__ import annotations

from failwise.calibration._base import BaseCalibrator
from failwise.calibration._beta import BetaCalibration
from failwise.calibration._correctness import CorrectnessCalibration
from failwise.calibration._cross_fit import cross_fit_calibrate
from failwise.calibration._histogram import HistogramBinning
from failwise.calibration._isotonic import IsotonicCalibration
from failwise.calibration._platt import PlattScaling
from failwise.calibration._softmax import log_softmax, softmax
from failwise.calibration._temperature import TemperatureScaling
from failwise.calibration._vector import VectorScaling

__all__ = [
    "BaseCalibrator",
    "BetaCalibration",
    "CorrectnessCalibration",
    "HistogramBinning",
    "IsotonicCalibration",
    "PlattScaling",
    "TemperatureScaling",
    "VectorScaling",
    "cross_fit_calibrate",
    "log_softmax",
    "softmax",
]
