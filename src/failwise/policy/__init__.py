"""The decision ladder and its thresholds.

`Policy` fits the ladder answer → clarify → fallback → escalate → abstain to a stated
objective; `RiskThreshold` certifies the answer threshold (Learn-then-Test);
`ConformalPredictionSets` builds the sets offered when clarifying; out-of-scope scores and
deterministic fallback rules feed the other rungs.
"""

from __future__ import annotations

from failwise.policy._answer_score import top_two_log_odds
from failwise.policy._baseline import always_answer
from failwise.policy._conformal import ConformalPredictionSets, aps_members, lac_bar, lac_members
from failwise.policy._costs import OutcomeCosts
from failwise.policy._decision import (
    NO_LABEL,
    NO_OPINION,
    Action,
    Band,
    Decision,
    Decisions,
    Reason,
)
from failwise.policy._fallback import KeywordRules, RegexRules
from failwise.policy._fallback_report import (
    FallbackReport,
    FallbackResult,
    apply_fallback,
    measure_fallback,
)
from failwise.policy._frontier import (
    CertificationFrontier,
    FrontierPoint,
    certification_frontier,
)
from failwise.policy._knn import KNNDistance, MahalanobisDistance
from failwise.policy._ladder import LadderState, RowState, run_ladder, run_row
from failwise.policy._ood_scores import (
    CombinedOODScore,
    PseudoOpenFold,
    energy_score,
    max_logit_score,
    max_probability_score,
    pseudo_open_folds,
)
from failwise.policy._ood_threshold import OODThreshold, fit_ood_threshold
from failwise.policy._policy import Policy
from failwise.policy._pseudo_open import choose_by_folds
from failwise.policy._quarantine import Quarantine
from failwise.policy._risk import RiskThreshold
from failwise.policy._rungs import (
    AnswerRung,
    ClarifyRung,
    EscalateRung,
    FallbackRung,
    OutOfScopeRung,
    Rung,
    rung_class,
)

__all__ = [
    "NO_LABEL",
    "NO_OPINION",
    "Action",
    "AnswerRung",
    "Band",
    "CertificationFrontier",
    "ClarifyRung",
    "CombinedOODScore",
    "ConformalPredictionSets",
    "Decision",
    "Decisions",
    "EscalateRung",
    "FallbackReport",
    "FallbackResult",
    "FallbackRung",
    "FrontierPoint",
    "KNNDistance",
    "KeywordRules",
    "LadderState",
    "MahalanobisDistance",
    "OODThreshold",
    "OutOfScopeRung",
    "OutcomeCosts",
    "Policy",
    "PseudoOpenFold",
    "Quarantine",
    "Reason",
    "RegexRules",
    "RiskThreshold",
    "RowState",
    "Rung",
    "always_answer",
    "apply_fallback",
    "aps_members",
    "certification_frontier",
    "choose_by_folds",
    "energy_score",
    "fit_ood_threshold",
    "lac_bar",
    "lac_members",
    "max_logit_score",
    "max_probability_score",
    "measure_fallback",
    "pseudo_open_folds",
    "run_ladder",
    "run_row",
    "rung_class",
    "top_two_log_odds",
]
