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

Over the event log, :func:`run_monitor` runs all of them incrementally, window by window,
against a :class:`Reference` saved beside the policy (:func:`load_reference`), and stores
each window's statistics and its findings in the store; :func:`findings` reads them back.
"""

from __future__ import annotations

from failwise.monitor._bulk import CONFIDENCE_BINS, window_statistics
from failwise.monitor._drift import DriftTest, holm, ks_drift, mix_drift
from failwise.monitor._estimate import PerformanceEstimate, estimate_accuracy, poisson_binomial_cdf
from failwise.monitor._gaps import Gap, find_gaps
from failwise.monitor._mmd import mmd_drift
from failwise.monitor._quarantine import (
    Release,
    quarantine,
    quarantine_unseen,
    release,
    release_reviewed,
)
from failwise.monitor._reference import (
    ACTION_NAMES,
    REFERENCE_STATE_FORMAT,
    Reference,
    load_reference,
    random_projection,
)
from failwise.monitor._run import (
    MonitorRun,
    findings,
    is_failure,
    monitor_name,
    post_json,
    run_monitor,
    windows,
)
from failwise.monitor._slices import Slice, find_slices
from failwise.monitor._unseen import UnseenInputDetector, UnseenInputTest
from failwise.monitor._window_tests import FAILURE_KINDS, FINDING_KINDS, WindowData, analyse_window
from failwise.monitor._windows import WindowSpec, parse_window

__all__ = [
    "ACTION_NAMES",
    "CONFIDENCE_BINS",
    "FAILURE_KINDS",
    "FINDING_KINDS",
    "REFERENCE_STATE_FORMAT",
    "DriftTest",
    "Gap",
    "MonitorRun",
    "PerformanceEstimate",
    "Reference",
    "Release",
    "Slice",
    "UnseenInputDetector",
    "UnseenInputTest",
    "WindowData",
    "WindowSpec",
    "analyse_window",
    "estimate_accuracy",
    "find_gaps",
    "find_slices",
    "findings",
    "holm",
    "is_failure",
    "ks_drift",
    "load_reference",
    "mix_drift",
    "mmd_drift",
    "monitor_name",
    "parse_window",
    "poisson_binomial_cdf",
    "post_json",
    "quarantine",
    "quarantine_unseen",
    "random_projection",
    "release",
    "release_reviewed",
    "run_monitor",
    "window_statistics",
    "windows",
]
