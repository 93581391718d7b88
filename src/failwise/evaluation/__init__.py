"""End-to-end evaluations shared by the command line and notebooks."""

from __future__ import annotations

from failwise.evaluation._demo import LARSON_PUBLISHED, run_demo
from failwise.evaluation._features import FEATURE_PREFIX, read_features
from failwise.evaluation._file import evaluate_file
from failwise.evaluation._pipeline import (
    MAX_NEIGHBOUR_ROWS,
    EvaluationResult,
    ModelEvaluation,
    ModelScores,
    evaluate_scores,
)
from failwise.evaluation._predictions import PredictionSet, read_predictions
from failwise.evaluation._report import build_report
from failwise.evaluation._save import artefact_folder_name, save_artefacts
from failwise.evaluation._summary import (
    AutomationSummary,
    FrontierRow,
    frontier_rows,
    summarise_automation,
)

__all__ = [
    "FEATURE_PREFIX",
    "LARSON_PUBLISHED",
    "MAX_NEIGHBOUR_ROWS",
    "AutomationSummary",
    "EvaluationResult",
    "FrontierRow",
    "ModelEvaluation",
    "ModelScores",
    "PredictionSet",
    "artefact_folder_name",
    "build_report",
    "evaluate_file",
    "evaluate_scores",
    "frontier_rows",
    "read_features",
    "read_predictions",
    "run_demo",
    "save_artefacts",
    "summarise_automation",
]
