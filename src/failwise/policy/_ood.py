"""Out-of-scope scores and the rule that turns one into a threshold.

The code lives in one module per concept: :mod:`failwise.policy._ood_scores` (scores from
the model's outputs and their combination), :mod:`failwise.policy._knn` (distance to the
training data) and :mod:`failwise.policy._ood_threshold` (the threshold rule). This
module keeps the old import path working.
"""

from __future__ import annotations

from failwise.policy._knn import KNNDistance, MahalanobisDistance
from failwise.policy._ood_scores import (
    CombinedOODScore,
    PseudoOpenFold,
    energy_score,
    max_logit_score,
    max_probability_score,
    pseudo_open_folds,
)
from failwise.policy._ood_threshold import OODThreshold, fit_ood_threshold

__all__ = [
    "CombinedOODScore",
    "KNNDistance",
    "MahalanobisDistance",
    "OODThreshold",
    "PseudoOpenFold",
    "energy_score",
    "fit_ood_threshold",
    "max_logit_score",
    "max_probability_score",
    "pseudo_open_folds",
]
