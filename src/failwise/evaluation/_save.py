"""Saving an evaluation's fitted calibrators and policies as artefacts for the runtime."""

from __future__ import annotations

import os
import re
from pathlib import Path

from failwise.artifacts import Artifact, save
from failwise.evaluation._pipeline import EvaluationResult

__all__ = ["artefact_folder_name", "save_artefacts"]


def artefact_folder_name(model_name: str) -> str:
    """A folder name for a model: lower case, runs of other characters become ``-``.

    Examples
    --------
    >>> artefact_folder_name("SVM (RBF kernel)")
    'svm-rbf-kernel'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")
    return slug or "model"


def save_artefacts(
    result: EvaluationResult, folder: str | os.PathLike[str]
) -> dict[str, tuple[Artifact, Artifact]]:
    """Write each model's fitted calibrator and policy under ``folder``.

    Layout: ``folder/<model>/calibrator`` and ``folder/<model>/policy``, one pair per model,
    with the monitor's reference (:class:`failwise.monitor.Reference`) in
    ``folder/<model>/reference`` (``<model>`` from :func:`artefact_folder_name`). The
    reference holds the validation inputs' features as float16 when the model gave them
    (``val_features`` of :class:`~failwise.evaluation.ModelScores`, whose
    ``feature_source`` says how a guard computes the same), and the training inputs'
    features as its neighbour rows. These are the artefacts :class:`failwise.Guard`,
    ``failwise recalibrate`` and the service load with :func:`failwise.artifacts.load`.

    Returns
    -------
    dict
        Model name → (calibrator artefact, policy artefact).
    """
    root = Path(folder).expanduser()
    out: dict[str, tuple[Artifact, Artifact]] = {}
    used: set[str] = set()
    for evaluation in result.models:
        name = artefact_folder_name(evaluation.name)
        stem, n = name, 2
        while name in used:
            name, n = f"{stem}-{n}", n + 1
        used.add(name)
        calibrator = save(evaluation.calibrator, root / name / "calibrator")
        policy = save(evaluation.policy, root / name / "policy")
        if evaluation.reference is not None:
            save(evaluation.reference, root / name / "reference")
        out[evaluation.name] = (calibrator, policy)
    return out
