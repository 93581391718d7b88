"""Watch the served traffic: label-free accuracy, drift, and inputs nobody evaluated.

The served distribution is not the evaluated one. The monitor compares each window of the
event log with a *reference* (the validation data the policy was fitted on):

* :func:`estimate_accuracy` — expected accuracy among automatic answers from calibrated
  confidence, checked against the audit sample (a *calibration-broken* finding when the
  audit contradicts it);
* :func:`ks_drift`, :func:`mix_drift`, :func:`mmd_drift` — two-sample tests of scores,
  label and action mixes and input features, combined per window with :func:`holm`;
* :class:`UnseenInputDetector` — the share of requests beyond the reference's own
  nearest-neighbour distances, tested with the reference's sampling error accounted for;
* :func:`find_gaps` — clusters of those unseen inputs (blind spots), ranked by the silent
  failures they are expected to cause;
* :func:`find_slices` — groups of labelled tasks, named by their context, that fail
  significantly more often than the rest.
"""

from __future__ import annotations

from failwise.monitor._drift import DriftTest, holm, ks_drift, mix_drift, mmd_drift
from failwise.monitor._estimate import PerformanceEstimate, estimate_accuracy, poisson_binomial_cdf
from failwise.monitor._gaps import Gap, find_gaps
from failwise.monitor._slices import Slice, find_slices
from failwise.monitor._unseen import UnseenInputDetector, UnseenInputTest

__all__ = [
    "DriftTest",
    "Gap",
    "PerformanceEstimate",
    "Slice",
    "UnseenInputDetector",
    "UnseenInputTest",
    "estimate_accuracy",
    "find_gaps",
    "find_slices",
    "holm",
    "ks_drift",
    "mix_drift",
    "mmd_drift",
    "poisson_binomial_cdf",
]
