"""The decision ladder and its thresholds.

`Policy` fits the ladder answer → clarify → fallback → escalate → abstain to a stated
objective; `RiskThreshold` certifies the answer threshold (Learn-then-Test);
`ConformalPredictionSets` builds the sets offered when clarifying; out-of-scope scores and
deterministic fallback rules feed the other rungs.
"""

from __future__ import annotations

from failwise.policy._baseline import always_answer
from failwise.policy._conformal import ConformalPredictionSets
from failwise.policy._costs import OutcomeCosts
from failwise.policy._decision import NO_LABEL, Action, Band, Decision, Decisions, Reason
from failwise.policy._fallback import (
    NO_OPINION,
    FallbackReport,
    FallbackResult,
    KeywordRules,
    RegexRules,
    apply_fallback,
    measure_fallback,
)
from failwise.policy._knn import KNNDistance
from failwise.policy._ladder import (
    AnswerRung,
    ClarifyRung,
    EscalateRung,
    FallbackRung,
    LadderState,
    OutOfScopeRung,
    run_ladder,
)
from failwise.policy._ood_scores import (
    CombinedOODScore,
    energy_score,
    max_logit_score,
    max_probability_score,
)
from failwise.policy._ood_threshold import OODThreshold, fit_ood_threshold
from failwise.policy._policy import Policy
from failwise.policy._risk import RiskThreshold

__all__ = [
    "NO_LABEL",
    "NO_OPINION",
    "Action",
    "AnswerRung",
    "Band",
    "ClarifyRung",
    "CombinedOODScore",
    "ConformalPredictionSets",
    "Decision",
    "Decisions",
    "EscalateRung",
    "FallbackReport",
    "FallbackResult",
    "FallbackRung",
    "KNNDistance",
    "KeywordRules",
    "LadderState",
    "OODThreshold",
    "OutOfScopeRung",
    "OutcomeCosts",
    "Policy",
    "Reason",
    "RegexRules",
    "RiskThreshold",
    "always_answer",
    "apply_fallback",
    "energy_score",
    "fit_ood_threshold",
    "max_logit_score",
    "max_probability_score",
    "measure_fallback",
    "run_ladder",
]
