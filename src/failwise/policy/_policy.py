"""`Policy`: the decision ladder fitted to what the product owner states.

The owner states one objective — a risk target with a confidence level, a human capacity, or
explicit costs — and the policy fits every rung of the ladder on labelled validation data.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._base import Estimator
from failwise._params import Constraint, Interval, Options
from failwise._validation import (
    check_consistent_length,
    check_fitted,
    check_labels,
    check_probabilities,
    check_scores,
)
from failwise.exceptions import InputError, UncertifiedWarning
from failwise.policy._answer_score import ANSWER_SCORES, answer_scores
from failwise.policy._conformal import ConformalPredictionSets
from failwise.policy._costs import OutcomeCosts
from failwise.policy._decision import NO_OPINION, Decision, Decisions
from failwise.policy._frontier import CertificationFrontier
from failwise.policy._ladder import LadderState, RowState, run_ladder, run_row
from failwise.policy._ood_threshold import OODThreshold, fit_screen
from failwise.policy._policy_fit import (
    Downstream,
    fallback_floor,
    fit_abstain_floor,
    fit_answer_threshold,
    fit_fallback_trust,
)
from failwise.policy._policy_summary import describe_policy, validation_summary
from failwise.policy._risk import RiskThreshold
from failwise.policy._rungs import (
    AnswerRung,
    ClarifyRung,
    EscalateRung,
    FallbackRung,
    OutOfScopeRung,
    Rung,
)

__all__ = ["Policy", "top_label"]

# The out-of-scope rule's parameters under the names a Policy user passes.
_OOD_PARAMETERS = {
    "max_false_alarm_rate": "ood_false_alarm_rate",
    "max_accuracy_loss": "ood_max_accuracy_loss",
}


def top_label(proba: NDArray[Any]) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Return the top label and its probability per row, in two passes over ``proba``."""
    predicted = proba.argmax(axis=1)
    n, k = proba.shape
    flat = proba.reshape(-1) if proba.flags.c_contiguous else None
    if flat is not None:
        confidence = flat[np.arange(n, dtype=np.intp) * k + predicted]
    else:
        confidence = np.take_along_axis(proba, predicted[:, None], axis=1)[:, 0]
    return predicted.astype(np.intp, copy=False), confidence.astype(np.float64, copy=False)


class Policy(Estimator):
    """The decision ladder answer → clarify → fallback → escalate → abstain, fitted to an objective.

    State one objective:

    * ``target_risk`` + ``confidence_level`` (default): answer automatically only above the
      lowest confidence threshold whose selective risk (error rate among automatic answers) is
      certified ≤ ``target_risk`` with probability ≥ ``confidence_level``
      (Learn-then-Test, see :class:`RiskThreshold`);
    * ``max_escalation_rate`` with ``target_risk=None``: answer as little as possible while at
      most that share of traffic goes to humans (human capacity);
    * ``costs``: minimise the expected cost of outcomes on the validation data; with a
      ``target_risk`` as well, never answer below the certified threshold.

    ``max_escalation_rate`` combined with a risk target or costs never weakens the risk
    guarantee: inputs beyond human capacity abstain instead (lowest confidence first).

    Parameters
    ----------
    target_risk : float or None, default=0.02
        Highest acceptable error rate among automatic answers.
    confidence_level : float, default=0.95
        Probability, over the draw of the validation data, that the risk target holds.
    max_escalation_rate : float or None, default=None
        Largest share of inputs that may be escalated to humans.
    costs : OutcomeCosts or None, default=None
        Cost of each outcome, for a cost-optimal answer threshold.
    clarify_max_set_size : int, default=3
        Ask the user to pick when the prediction set has at most this many labels; 0 turns the
        clarify rung off.
    clarify_coverage : float, default=0.9
        Coverage level of the conformal prediction sets offered when clarifying.
    clarify_method : {"lac", "aps"}, default="lac"
        Conformal score for the sets: least ambiguous set-valued classifier (labels whose
        probability clears one fitted bar; small, deterministic sets) or adaptive prediction
        sets (deterministic APS includes the label that crosses the level and over-covers).
    ood_false_alarm_rate : float, default=0.05
        When out-of-scope scores are given to ``fit``: the largest share of in-scope inputs the
        out-of-scope screen may send down the ladder. The screen flags scores above the
        split-conformal (1 − rate) quantile of the in-scope validation scores, so it works
        without out-of-scope examples and from 1/rate − 1 in-scope rows (19 at 0.05).
    ood_max_accuracy_loss : float in (0, 1] or None, default=None
        When out-of-scope scores are given: the screen may flag at most this share of the
        in-scope inputs the model answers correctly (e.g. 0.02: in-scope accuracy drops by at
        most two points), certified at ``confidence_level``, however many wrong answers it
        catches. It needs about log(1 − confidence_level) / log(1 − budget) correctly answered
        validation rows (149 at 0.02 and 95 %), whatever the accuracy, and only ever flags
        less than ``ood_false_alarm_rate`` alone would. None: only the false-alarm rate
        applies.

        When the validation data cannot meet one of these rules, the screen stays on at the
        strictest threshold the data supports and ``describe()["ood_screen"]["unmet"]`` names
        the parameter (an :class:`~failwise.exceptions.UncertifiedWarning` says the same).
    fallback_min_accuracy : float or None, default=None
        A fallback output is used only when its accuracy on the validation rows it would
        handle is at least this (Wilson lower bound at ``confidence_level``). None derives it:
        from ``costs`` when given (the break-even accuracy against escalating), else 0.9.
    escalate : bool, default=True
        Whether humans are available; if False the last rung abstains.
    bound : {"binomial", "hoeffding_bentkus"}, default="binomial"
        p-value used by the risk certificate.
    medium_band_floor : float, default=0.5
        Confidence from which the band is "medium"; "high" starts at the answer threshold.
    answer_score : {"confidence", "log_odds"}, default="confidence"
        What the answer threshold is set on: the top label's calibrated probability, or its
        calibrated top-two log-odds log(p₁ / p₂). Temperature scaling divides every row's
        top-two log-odds by the same temperature, so the order of rows by this score does
        not depend on the fitted temperature: with ``"log_odds"`` the risk certificate
        tests thresholds on a calibrator-free order, and the temperature may be fitted on
        the same validation rows as the policy without breaking the certificate. That holds
        for any calibrator that maps every row's top-two log-odds through one increasing
        function; not for vector scaling, isotonic regression or histogram binning, which
        need validation rows of their own (see
        :func:`failwise.evaluation.evaluate_scores`, ``calibration="all"``).
    extra_rungs : sequence of Rung, optional
        User-defined rungs (subclasses of :class:`~failwise.policy.Rung`) added to the
        fitted ladder, each before the built-in rung named by its ``runs_before`` (default:
        before answering, right after the out-of-scope screen). The built-in thresholds are
        fitted without them. They run in ``decide``, in a :class:`~failwise.runtime.Guard`
        and are saved in artefacts; see :class:`~failwise.policy.Rung` for an example.

    Attributes
    ----------
    n_classes_ : int
    mode_ : {"risk", "capacity", "cost"}
    answer_threshold_ : float
        Calibrated confidence from which the top label is answered (``inf``: never).
    ood_threshold_ : float
        Out-of-scope score above which inputs are never answered (``inf`` when unused).
    ood_screen_ : OODThreshold or None
        How the out-of-scope threshold was set and what it did on validation data.
    certified_ : bool
        Whether the answer threshold carries the risk certificate.
    risk_control_ : RiskThreshold or None
    frontier_ : CertificationFrontier or None
        With a risk target: the coverage the validation rows certify at each target risk
        of a grid, and the labelled rows the requested target needs at the observed error
        rate (see :func:`certification_frontier`); also under "frontier" in
        :meth:`describe`. None without a risk target.
    prediction_sets_ : ConformalPredictionSets or None
    fallback_trusted_ : ndarray of shape (n_classes + 1,)
        Which fallback outputs are used; index 0 is the out-of-scope label -1.
    fallback_accuracy_ : float or None
    abstain_below_ : float
    rungs_ : list of callables
        The fitted ladder, in order.
    validation_ : dict
        Rates of each action, coverage and selective risk on the fitting data.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise import Policy
    >>> rng = np.random.default_rng(0)
    >>> proba = rng.dirichlet(np.full(3, 0.3), size=2000)
    >>> y = np.array([rng.choice(3, p=p) for p in proba])    # calibrated by construction
    >>> policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
    >>> decisions = policy.decide(proba[:5])
    >>> sorted(set(decisions.action) - {"answer", "clarify", "escalate"})
    []
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "target_risk": [None, Interval(Real, 0, 1, closed="neither")],
        "confidence_level": [Interval(Real, 0, 1, closed="neither")],
        "max_escalation_rate": [None, Interval(Real, 0, 1, closed="both")],
        "costs": [None, OutcomeCosts],
        "clarify_max_set_size": [Interval(Integral, 0, None)],
        "clarify_coverage": [Interval(Real, 0, 1, closed="neither")],
        "clarify_method": [Options(("aps", "lac"))],
        "ood_false_alarm_rate": [Interval(Real, 0, 1, closed="neither")],
        "ood_max_accuracy_loss": [None, Interval(Real, 0, 1, closed="right")],
        "fallback_min_accuracy": [None, Interval(Real, 0, 1, closed="both")],
        "escalate": [bool],
        "bound": [Options(("binomial", "hoeffding_bentkus"))],
        "medium_band_floor": [Interval(Real, 0, 1, closed="both")],
        "answer_score": [Options(ANSWER_SCORES)],
        "extra_rungs": [
            None,
            Constraint(
                lambda v: isinstance(v, (list, tuple)) and all(isinstance(r, Rung) for r in v),
                "a list of Rung instances (subclasses of failwise.policy.Rung)",
            ),
        ],
    }

    def __init__(
        self,
        *,
        target_risk: float | None = 0.02,
        confidence_level: float = 0.95,
        max_escalation_rate: float | None = None,
        costs: OutcomeCosts | None = None,
        clarify_max_set_size: int = 3,
        clarify_coverage: float = 0.9,
        clarify_method: str = "lac",
        ood_false_alarm_rate: float = 0.05,
        ood_max_accuracy_loss: float | None = None,
        fallback_min_accuracy: float | None = None,
        escalate: bool = True,
        bound: str = "binomial",
        medium_band_floor: float = 0.5,
        answer_score: str = "confidence",
        extra_rungs: list[Rung] | tuple[Rung, ...] | None = None,
    ) -> None:
        self.target_risk = target_risk
        self.confidence_level = confidence_level
        self.max_escalation_rate = max_escalation_rate
        self.costs = costs
        self.clarify_max_set_size = clarify_max_set_size
        self.clarify_coverage = clarify_coverage
        self.clarify_method = clarify_method
        self.ood_false_alarm_rate = ood_false_alarm_rate
        self.ood_max_accuracy_loss = ood_max_accuracy_loss
        self.fallback_min_accuracy = fallback_min_accuracy
        self.escalate = escalate
        self.bound = bound
        self.medium_band_floor = medium_band_floor
        self.answer_score = answer_score
        self.extra_rungs = extra_rungs

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        proba: ArrayLike,
        y: ArrayLike,
        *,
        ood_score: ArrayLike | None = None,
        fallback: ArrayLike | None = None,
    ) -> Policy:
        """Fit every rung of the ladder on labelled validation data.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Calibrated class probabilities on validation data (not the model's training data).
        y : array-like of shape (n_samples,)
            True class indices; ``-1`` marks out-of-scope inputs, whose only correct handling
            is a handoff (fallback, escalate or abstain).
        ood_score : array-like of shape (n_samples,), optional
            Out-of-scope score (higher = more likely out of scope), e.g. from
            :class:`KNNDistance`. Its threshold is fitted here.
        fallback : array-like of shape (n_samples,), optional
            The deterministic fallback's label per input (``NO_OPINION`` = -2 where it has
            none), e.g. from :func:`apply_fallback`. Its accuracy is measured here.

        Returns
        -------
        self : Policy
        """
        self._validate_params()
        if self.target_risk is None and self.max_escalation_rate is None and self.costs is None:
            raise InputError(
                "Policy needs an objective: set `target_risk` (with `confidence_level`), "
                "`max_escalation_rate` (human capacity) or `costs`; all three are None."
            )
        P = check_probabilities(proba, "proba")
        labels = check_labels(y, "y", n_classes=P.shape[1], allow_out_of_scope=True)
        check_consistent_length(proba=P, y=labels)
        ood = self._check_ood(ood_score, P.shape[0], fitting=True)
        fb = self._check_fallback(fallback, P.shape[0], P.shape[1])

        self.n_classes_ = int(P.shape[1])
        predicted, confidence = top_label(P)
        correct = predicted == labels  # out-of-scope rows (-1) are never correct answers
        score = answer_scores(P, confidence, self.answer_score)
        in_scope = labels >= 0

        # 1. Out-of-scope screen.
        self._fit_ood_screen(ood, labels, correct)
        handoff = (ood > self.ood_threshold_) if ood is not None else np.zeros_like(correct)

        # 2. Prediction sets for clarification, on in-scope rows.
        self.prediction_sets_: ConformalPredictionSets | None = None
        if self.clarify_max_set_size > 0 and in_scope.sum() >= 2:
            self.prediction_sets_ = ConformalPredictionSets(
                method=self.clarify_method, coverage=self.clarify_coverage
            ).fit(P[in_scope], labels[in_scope])

        # 3. Answer threshold; 4. fallback trust (measured on rows the model would not answer);
        # 5. answer threshold again now that the fallback's share is known (capacity and cost
        # modes look at what happens downstream).
        self.fallback_trusted_ = np.zeros(self.n_classes_ + 1, dtype=bool)
        self.fallback_accuracy_: float | None = None
        self.abstain_below_ = -np.inf
        answer = fit_answer_threshold(
            P, labels, score, correct, handoff, fb, **self._answer_objective()
        )
        if fb is not None:
            self.fallback_trusted_, self.fallback_accuracy_ = fit_fallback_trust(
                P,
                labels,
                score,
                handoff,
                fb,
                answer.threshold,
                downstream=self._downstream(),
                n_classes=self.n_classes_,
                confidence_level=self.confidence_level,
                floor=fallback_floor(self.fallback_min_accuracy, self.costs, self.escalate),
            )
            answer = fit_answer_threshold(
                P, labels, score, correct, handoff, fb, **self._answer_objective()
            )
        self.mode_ = answer.mode
        self.certified_ = answer.certified
        self.risk_control_: RiskThreshold | None = answer.risk_control
        self.frontier_: CertificationFrontier | None = answer.frontier
        self.answer_threshold_ = float(answer.threshold)

        # 6. Human capacity on top of a risk or cost objective: the rest abstains.
        if self.max_escalation_rate is not None and self.mode_ != "capacity":
            fitted = run_ladder(
                LadderState(P, confidence, predicted, ood, fb), self._build_rungs(with_extra=False)
            )
            self.abstain_below_ = fit_abstain_floor(
                fitted.action_codes, confidence, self.max_escalation_rate
            )

        self.rungs_: list[Rung] = self._build_rungs()
        self.validation_ = validation_summary(self.decide(P, ood_score=ood, fallback=fb), labels)
        return self

    def _fit_ood_screen(
        self,
        ood: NDArray[np.float64] | None,
        labels: NDArray[np.intp],
        correct: NDArray[np.bool_],
    ) -> None:
        """Fit the out-of-scope threshold; an unmet rule keeps the screen on and is named."""
        self.ood_threshold_ = np.inf
        self.ood_screen_: OODThreshold | None = None
        if ood is None:
            return
        self.ood_screen_ = fit_screen(
            ood,
            labels < 0,
            max_false_alarm_rate=self.ood_false_alarm_rate,
            correct=correct,
            max_accuracy_loss=self.ood_max_accuracy_loss,
            confidence_level=self.confidence_level,
            names=_OOD_PARAMETERS,
        )
        for note in self.ood_screen_.notes:
            warnings.warn(f"Policy: {note}", UncertifiedWarning, stacklevel=3)
        self.ood_threshold_ = float(self.ood_screen_)

    def _check_ood(
        self, ood_score: ArrayLike | None, n: int, *, fitting: bool = False
    ) -> NDArray[np.float64] | None:
        if ood_score is None:
            if not fitting and np.isfinite(getattr(self, "ood_threshold_", np.inf)):
                raise InputError(
                    "This policy was fitted with out-of-scope scores, so `decide` needs "
                    "`ood_score` too (same scorer, one score per row); got None."
                )
            return None
        scores = check_scores(ood_score, "ood_score", ndim=1)
        check_consistent_length(proba=range(n), ood_score=scores)
        return scores.astype(np.float64, copy=False)

    @staticmethod
    def _check_fallback(
        fallback: ArrayLike | None, n: int, n_classes: int
    ) -> NDArray[np.intp] | None:
        if fallback is None:
            return None
        if callable(fallback):
            raise InputError(
                "`fallback` must be the fallback's label per row, not the callable itself: "
                "the policy sees probabilities, not inputs. Use "
                "`apply_fallback(rules, inputs).labels`."
            )
        labels = np.asarray(fallback)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise InputError(
                f"`fallback` must be a 1-D integer array of labels (-2 = no opinion, -1 = out "
                f"of scope); got shape {labels.shape} and dtype {labels.dtype}."
            )
        check_consistent_length(proba=range(n), fallback=labels)
        bad = (labels < NO_OPINION) | (labels >= n_classes)
        if bad.any():
            raise InputError(
                f"`fallback` holds label {int(labels[bad][0])}, outside -2..{n_classes - 1} "
                "(-2 = no opinion, -1 = out of scope, else a class index)."
            )
        return labels.astype(np.intp, copy=False)

    def _downstream(self) -> Downstream:
        """The rungs below answering, as fitted so far."""
        return Downstream(
            self.prediction_sets_, self.clarify_max_set_size, self.fallback_trusted_, self.escalate
        )

    def _answer_objective(self) -> dict[str, Any]:
        """The keyword arguments of :func:`fit_answer_threshold` this policy states."""
        return {
            "downstream": self._downstream(),
            "target_risk": self.target_risk,
            "confidence_level": self.confidence_level,
            "bound": self.bound,
            "costs": self.costs,
            "max_escalation_rate": self.max_escalation_rate,
        }

    def _build_rungs(self, *, with_extra: bool = True) -> list[Rung]:
        steps: list[tuple[str, Rung]] = [
            ("answer", AnswerRung(getattr(self, "answer_threshold_", np.inf), self.answer_score))
        ]
        if self.prediction_sets_ is not None:
            steps.append(("clarify", ClarifyRung(self.prediction_sets_, self.clarify_max_set_size)))
        steps.append(("fallback", FallbackRung(self.fallback_trusted_)))
        steps.append(("escalate", EscalateRung(self.escalate, self.abstain_below_)))
        rungs: list[Rung] = [OutOfScopeRung(self.ood_threshold_)]
        extra = list(self.extra_rungs or ()) if with_extra else []
        names = [name for name, _ in steps]
        for name, rung in steps:
            # A user rung runs before its step, or before the next step that is present.
            rungs += [
                r
                for r in extra
                if (r.runs_before if r.runs_before in names else "escalate") == name
            ]
            rungs.append(rung)
        return rungs

    # -- deciding -----------------------------------------------------------------------------
    def decide(
        self,
        proba: ArrayLike,
        ood_score: ArrayLike | None = None,
        fallback: ArrayLike | None = None,
    ) -> Decisions:
        """Decide, for every row, what the system does: vectorised over the batch.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Calibrated class probabilities.
        ood_score : array-like of shape (n_samples,), optional
            Out-of-scope scores; required when the policy was fitted with them.
        fallback : array-like of shape (n_samples,), optional
            The fallback's label per row (-2 = no opinion).

        Returns
        -------
        Decisions
            Column-wise decisions; ``decisions[i]`` is a :class:`Decision`.
        """
        check_fitted(self, "rungs_", "decide")
        P = check_probabilities(proba, "proba", n_classes=self.n_classes_)
        ood = self._check_ood(ood_score, P.shape[0])
        fb = self._check_fallback(fallback, P.shape[0], self.n_classes_)
        predicted, confidence = top_label(P)
        state = run_ladder(LadderState(P, confidence, predicted, ood, fb), self.rungs_)
        band = (confidence >= self.medium_band_floor).astype(np.int8)
        band += answer_scores(P, confidence, self.answer_score) >= self.answer_threshold_
        return Decisions(
            action_codes=state.action_codes,
            label=state.label,
            predicted=predicted,
            confidence=confidence,
            band_codes=band,
            reason_codes=state.reason_codes,
            set_rows=state.set_rows,
            set_masks=state.set_masks,
            ood_score=ood,
            context=self.describe(),
        )

    def decide_one(
        self,
        proba: ArrayLike,
        ood_score: float | None = None,
        fallback: int | None = None,
    ) -> Decision:
        """Decide for a single input given its probability vector.

        The same rungs as :meth:`decide`, run on one row with Python scalars
        (:func:`~failwise.policy.run_row`); the result equals ``decide(proba[None])[0]``.

        Parameters
        ----------
        proba : array-like of shape (n_classes,)
        ood_score : float, optional
        fallback : int, optional
            The fallback's label (-2 = no opinion).

        Returns
        -------
        Decision
        """
        check_fitted(self, "rungs_", "decide_one")
        row = np.asarray(proba, dtype=np.float64)
        if row.ndim != 1:
            raise InputError(
                f"`proba` must be one probability vector of shape (n_classes,); got shape "
                f"{row.shape}. Use `decide` for a batch."
            )
        P = check_probabilities(row[None, :], "proba", n_classes=self.n_classes_)
        ood = self._check_ood(None if ood_score is None else [ood_score], 1)
        fb = self._check_fallback(
            None if fallback is None else np.array([fallback]), 1, self.n_classes_
        )
        state = RowState(
            np.ascontiguousarray(P[0], dtype=np.float64),
            None if ood is None else float(ood[0]),
            NO_OPINION if fb is None else int(fb[0]),
        )
        run_row(state, self.rungs_)
        decision: Decision = state.to_decision(
            self.describe(), float(self.medium_band_floor), float(self.answer_threshold_)
        )
        return decision

    def describe(self) -> dict[str, Any]:
        """The fitted thresholds and their basis, as plain data (used in reason sentences).

        ``"ood_screen"`` is None without out-of-scope scores, else
        :meth:`OODThreshold.to_dict`: the screen's rule, its validation rates, and in
        ``"unmet"`` / ``"notes"`` any rule the data could not meet, named by this policy's
        parameter (``ood_false_alarm_rate``, ``ood_max_accuracy_loss``).
        """
        check_fitted(self, "rungs_", "describe")
        return describe_policy(self)
