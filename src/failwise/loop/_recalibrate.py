"""`recalibrate`: refit the calibrator and the ladder's thresholds on labels from the log.

Reads the logged decisions (:func:`read_logged_tasks`) and hands them to
:func:`recalibrate_tasks`, which uses only labels whose inclusion probability is known,
certifies the refitted thresholds on a uniform sample of traffic, and keeps the pair in
service when the log does not support a certificate.
"""

from __future__ import annotations

import math
import os
from typing import Any

from failwise._validation import describe
from failwise.artifacts import load
from failwise.calibration import BaseCalibrator
from failwise.exceptions import InputError
from failwise.loop._log import read_logged_tasks
from failwise.loop._refit import recalibrate_tasks
from failwise.loop._report import RecalibrationReport
from failwise.outcomes import OutcomeModel
from failwise.policy import Policy

__all__ = ["recalibrate"]


def _open_existing(url: str) -> Any:
    """Open an existing store: a SQLite file that does not exist is a typo, not a new log."""
    from failwise import store as store_module

    return store_module.open(url, create=False)


def recalibrate(
    store: Any,
    policy_path: str | os.PathLike[str],
    *,
    calibrator_path: str | os.PathLike[str] | None = None,
    since: float | None = None,
    outcome_model: OutcomeModel | None = None,
    min_labels: int = 50,
    calibration_share: float = 0.3,
    random_state: int | None = 0,
) -> RecalibrationReport:
    """Refit calibrator and thresholds on the labels gathered in the event log.

    Only labels whose inclusion probability is known are used: the resolutions of the
    escalations and audits the guard queued, each decision having recorded its
    ``review_probability``. The refitted thresholds are certified on a uniform sample of
    traffic obtained by thinning those labels (see :func:`recalibrate_tasks`); when the
    sample does not certify the risk target, the calibrator and policy in service are kept
    and the report says why.

    Parameters
    ----------
    store : Store or str
        An open store or a store URL (a SQLite file must exist).
    policy_path : path
        The policy artefact in service (:func:`failwise.artifacts.save`).
    calibrator_path : path, optional
        The calibrator artefact in service; without it the recorded scores are taken to be
        probabilities already and only the policy is refitted.
    since : float, optional
        Only tasks decided at or after this Unix time.
    outcome_model : OutcomeModel, optional
        For the projected task completion and human hours in the comparison.
    min_labels : int, default=50
        Fewest usable labels to refit on.
    calibration_share : float in (0, 1), default=0.3
        Share of logged tasks whose labels refit the calibrator.
    random_state : int or None, default=0
        Seed of the split, the thinning and the resampling.

    Returns
    -------
    RecalibrationReport
        Nothing is written until :meth:`RecalibrationReport.write`.

    Raises
    ------
    InputError
        With fewer than ``min_labels`` usable labels, saying how many there are and how to
        get more.
    StoreError
        For a store URL with no store behind it (e.g. a SQLite file that does not exist):
        reading never creates one.

    Warns
    -----
    UncertifiedWarning
        When the log does not certify the refitted thresholds (the pair in service is kept).
    """
    from failwise import store as store_module

    if since is not None and (
        isinstance(since, bool) or not isinstance(since, (int, float)) or not math.isfinite(since)
    ):
        raise InputError(f"`since` must be a time in Unix seconds; got {describe(since)}.")
    old_policy = load(policy_path)
    if not isinstance(old_policy, Policy):
        raise InputError(
            f"`policy_path` {os.fspath(policy_path)!r} holds a {type(old_policy).__name__}, not a "
            "policy; pass the policy artefact (and the calibrator with --calibrator)."
        )
    old_calibrator = None if calibrator_path is None else load(calibrator_path)
    if old_calibrator is not None and not isinstance(old_calibrator, BaseCalibrator):
        raise InputError(
            f"`calibrator_path` {os.fspath(calibrator_path)!r} holds a "  # type: ignore[arg-type]
            f"{type(old_calibrator).__name__}, not a calibrator."
        )
    opened = _open_existing(store) if isinstance(store, str) else None
    source = opened if opened is not None else store
    if not isinstance(source, store_module.Store):
        raise InputError(f"`store` must be a Store or a store URL; got {describe(store)}.")
    try:
        tasks = read_logged_tasks(source, since=since)
    finally:
        if opened is not None:
            opened.close()
    return recalibrate_tasks(
        tasks,
        old_policy,
        old_calibrator,
        outcome_model=outcome_model,
        calibration_share=calibration_share,
        min_labels=min_labels,
        random_state=random_state,
    )
