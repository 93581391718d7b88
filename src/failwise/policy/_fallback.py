"""Deterministic fallback: rules that give a label when the model is not trusted.

A *fallback* is any callable ``x -> label | None``: an int class index, ``OUT_OF_SCOPE``
(-1) for "this input is one we do not handle", or None for "no opinion". Keyword and
regular-expression rules are provided; any lookup table or business rule with the same
signature works too. :func:`apply_fallback` runs a fallback over a batch without ever
letting one failing input crash the ladder, and :func:`measure_fallback` measures how
often it fires and how often it is right on labelled validation data.

In label arrays, "no opinion" is :data:`NO_OPINION` (-2), distinct from
``OUT_OF_SCOPE`` (-1), which is an opinion: "this input is out of scope".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._stats import clopper_pearson_interval
from failwise._validation import check_consistent_length, check_labels, describe
from failwise.exceptions import InputError
from failwise.policy._decision import NO_OPINION

__all__ = [
    "NO_OPINION",
    "FallbackReport",
    "FallbackResult",
    "KeywordRules",
    "RegexRules",
    "apply_fallback",
    "measure_fallback",
]


_OUT_OF_SCOPE: Final = -1  # same value as failwise.OUT_OF_SCOPE


def _rule_label(value: Any, where: str) -> int:
    """Validate the label a rule maps to: a class index >= 0 or OUT_OF_SCOPE (-1)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(
            f"{where}: the label must be an int class index (or -1 for out of scope); got "
            f"{describe(value)}. Map intent names to indices first, e.g. with the sorted "
            "list of class names."
        )
    label = int(value)
    if label == NO_OPINION:
        raise InputError(
            f"{where}: -2 is NO_OPINION, which is what the rules return when nothing matches; "
            "it cannot be a rule's label. Remove the rule, or use -1 for out of scope."
        )
    if label < _OUT_OF_SCOPE:
        raise InputError(
            f"{where}: the label must be a class index >= 0 or -1 (out of scope); got {label}."
        )
    return label


def _check_text(text: Any, name: str = "text") -> str:
    if not isinstance(text, str):
        raise InputError(
            f"`{name}` must be a str; got {describe(text)}. Rules match text; convert the "
            "input to a string or use a custom fallback callable for other input types."
        )
    return text


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise InputError(
            f"`texts` must be a sequence of strings; got a single {type(texts).__name__}. "
            "Wrap one text in a list: `rules.apply([text])`, or call `rules(text)`."
        )
    try:
        items = list(texts)
    except TypeError:
        raise InputError(
            f"`texts` must be an iterable of strings; got {describe(texts)}."
        ) from None
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InputError(
                f"`texts` must hold only strings; item {index} is {describe(item)}. Replace "
                "missing texts with '' (no rule fires on an empty string)."
            )
    return items


class _Rules:
    """Shared matching: ordered (compiled pattern, label) pairs, first match wins."""

    _compiled: tuple[tuple[re.Pattern[str], int], ...]

    def _prepare(self, text: str) -> str:
        return text

    def __call__(self, text: str) -> int | None:
        """Return the label of the first rule that matches ``text``, or None."""
        prepared = self._prepare(_check_text(text))
        for pattern, label in self._compiled:
            if pattern.search(prepared) is not None:
                return label
        return None

    def apply(self, texts: Iterable[str]) -> NDArray[np.intp]:
        """Label every text; :data:`NO_OPINION` (-2) where no rule matches.

        Parameters
        ----------
        texts : iterable of str, length n_samples
            The inputs. A non-string item raises :class:`~failwise.InputError`
            naming its position.

        Returns
        -------
        ndarray of shape (n_samples,) and dtype intp
        """
        items = _check_texts(texts)
        labels = np.full(len(items), NO_OPINION, dtype=np.intp)
        for index, text in enumerate(items):
            label = self(text)
            if label is not None:
                labels[index] = label
        return labels

    @property
    def n_rules(self) -> int:
        """Number of distinct rules after validation."""
        return len(self._compiled)


class KeywordRules(_Rules):
    """Map keywords or phrases to labels; the first rule that matches wins.

    Tie rule: rules are tried in priority order and the first one whose keyword
    occurs anywhere in the text gives the label, whatever its position in the text.
    For a list of ``(keyword, label)`` pairs the priority is the list order; for a
    mapping ``{label: keywords}`` it is the mapping's order, then each label's
    keyword order. List specific phrases before general ones
    (``("rewards balance", 12)`` before ``("balance", 6)``).

    Matching: texts and keywords are Unicode-normalised (NFC); without
    ``case_sensitive`` both are case-folded (so "STRASSE" matches "straße"); the
    words of a phrase match across any run of whitespace; with ``whole_word`` a
    keyword matches only where it is not preceded or followed by a letter, digit or
    underscore ("card" does not fire on "cardinal"); scripts written without spaces
    between words (Chinese, Japanese, Thai) need ``whole_word=False``. An empty text
    matches nothing.

    Parameters
    ----------
    rules : mapping of int to sequence of str, or sequence of (str, int)
        ``{label: [keyword, ...]}`` or ``[(keyword, label), ...]``. A label is a
        class index >= 0, or ``OUT_OF_SCOPE`` (-1) for keywords that signal an input
        the system does not handle. A single string in the mapping is one keyword.
    case_sensitive : bool, default=False
        Match case exactly.
    whole_word : bool, default=True
        Match whole words and phrases only.

    Raises
    ------
    InputError
        On an empty keyword, a label that is not an int >= -1, or one keyword mapped
        to two labels (the second rule could never fire).

    Examples
    --------
    >>> from failwise.policy import KeywordRules
    >>> rules = KeywordRules([("rewards balance", 1), ("balance", 0), ("stock", -1)])
    >>> rules("What's my REWARDS balance?"), rules("balance please"), rules("hello")
    (1, 0, None)
    >>> rules.apply(["Buy stock", "", "my balance"]).tolist()
    [-1, -2, 0]
    """

    def __init__(
        self,
        rules: Mapping[int, Sequence[str] | str] | Sequence[tuple[str, int]],
        *,
        case_sensitive: bool = False,
        whole_word: bool = True,
    ) -> None:
        self.rules = rules
        self.case_sensitive = case_sensitive
        self.whole_word = whole_word
        for name, value in (("case_sensitive", case_sensitive), ("whole_word", whole_word)):
            if not isinstance(value, bool):
                raise InputError(f"KeywordRules: `{name}` must be a bool; got {describe(value)}.")
        compiled: list[tuple[re.Pattern[str], int]] = []
        seen: dict[str, tuple[int, int]] = {}
        for position, (keyword, label) in enumerate(self._pairs(rules)):
            key = self._prepare(keyword).strip()
            if not key:
                raise InputError(
                    f"KeywordRules: rule {position} has an empty keyword {keyword!r}; every "
                    "keyword needs at least one non-space character."
                )
            if key in seen:
                first_position, first_label = seen[key]
                if first_label != label:
                    raise InputError(
                        f"KeywordRules: keyword {keyword!r} maps to {first_label} (rule "
                        f"{first_position}) and to {label} (rule {position}); the second rule "
                        "could never fire. Keep one label per keyword."
                    )
                continue
            seen[key] = (position, label)
            body = r"\s+".join(re.escape(word) for word in key.split())
            if whole_word:
                body = rf"(?<!\w){body}(?!\w)"
            compiled.append((re.compile(body), label))
        if not compiled:
            raise InputError(
                "KeywordRules: `rules` is empty; pass at least one (keyword, label) pair."
            )
        self._compiled = tuple(compiled)

    @staticmethod
    def _pairs(rules: Any) -> list[tuple[str, int]]:
        pairs: list[tuple[str, int]] = []
        if isinstance(rules, Mapping):
            for raw_label, keywords in rules.items():
                label = _rule_label(raw_label, f"KeywordRules: key {raw_label!r}")
                words = [keywords] if isinstance(keywords, str) else keywords
                if not isinstance(words, Sequence):
                    raise InputError(
                        f"KeywordRules: the keywords of label {label} must be a list of "
                        f"strings; got {describe(keywords)}."
                    )
                for word in words:
                    if not isinstance(word, str):
                        raise InputError(
                            f"KeywordRules: keywords of label {label} must be strings; got "
                            f"{describe(word)}."
                        )
                    pairs.append((word, label))
            return pairs
        if isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence):
            raise InputError(
                "KeywordRules: `rules` must be a mapping {label: [keywords]} or a list of "
                f"(keyword, label) pairs; got {describe(rules)}."
            )
        for position, rule in enumerate(rules):
            if not (isinstance(rule, (tuple, list)) and len(rule) == 2):
                raise InputError(
                    f"KeywordRules: rule {position} must be a (keyword, label) pair; got "
                    f"{describe(rule)}."
                )
            keyword, label = rule
            if not isinstance(keyword, str):
                swapped = " Did you swap them?" if isinstance(label, str) else ""
                raise InputError(
                    f"KeywordRules: rule {position} must be (keyword, label) with a str "
                    f"keyword; got {tuple(rule)!r}.{swapped}"
                )
            pairs.append((keyword, _rule_label(label, f"KeywordRules: rule {position}")))
        return pairs

    def _prepare(self, text: str) -> str:
        normalised = unicodedata.normalize("NFC", text)
        return normalised if self.case_sensitive else normalised.casefold()

    def __repr__(self) -> str:
        return (
            f"KeywordRules(<{self.n_rules} rules>, case_sensitive={self.case_sensitive}, "
            f"whole_word={self.whole_word})"
        )


class RegexRules(_Rules):
    """Map regular expressions to labels; the first pattern that matches wins.

    Patterns are compiled once, at construction, and tried in list order with
    :meth:`re.Pattern.search` (a match anywhere in the text); the first pattern that
    matches gives the label.

    Parameters
    ----------
    patterns : sequence of (str or re.Pattern, int)
        ``[(pattern, label), ...]`` in priority order. A label is a class index >= 0,
        or ``OUT_OF_SCOPE`` (-1). Already-compiled patterns keep their own flags.
    flags : int or re.RegexFlag, default=re.IGNORECASE
        Flags used to compile string patterns.

    Raises
    ------
    InputError
        On an invalid regular expression (naming the pattern and the position of the
        error) or an invalid label.

    Examples
    --------
    >>> from failwise.policy import RegexRules
    >>> rules = RegexRules([(r"\\b(pin|password)\\b", 3), (r"\\bw-?2\\b", 5)])
    >>> rules("Change my PIN"), rules("where is my w-2"), rules("hi")
    (3, 5, None)
    """

    def __init__(
        self,
        patterns: Sequence[tuple[str | re.Pattern[str], int]],
        flags: int | re.RegexFlag = re.IGNORECASE,
    ) -> None:
        self.patterns = patterns
        self.flags = flags
        if isinstance(flags, bool) or not isinstance(flags, int):
            raise InputError(
                f"RegexRules: `flags` must be re flags such as re.IGNORECASE; got "
                f"{describe(flags)}."
            )
        if isinstance(patterns, (str, bytes, Mapping)) or not isinstance(patterns, Sequence):
            raise InputError(
                "RegexRules: `patterns` must be a list of (pattern, label) pairs in priority "
                f"order; got {describe(patterns)}."
            )
        if len(patterns) == 0:
            raise InputError("RegexRules: `patterns` is empty; pass at least one pair.")
        compiled: list[tuple[re.Pattern[str], int]] = []
        for position, rule in enumerate(patterns):
            if not (isinstance(rule, (tuple, list)) and len(rule) == 2):
                raise InputError(
                    f"RegexRules: rule {position} must be a (pattern, label) pair; got "
                    f"{describe(rule)}."
                )
            pattern, label = rule
            checked_label = _rule_label(label, f"RegexRules: rule {position} ({pattern!r})")
            if isinstance(pattern, re.Pattern):
                compiled.append((pattern, checked_label))
                continue
            if not isinstance(pattern, str):
                raise InputError(
                    f"RegexRules: rule {position} must have a str or compiled pattern; got "
                    f"{describe(pattern)}."
                )
            try:
                compiled.append((re.compile(pattern, flags), checked_label))
            except re.error as exc:
                raise InputError(
                    f"RegexRules: pattern {position} {pattern!r} is not a valid regular "
                    f"expression: {exc.msg} at position {exc.pos}. Fix the pattern, or wrap "
                    "literal text in re.escape()."
                ) from None
        self._compiled = tuple(compiled)

    def __repr__(self) -> str:
        return f"RegexRules(<{self.n_rules} patterns>, flags={self.flags!r})"


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True, eq=False)
class FallbackResult:
    """The labels a fallback gave to a batch, and what went wrong while computing them.

    Attributes
    ----------
    labels : ndarray of shape (n_samples,) and dtype intp
        Class index, ``OUT_OF_SCOPE`` (-1), or :data:`NO_OPINION` (-2) where the
        fallback returned None, raised, or returned something that is not a label.
    n_errors : int
        Inputs on which the fallback raised or returned an invalid value.
    first_error : Exception or None
        The first such error (an :class:`~failwise.InputError` for an invalid value).
    first_error_index : int or None
        Position of the input that caused ``first_error``.
    """

    labels: NDArray[np.intp]
    n_errors: int
    first_error: Exception | None
    first_error_index: int | None

    @property
    def coverage(self) -> float:
        """Fraction of inputs on which the fallback gave an opinion."""
        if self.labels.shape[0] == 0:
            return 0.0
        return float(np.mean(self.labels != NO_OPINION))


def _output_label(value: Any, n_classes: int | None) -> int:
    if value is None:
        return NO_OPINION
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(
            f"a fallback must return an int label or None; it returned {describe(value)}."
        )
    label = int(value)
    upper = n_classes - 1 if n_classes is not None else None
    if label < NO_OPINION or (upper is not None and label > upper):
        expected = f"-2..{upper}" if upper is not None else ">= -2"
        raise InputError(
            f"a fallback returned label {label}; labels must be in {expected} "
            "(-1 = out of scope, -2 = no opinion)."
        )
    return label


def apply_fallback(
    fallback: Callable[[Any], int | None],
    inputs: Iterable[Any],
    *,
    n_classes: int | None = None,
    on_error: Literal["record", "raise"] = "record",
) -> FallbackResult:
    """Run a fallback over a batch of inputs; a failing input never fails the batch.

    Each input gets the fallback's label, :data:`NO_OPINION` where it returns None,
    and :data:`NO_OPINION` where it raises an :class:`Exception` or returns something
    that is not a label; those inputs are counted in ``n_errors`` and the first error
    is kept, so the ladder degrades to its next rung instead of failing the request.

    Parameters
    ----------
    fallback : callable
        ``x -> int | None``: a :class:`KeywordRules`, a :class:`RegexRules`, a
        lookup-table method or any function.
    inputs : iterable, length n_samples
        The inputs passed one by one to ``fallback``.
    n_classes : int, optional
        When given, labels above ``n_classes - 1`` count as errors.
    on_error : {"record", "raise"}, default="record"
        ``"raise"`` re-raises the first error instead, to debug rules.

    Returns
    -------
    FallbackResult
        ``labels`` of shape (n_samples,), ``n_errors``, ``first_error`` and
        ``first_error_index``.

    Examples
    --------
    >>> from failwise.policy import apply_fallback
    >>> table = {"reset my pin": 3, "lost card": 7}
    >>> result = apply_fallback(lambda text: table.get(text.lower()), ["Lost card", "hi", None])
    >>> result.labels.tolist(), result.n_errors, result.first_error_index
    ([7, -2, -2], 1, 2)
    """
    if not callable(fallback):
        raise InputError(
            f"`fallback` must be a callable x -> label | None; got {describe(fallback)}. Pass "
            "e.g. `KeywordRules(...)`, `RegexRules(...)` or a function."
        )
    if on_error not in ("record", "raise"):
        raise InputError(f"`on_error` must be 'record' or 'raise'; got {describe(on_error)}.")
    if n_classes is not None and (
        isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 1
    ):
        raise InputError(f"`n_classes` must be None or an int >= 1; got {describe(n_classes)}.")
    if isinstance(inputs, (str, bytes)):
        raise InputError(
            f"`inputs` must be a sequence of inputs; got a single {type(inputs).__name__}, "
            "which would be split into characters. Wrap it in a list: `[text]`."
        )
    try:
        items = list(inputs)
    except TypeError:
        raise InputError(f"`inputs` must be iterable; got {describe(inputs)}.") from None
    labels = np.full(len(items), NO_OPINION, dtype=np.intp)
    n_errors = 0
    first_error: Exception | None = None
    first_index: int | None = None
    for index, item in enumerate(items):
        try:
            labels[index] = _output_label(fallback(item), n_classes)
        except Exception as exc:  # a user's rule must not crash the ladder
            if on_error == "raise":
                raise
            n_errors += 1
            if first_error is None:
                first_error, first_index = exc, index
    return FallbackResult(labels, n_errors, first_error, first_index)


# --------------------------------------------------------------------------- measuring


def _clopper_pearson(
    successes: NDArray[np.intp], trials: NDArray[np.intp], confidence_level: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-sided exact binomial interval; (0, 1) where there are no trials."""
    low, high = clopper_pearson_interval(successes, trials, confidence_level)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class FallbackReport:
    """How often a fallback fires and how often it is right, on labelled data.

    A fallback output is correct when it equals the true label; ``OUT_OF_SCOPE``
    (-1) is correct on an out-of-scope input (``y == -1``) and wrong on an in-scope
    one, and a class label on an out-of-scope input is wrong.

    Attributes
    ----------
    n_samples : int
        Labelled inputs.
    n_fired : int
        Inputs on which the fallback gave an opinion (label != NO_OPINION).
    n_correct : int
        Opinions equal to the true label.
    coverage : float
        ``n_fired / n_samples``.
    accuracy : float
        ``n_correct / n_fired``; NaN when the fallback never fired.
    accuracy_low, accuracy_high : float
        Clopper–Pearson interval for the accuracy at ``confidence_level``.
    confidence_level : float
        Level of every interval in the report.
    labels : ndarray of shape (n_labels,)
        Distinct labels the fallback output, ascending (-1 first when present).
    answered : ndarray of shape (n_labels,)
        How often each label was output.
    correct : ndarray of shape (n_labels,)
        How often that output was right.
    precision : ndarray of shape (n_labels,)
        ``correct / answered`` per label.
    precision_low, precision_high : ndarray of shape (n_labels,)
        Clopper–Pearson interval per label.
    """

    n_samples: int
    n_fired: int
    n_correct: int
    coverage: float
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    confidence_level: float
    labels: NDArray[np.intp]
    answered: NDArray[np.intp]
    correct: NDArray[np.intp]
    precision: NDArray[np.float64]
    precision_low: NDArray[np.float64]
    precision_high: NDArray[np.float64]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values; ``per_label`` maps each label to its counts and interval."""
        per_label = {
            int(label): {
                "answered": int(self.answered[i]),
                "correct": int(self.correct[i]),
                "precision": float(self.precision[i]),
                "precision_low": float(self.precision_low[i]),
                "precision_high": float(self.precision_high[i]),
            }
            for i, label in enumerate(self.labels)
        }
        return {
            "n_samples": self.n_samples,
            "n_fired": self.n_fired,
            "n_correct": self.n_correct,
            "coverage": self.coverage,
            "accuracy": None if np.isnan(self.accuracy) else self.accuracy,
            "accuracy_low": self.accuracy_low,
            "accuracy_high": self.accuracy_high,
            "confidence_level": self.confidence_level,
            "per_label": per_label,
        }


def _check_fallback_labels(fallback_labels: Any) -> NDArray[np.intp]:
    if isinstance(fallback_labels, FallbackResult):
        return fallback_labels.labels
    array = np.asarray(fallback_labels)
    if array.ndim != 1:
        raise InputError(
            f"`fallback_labels` must be 1-D (one label per input); got shape {array.shape}. "
            "Pass `apply_fallback(rules, inputs)` or its `.labels`."
        )
    if array.size == 0:
        raise InputError("`fallback_labels` is empty; at least one labelled input is needed.")
    if array.dtype.kind not in "iu":
        raise InputError(
            f"`fallback_labels` must hold int labels (-2 = no opinion, -1 = out of scope); "
            f"got dtype {array.dtype}. Use `apply_fallback`, which converts None to -2."
        )
    labels = array.astype(np.intp, copy=False)
    if labels.min() < NO_OPINION:
        raise InputError(
            f"`fallback_labels` must be >= -2 (-2 = no opinion, -1 = out of scope); got "
            f"{int(labels.min())}."
        )
    return labels


def measure_fallback(
    fallback_labels: ArrayLike | FallbackResult,
    y: ArrayLike,
    *,
    confidence_level: float = 0.95,
) -> FallbackReport:
    """Measure a fallback on labelled validation data: coverage, accuracy, per-label precision.

    Parameters
    ----------
    fallback_labels : array-like of shape (n_samples,) or FallbackResult
        The fallback's label per input: a class index, -1 (out of scope) or -2
        (:data:`NO_OPINION`), e.g. ``apply_fallback(rules, texts)``.
    y : array-like of shape (n_samples,)
        True labels; -1 marks an out-of-scope input.
    confidence_level : float, default=0.95
        Level of the Clopper–Pearson intervals (exact binomial intervals, conservative
        at every sample size).

    Returns
    -------
    FallbackReport

    References
    ----------
    Clopper and Pearson, "The use of confidence or fiducial limits illustrated in the
    case of the binomial", Biometrika, 1934.

    Examples
    --------
    >>> from failwise.policy import measure_fallback
    >>> report = measure_fallback([0, 0, -2, -1, 1], [0, 1, 1, -1, 1])
    >>> report.coverage, report.accuracy
    (0.8, 0.75)
    >>> report.labels.tolist(), report.precision.tolist()
    ([-1, 0, 1], [1.0, 0.5, 1.0])
    """
    if (
        isinstance(confidence_level, bool)
        or not isinstance(confidence_level, Real)
        or not 0.0 < float(confidence_level) < 1.0
    ):
        raise InputError(
            f"`confidence_level` must be a number in (0, 1), e.g. 0.95; got "
            f"{describe(confidence_level)}."
        )
    predicted = _check_fallback_labels(fallback_labels)
    truth = check_labels(y, "y", allow_out_of_scope=True)
    check_consistent_length(fallback_labels=predicted, y=truth)
    fired = predicted != NO_OPINION
    hit = fired & (predicted == truth)
    n_fired, n_correct = int(fired.sum()), int(hit.sum())
    level = float(confidence_level)
    low, high = _clopper_pearson(np.array([n_correct]), np.array([n_fired]), level)
    labels, inverse = np.unique(predicted[fired], return_inverse=True)
    answered = np.bincount(inverse, minlength=labels.size).astype(np.intp)
    correct = np.bincount(inverse, weights=hit[fired], minlength=labels.size).astype(np.intp)
    precision_low, precision_high = _clopper_pearson(correct, answered, level)
    return FallbackReport(
        n_samples=int(predicted.shape[0]),
        n_fired=n_fired,
        n_correct=n_correct,
        coverage=n_fired / predicted.shape[0],
        accuracy=n_correct / n_fired if n_fired else float("nan"),
        accuracy_low=float(low[0]),
        accuracy_high=float(high[0]),
        confidence_level=level,
        labels=labels.astype(np.intp),
        answered=answered,
        correct=correct,
        precision=correct / np.maximum(answered, 1),
        precision_low=precision_low,
        precision_high=precision_high,
    )
