"""End-to-end evaluations shared by the command line and notebooks."""

from __future__ import annotations

from failwise.evaluation._demo import LARSON_PUBLISHED, run_demo
from failwise.evaluation._file import evaluate_file
from failwise.evaluation._pipeline import (
    EvaluationResult,
    ModelEvaluation,
    ModelScores,
    evaluate_scores,
)
from failwise.evaluation._predictions import PredictionSet, read_predictions
from failwise.evaluation._report import build_report

__all__ = [
    "LARSON_PUBLISHED",
    "EvaluationResult",
    "ModelEvaluation",
    "ModelScores",
    "PredictionSet",
    "build_report",
    "evaluate_file",
    "evaluate_scores",
    "read_predictions",
    "run_demo",
]
