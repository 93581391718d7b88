"""The rule that turns an out-of-scope score into a threshold, failing safe.

:func:`fit_ood_threshold` sets the threshold on validation data. Its primary rule is a
split-conformal false-alarm rate on in-scope inputs, which works from a few dozen
in-scope rows and needs no out-of-scope examples; an accuracy budget (the share of
correctly answered in-scope inputs the screen may take away) and an absolute accuracy
floor are optional extras. When data is too scarce for a rule, the screen stays on at the
strictest threshold the data supports and the result says which rule was not met, naming
the caller's parameter: it never switches itself off silently.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._stats import binomial_cdf, binomial_sf, clopper_pearson_lower
from failwise._validation import (
    check_binary_labels,
    check_consistent_length,
    check_scores,
)
from failwise.exceptions import InputError, UncertifiedWarning

__all__ = ["OODThreshold", "fit_ood_threshold"]

# Parameter names of fit_ood_threshold; callers with their own names (Policy) map them.
_OWN_NAMES: Mapping[str, str] = {
    "max_false_alarm_rate": "max_false_alarm_rate",
    "max_accuracy_loss": "max_accuracy_loss",
    "min_in_scope_accuracy": "min_in_scope_accuracy",
}


@dataclass(frozen=True)
class OODThreshold:
    """A fitted out-of-scope threshold and what it did on validation data.

    An input is flagged out of scope when its score is strictly above ``threshold``.
    ``float(result)`` is the threshold.

    Attributes
    ----------
    threshold : float
        Finite whenever there is at least one in-scope validation score.
    limited_by : str
        The rule that set the threshold: ``"false_alarm_rate"``, ``"accuracy_loss"``,
        ``"in_scope_accuracy"``, or ``"too_few_samples"`` (the false-alarm rate could not
        be met; only scores above every in-scope validation score are flagged).
    max_false_alarm_rate : float
    min_in_scope_accuracy : float or None
    confidence_level : float
    n_in_scope, n_out_of_scope : int
        Validation rows used for calibration / only for reporting.
    false_alarm_rate : float
        Share of in-scope validation inputs flagged.
    oos_recall : float or None
        Share of out-of-scope validation inputs flagged (None without any).
    in_scope_accuracy : float or None
        Share of in-scope validation inputs answered correctly and not flagged (None
        without ``correct``).
    in_scope_accuracy_lower_bound : float or None
        One-sided Clopper–Pearson bound at ``confidence_level`` on that accuracy.
    max_accuracy_loss : float or None
        The accuracy budget asked for (None: none).
    accuracy_loss : float or None
        Share of in-scope validation inputs that the model answers correctly and the screen
        flags: the accuracy the screen costs (None without ``correct``).
    unmet : tuple of str
        The caller's parameters whose rule the data could not meet (empty when all were).
    notes : tuple of str
        One sentence per unmet rule: what was asked, what the data allows, what to change.
    """

    threshold: float
    limited_by: str
    max_false_alarm_rate: float
    min_in_scope_accuracy: float | None
    confidence_level: float
    n_in_scope: int
    n_out_of_scope: int
    false_alarm_rate: float
    oos_recall: float | None
    in_scope_accuracy: float | None
    in_scope_accuracy_lower_bound: float | None
    max_accuracy_loss: float | None = None
    accuracy_loss: float | None = None
    unmet: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Saved states hold lists; keep the record hashable and comparable.
        object.__setattr__(self, "unmet", tuple(self.unmet))
        object.__setattr__(self, "notes", tuple(self.notes))

    def __float__(self) -> float:
        return float(self.threshold)

    @property
    def met(self) -> bool:
        """Whether every rule asked for was met on the validation data."""
        return not self.unmet

    def flag(self, scores: ArrayLike) -> NDArray[np.bool_]:
        """Boolean mask of the inputs flagged out of scope (score > threshold).

        Parameters
        ----------
        scores : array-like of shape (n_samples,)

        Returns
        -------
        ndarray of shape (n_samples,) and dtype bool
        """
        s = check_scores(scores, "scores", ndim=1)
        return np.asarray(s > self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready data (infinities become None, tuples lists).

        Examples
        --------
        >>> fit_ood_threshold(list(range(100))).to_dict()["limited_by"]
        'false_alarm_rate'
        """
        out: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        out["met"] = self.met
        return out


def _check_rate(value: Any, name: str, fix: str, *, closed_high: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, Real)
    if ok:
        number = float(value)
        ok = 0.0 < number <= 1.0 if closed_high else 0.0 < number < 1.0
    if not ok:
        interval = "(0, 1]" if closed_high else "(0, 1)"
        raise InputError(f"`{name}` must be a number in {interval}; got {value!r}. {fix}")
    return float(value)


def _lower_bound(successes: int, trials: int, confidence_level: float) -> float:
    """One-sided Clopper–Pearson lower bound on a success probability."""
    return float(clopper_pearson_lower(successes, trials, confidence_level))


def _conformal_threshold(ranked: NDArray[np.float64], rate: float) -> float | None:
    """The ⌈(m + 1)(1 − rate)⌉-th smallest of m sorted scores; None when m is too small."""
    m = ranked.size
    k = math.ceil((m + 1) * (1.0 - rate) - 1e-12)
    if k <= 0:
        return -math.inf
    if k > m:
        return None
    return float(ranked[k - 1])


def fit_ood_threshold(
    scores: ArrayLike,
    is_out_of_scope: ArrayLike | None = None,
    *,
    max_false_alarm_rate: float = 0.05,
    correct: ArrayLike | None = None,
    max_accuracy_loss: float | None = None,
    min_in_scope_accuracy: float | None = None,
    confidence_level: float = 0.95,
) -> OODThreshold:
    """Fit the out-of-scope threshold on validation scores, failing safe.

    The threshold is the lowest one (most out-of-scope inputs caught) that meets every
    rule asked for; inputs with a score strictly above it are flagged.

    1. **False alarms** (always; the primary rule): the threshold is the
       ⌈(n + 1)(1 − α)⌉-th smallest of the n in-scope scores, α = ``max_false_alarm_rate``
       (split conformal, Vovk et al., 2005). Guarantee: for a new in-scope input
       exchangeable with the in-scope validation inputs, P(flagged) ≤ α, over the draw of
       both; without ties it is also ≥ α − 1/(n + 1). It needs only n ≥ 1/α − 1 in-scope
       rows (19 at α = 0.05) and no out-of-scope examples.
    2. **Accuracy budget** (when ``max_accuracy_loss`` is given, with ``correct``): the
       threshold is also at least the k-th smallest score of the m in-scope rows the model
       answers correctly, with k the smallest index such that
       P(Binomial(m, 1 − b) < k) ≥ ``confidence_level``, b = ``max_accuracy_loss``
       (training-conditional split conformal, Vovk, 2012, on the correctly answered rows).
       Guarantee: with probability ≥ ``confidence_level`` over the validation draw, a new
       in-scope input that the model would answer correctly is flagged with probability
       ≤ b, so the screen lowers in-scope accuracy by at most b; inputs the model gets
       wrong may be flagged freely. It needs m ≥ log(1 − confidence_level) / log(1 − b)
       correct rows (149 at b = 0.02 and 95 %), whatever the model's accuracy.
    3. **Accuracy floor** (when ``min_in_scope_accuracy`` is given, with ``correct``):
       candidate thresholds are tested from "flag nothing" downwards (fixed-sequence
       Learn-then-Test, Angelopoulos et al., 2021); the null "in-scope accuracy, counting
       flagged inputs as wrong, is below ``min_in_scope_accuracy``" is rejected by an exact
       binomial test at level 1 − ``confidence_level``. Guarantee: with probability ≥
       ``confidence_level``, the accuracy of the chosen threshold on exchangeable in-scope
       inputs is at least the floor (the metric of Larson et al., 2019).

    **Failing safe.** When the data cannot meet a rule, the screen stays on and the result
    names the rule in ``unmet`` and ``notes`` (an :class:`UncertifiedWarning` says the
    same): too few in-scope rows for rule 1 or too few correct rows for rule 2 — only
    scores above every in-scope (correct) validation score are flagged; a floor the model
    cannot be certified to reach even with nothing flagged — rules 1 and 2 alone set the
    threshold. Flagging hands an input down the ladder (fallback, clarify, escalate), so
    an unmet rule costs automation, never silent wrong answers.

    Out-of-scope rows never move the threshold: every rule constrains only in-scope
    behaviour and out-of-scope recall can only grow as the threshold falls, so the lowest
    feasible threshold is the best one for any out-of-scope distribution. Labelled
    out-of-scope rows are used to report the recall they see.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        Validation out-of-scope scores, higher = more likely out of scope (any score of
        this package, or a :class:`CombinedOODScore`). NaN and infinities are rejected.
    is_out_of_scope : array-like of bool, shape (n_samples,), optional
        True for labelled out-of-scope rows (``y == -1``). Default: all in scope.
    max_false_alarm_rate : float, default=0.05
        Largest share of in-scope inputs that may be flagged (handed off instead of
        answered).
    correct : array-like of bool, shape (n_samples,), optional
        Whether the model's predicted label is right; read on in-scope rows only.
        Needed for ``max_accuracy_loss`` and ``min_in_scope_accuracy``; otherwise only
        reported.
    max_accuracy_loss : float in (0, 1], optional
        Largest share of correctly answered in-scope inputs the screen may flag, certified
        at ``confidence_level``.
    min_in_scope_accuracy : float, optional
        Required share of in-scope inputs answered correctly and not flagged.
    confidence_level : float, default=0.95
        Confidence of the accuracy-budget and accuracy-floor guarantees (and of the
        reported bound).

    Returns
    -------
    OODThreshold
        ``float(result)`` is the threshold; the other fields report validation rates and
        any rule the data could not meet.

    Warns
    -----
    UncertifiedWarning
        When a rule cannot be met on this data; the message names the parameter.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> in_scope, oos = rng.normal(0, 1, 999), rng.normal(3, 1, 100)
    >>> scores = np.concatenate([in_scope, oos])
    >>> fitted = fit_ood_threshold(scores, np.r_[np.zeros(999), np.ones(100)] == 1)
    >>> round(float(fitted), 2), round(fitted.false_alarm_rate, 3), fitted.oos_recall
    (1.52, 0.049, 0.94)
    """
    screen = fit_screen(
        scores,
        is_out_of_scope,
        max_false_alarm_rate=max_false_alarm_rate,
        correct=correct,
        max_accuracy_loss=max_accuracy_loss,
        min_in_scope_accuracy=min_in_scope_accuracy,
        confidence_level=confidence_level,
    )
    for note in screen.notes:
        warnings.warn(f"fit_ood_threshold: {note}", UncertifiedWarning, stacklevel=2)
    return screen


def fit_screen(
    scores: ArrayLike,
    is_out_of_scope: ArrayLike | None = None,
    *,
    max_false_alarm_rate: float,
    correct: ArrayLike | None = None,
    max_accuracy_loss: float | None = None,
    min_in_scope_accuracy: float | None = None,
    confidence_level: float = 0.95,
    names: Mapping[str, str] = _OWN_NAMES,
) -> OODThreshold:
    """:func:`fit_ood_threshold` without warnings; ``names`` renames parameters in notes.

    ``names`` maps this function's parameter names to the caller's own (a ``Policy``
    passes ``{"max_false_alarm_rate": "ood_false_alarm_rate", ...}``), so that errors,
    ``unmet`` and ``notes`` name an argument the user actually passed.
    """
    name = {**_OWN_NAMES, **names}
    s = check_scores(scores, "scores", ndim=1).astype(np.float64, copy=False)
    n_total = s.shape[0]
    if is_out_of_scope is None:
        oos = np.zeros(n_total, dtype=bool)
    else:
        oos = check_binary_labels(is_out_of_scope, "is_out_of_scope").astype(bool)
        check_consistent_length(scores=s, is_out_of_scope=oos)
    fa_name = name["max_false_alarm_rate"]
    alpha = _check_rate(
        max_false_alarm_rate,
        fa_name,
        "It is the largest share of in-scope inputs that may be flagged, e.g. 0.05.",
    )
    level = _check_rate(confidence_level, "confidence_level", "Use e.g. 0.95.")
    budget = floor = None
    if max_accuracy_loss is not None:
        budget = _check_rate(
            max_accuracy_loss,
            name["max_accuracy_loss"],
            "It is the largest share of correctly answered in-scope inputs the screen may "
            "flag, e.g. 0.02.",
            closed_high=True,
        )
    if min_in_scope_accuracy is not None:
        floor = _check_rate(
            min_in_scope_accuracy,
            name["min_in_scope_accuracy"],
            "It is the required share of in-scope inputs answered correctly, e.g. 0.93.",
        )
    right: NDArray[np.bool_] | None = None
    if correct is not None:
        right = check_binary_labels(correct, "correct").astype(bool)
        check_consistent_length(scores=s, correct=right)
    for asked, key in ((budget, "max_accuracy_loss"), (floor, "min_in_scope_accuracy")):
        if asked is not None and right is None:
            raise InputError(
                f"`{name[key]}` needs `correct` (whether each prediction is right); got "
                "correct=None. Pass `correct=(predicted == y)` for the validation rows."
            )

    inside = s[~oos]
    n = int(inside.size)
    if n == 0:
        raise InputError(
            f"`is_out_of_scope` marks all {n_total} rows out of scope; the threshold is "
            "calibrated on in-scope scores, so pass validation data with in-scope rows."
        )
    unmet: list[str] = []
    notes: list[str] = []
    ranked = np.sort(inside)
    conformal = _conformal_threshold(ranked, alpha)
    if conformal is None:
        threshold, limited_by = float(ranked[-1]), "too_few_samples"
        needed = math.ceil(1.0 / alpha - 1.0 - 1e-12)
        unmet.append(fa_name)
        notes.append(
            f"{n} in-scope validation scores cannot certify `{fa_name}={alpha:g}`: at least "
            f"{needed} are needed. The out-of-scope screen stays on but flags only scores "
            f"above every in-scope one (false-alarm rate up to 1/(n + 1) = {1 / (n + 1):.3g})."
            f" Add in-scope validation rows or raise `{fa_name}`."
        )
    else:
        threshold, limited_by = conformal, "false_alarm_rate"

    right_in = right[~oos] if right is not None else None
    if budget is not None and right_in is not None:
        threshold, limited_by, note = _accuracy_budget(
            inside, right_in, budget, level, name["max_accuracy_loss"], threshold, limited_by
        )
        if note:
            unmet.append(name["max_accuracy_loss"])
            notes.append(note)
    if floor is not None and right_in is not None:
        threshold, limited_by, note = _accuracy_floor(
            inside, right_in, floor, level, threshold, limited_by, name["min_in_scope_accuracy"]
        )
        if note:
            unmet.append(name["min_in_scope_accuracy"])
            notes.append(note)

    flagged_in = inside > threshold
    accuracy = bound = loss = None
    if right_in is not None:
        kept_right = int(np.sum(right_in & ~flagged_in))
        accuracy = kept_right / n
        bound = _lower_bound(kept_right, n, level)
        loss = int(np.sum(right_in & flagged_in)) / n
    n_oos = int(oos.sum())
    return OODThreshold(
        threshold=threshold,
        limited_by=limited_by,
        max_false_alarm_rate=alpha,
        min_in_scope_accuracy=floor,
        confidence_level=level,
        n_in_scope=n,
        n_out_of_scope=n_oos,
        false_alarm_rate=float(np.mean(flagged_in)),
        oos_recall=float(np.mean(s[oos] > threshold)) if n_oos else None,
        in_scope_accuracy=accuracy,
        in_scope_accuracy_lower_bound=bound,
        max_accuracy_loss=budget,
        accuracy_loss=loss,
        unmet=tuple(unmet),
        notes=tuple(notes),
    )


def _accuracy_budget(
    inside: NDArray[np.float64],
    right: NDArray[np.bool_],
    budget: float,
    level: float,
    parameter: str,
    threshold: float,
    limited_by: str,
) -> tuple[float, str, str | None]:
    """Training-conditional conformal bar on the correct in-scope rows; at least ``threshold``."""
    ranked = np.sort(inside[right])
    m = ranked.size
    # The k-th smallest of m scores leaves a share 1 - F(bar) ~ 1 - Beta(k, m - k + 1) of
    # new correct rows above it; P(that share <= budget) = P(Binomial(m, 1 - budget) < k).
    note = None
    ok = np.zeros(0, dtype=np.intp)
    if m and budget < 1.0:
        ok = np.flatnonzero(binomial_cdf(np.arange(m), m, 1.0 - budget) >= level)
    if budget >= 1.0:
        bar = -math.inf
    elif ok.size:
        bar = float(ranked[int(ok[0])])  # k = ok[0] + 1: the k-th smallest
    else:
        needed = math.ceil(math.log(1.0 - level) / math.log(1.0 - budget) - 1e-9)
        note = (
            f"`{parameter}={budget:g}` cannot be certified at confidence {level:g} on {m} "
            f"correctly answered in-scope validation rows: at least {needed} are needed. The "
            "out-of-scope screen stays on but flags only scores above every correctly answered "
            f"one, which may cost more accuracy than {budget:g}. Add labelled validation rows "
            f"or raise `{parameter}`."
        )
        bar = float(ranked[-1]) if m else threshold
    if bar > threshold:
        return bar, "accuracy_loss", note
    return threshold, limited_by, note


def _accuracy_floor(
    inside: NDArray[np.float64],
    right: NDArray[np.bool_],
    floor: float,
    level: float,
    threshold_far: float,
    limited_by: str,
    parameter: str,
) -> tuple[float, str, str | None]:
    """Fixed-sequence test of "accuracy ≥ floor" from strict to lenient thresholds."""
    n = inside.size
    order = np.argsort(-inside, kind="stable")
    desc, right_desc = inside[order], right[order]
    # Candidates from strict to lenient: every distinct score. Threshold desc[starts[i]]
    # flags the rows before starts[i] (all strictly larger scores); the strictest, the
    # largest in-scope score, flags none of them yet keeps the screen on for new inputs
    # beyond everything seen.
    starts = np.flatnonzero(np.r_[True, desc[1:] != desc[:-1]])
    candidates = desc[starts]
    n_flagged = starts
    lost = np.r_[0, np.cumsum(right_desc)]
    kept_right = int(right.sum()) - lost[n_flagged]
    # Null: accuracy < floor. p = P(Binomial(n, floor) >= kept_right).
    p_values = binomial_sf(kept_right, n, floor)
    delta = 1.0 - level
    passed = (p_values <= delta) & (candidates >= threshold_far)
    if not p_values[0] <= delta:
        accuracy = kept_right[0] / n
        note = (
            f"`{parameter}={floor:g}` cannot be certified: in-scope accuracy is "
            f"{accuracy:.4f} on {n} validation inputs (lower bound "
            f"{_lower_bound(int(kept_right[0]), n, level):.4f} at confidence {level:g}) even "
            "with nothing flagged, so the screen cannot meet it; the other rules set the "
            f"threshold. Lower `{parameter}`, improve the model, or add validation data."
        )
        return threshold_far, limited_by, note
    last = int(np.argmin(passed)) - 1 if not passed.all() else passed.size - 1
    chosen = float(candidates[last])
    if chosen > threshold_far:
        return chosen, "in_scope_accuracy", None
    return threshold_far, limited_by, None
