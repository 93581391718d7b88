"""Argument checks of :class:`~failwise.runtime.Guard` and its entry points."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["check_batch", "check_context", "check_contexts", "check_labels", "check_timeout"]


def check_timeout(timeout_s: Any) -> float | None:
    """None, or a positive finite number of seconds."""
    if timeout_s is None:
        return None
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, Real)
        or not math.isfinite(float(timeout_s))
        or timeout_s <= 0
    ):
        raise InputError(
            f"`timeout_s` must be None or a positive number of seconds, e.g. 0.5; got "
            f"{describe(timeout_s)}."
        )
    return float(timeout_s)


def check_labels(labels: Any, n_classes: int) -> list[str] | None:
    """None, or one class name per class."""
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise InputError(f"`labels` must be a sequence of class names; got {describe(labels)}.")
    names = list(labels)
    if len(names) != n_classes or not all(isinstance(n, str) for n in names):
        raise InputError(
            f"`labels` must hold {n_classes} class names (str), one per class in the "
            f"policy's order; got {describe(labels)}."
        )
    return names


def check_context(context: Any, *, recorded: bool) -> dict[str, Any] | None:
    """None, or a str-keyed mapping (JSON-serialisable when ``recorded``)."""
    if context is None:
        return None
    if not isinstance(context, Mapping) or not all(isinstance(k, str) for k in context):
        raise InputError(
            f"`context` must be a mapping with str keys (e.g. {{'user': 'u1'}}) or None; "
            f"got {describe(context)}."
        )
    ctx = dict(context)
    if recorded:
        try:
            json.dumps(ctx, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"`context` is recorded with the decision, so it must be JSON-serialisable; "
                f"{exc}. Pass plain str, number, bool, list and dict values."
            ) from None
    return ctx


def check_batch(xs: Any) -> list[Any]:
    """The inputs of a batch as a list."""
    if isinstance(xs, (str, bytes)) or not isinstance(xs, Iterable):
        raise InputError(
            f"`xs` must be a sequence of inputs; got {describe(xs)}. Use `decide` for one "
            "input, or wrap it in a list."
        )
    return list(xs)


def check_contexts(contexts: Any, n: int, *, recorded: bool) -> list[dict[str, Any] | None]:
    """One checked context (or None) per input."""
    if contexts is None:
        return [None] * n
    if isinstance(contexts, (str, bytes, Mapping)) or not isinstance(contexts, Sequence):
        raise InputError(
            f"`contexts` must be a sequence with one mapping (or None) per input; got "
            f"{describe(contexts)}."
        )
    if len(contexts) != n:
        raise InputError(
            f"`contexts` has {len(contexts)} entries for {n} inputs; pass one per input."
        )
    return [check_context(c, recorded=recorded) for c in contexts]
