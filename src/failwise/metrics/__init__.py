"""Metrics for calibrated confidence and selective prediction.

- Calibration error: :func:`expected_calibration_error`, :func:`maximum_calibration_error`,
  :func:`classwise_ece`, :func:`debiased_expected_calibration_error` and the
  :func:`reliability_table` behind a reliability diagram.
- Proper scoring rules: :func:`brier_score`, :func:`negative_log_likelihood`.
- Selective prediction: :func:`risk_coverage_curve`, :func:`aurc`, :func:`excess_aurc`.

Probabilities are (n_samples, n_classes) arrays whose rows sum to 1 (binary models pass
(n, 2)); labels are class indices 0..n_classes-1.
"""

from __future__ import annotations

from failwise.metrics._calibration_error import (
    ReliabilityTable,
    classwise_ece,
    debiased_expected_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_table,
)
from failwise.metrics._scoring import brier_score, negative_log_likelihood
from failwise.metrics._selective import RiskCoverageCurve, aurc, excess_aurc, risk_coverage_curve

__all__ = [
    "ReliabilityTable",
    "RiskCoverageCurve",
    "aurc",
    "brier_score",
    "classwise_ece",
    "debiased_expected_calibration_error",
    "excess_aurc",
    "expected_calibration_error",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "reliability_table",
    "risk_coverage_curve",
]
