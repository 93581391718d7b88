"""Deterministic fallback: rules that give a label when the model is not trusted.

A *fallback* is any callable ``x -> label | None``: an int class index, ``OUT_OF_SCOPE``
(-1) for "this input is one we do not handle", or None for "no opinion". Keyword and
regular-expression rules are provided; any lookup table or business rule with the same
signature works too. Running a fallback over a batch (:func:`apply_fallback`) and
measuring it (:func:`measure_fallback`) live in :mod:`failwise.policy._fallback_report`
(re-exported here).

In label arrays, "no opinion" is :data:`NO_OPINION` (-2), distinct from
``OUT_OF_SCOPE`` (-1), which is an opinion: "this input is out of scope".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from failwise._validation import describe
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


# Running and measuring a fallback: their own module, importable from here as before.
from failwise.policy._fallback_report import (  # noqa: E402
    FallbackReport,
    FallbackResult,
    apply_fallback,
    measure_fallback,
)
