"""Argument checks for the store's public calls.

Every check runs in the caller's thread before anything reaches the database, so a bad
argument fails only its own call and never the batch it would have joined.
"""

from __future__ import annotations

import enum
import json
import math
import time
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = [
    "MAX_ID_LENGTH",
    "check_at",
    "check_decision",
    "check_label",
    "check_payload",
    "check_task_id",
    "check_text",
    "dump_json",
]

#: Longest task id or reviewer name accepted (characters).
MAX_ID_LENGTH = 256

#: Labels are stored as 32-bit integers on every backend.
_LABEL_MAX = 2**31 - 1

_ACTIONS = ("answer", "clarify", "fallback", "escalate", "abstain")
_BANDS = ("high", "medium", "low")


def check_text(value: Any, name: str, *, max_length: int | None = MAX_ID_LENGTH) -> str:
    """A non-empty string without NUL characters."""
    if not isinstance(value, str):
        raise InputError(f"`{name}` must be a non-empty string; got {describe(value)}.")
    if not value.strip():
        raise InputError(f"`{name}` must be a non-empty string; got {value!r}.")
    if "\x00" in value:
        raise InputError(f"`{name}` must not contain NUL characters; got {value!r}.")
    if max_length is not None and len(value) > max_length:
        raise InputError(
            f"`{name}` must be at most {max_length} characters; got {len(value)} "
            f"({value[:40]!r}…). Use a shorter identifier, e.g. a UUID or a hash."
        )
    return value


def check_task_id(value: Any, name: str = "task_id") -> str:
    """A task id: a non-empty string of at most :data:`MAX_ID_LENGTH` characters."""
    if isinstance(value, str):
        return check_text(value, name)
    hint = " Pass `str(task_id)`." if isinstance(value, (int, np.integer)) else ""
    raise InputError(f"`{name}` must be a non-empty string; got {describe(value)}.{hint}")


def check_at(value: Any, name: str = "at") -> float:
    """A finite time in Unix seconds; None means now."""
    if value is None:
        return time.time()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise InputError(
            f"`{name}` must be a time in Unix seconds (a float such as `time.time()`) or None "
            f"for now; got {describe(value)}."
        )
    at = float(value)
    if not math.isfinite(at) or at < 0:
        raise InputError(
            f"`{name}` must be a finite, non-negative time in Unix seconds; got {at!r}."
        )
    return at


def check_label(value: Any, name: str = "label", *, required: bool = False) -> int | None:
    """A class index ``>= 0``, or ``-1`` for out of scope; None unless ``required``."""
    if value is None:
        if required:
            raise InputError(f"`{name}` is required; got None. Pass the class index as an int.")
        return None
    if type(value) is int and -1 <= value <= _LABEL_MAX:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise InputError(
            f"`{name}` must be an int class index (or -1 for out of scope); got {describe(value)}."
        )
    label = int(value)
    if label < -1 or label > _LABEL_MAX:
        extra = (
            " -2 is `Decisions.label`'s marker for rows without a label: pass None instead."
            if label == -2
            else ""
        )
        raise InputError(
            f"`{name}` must be a class index in [0, {_LABEL_MAX}] or -1 for out of scope; "
            f"got {label}.{extra}"
        )
    return label


def _optional_float(value: Any, name: str, *, unit_interval: bool = False) -> float | None:
    if value is None:
        return None
    if type(value) is float:
        number = value
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise InputError(f"`{name}` must be a number or None; got {describe(value)}.")
    else:
        number = float(value)
    if not math.isfinite(number):
        raise InputError(
            f"`{name}` must be finite; got {number!r}. Record None when there is no value "
            "(e.g. when the model failed)."
        )
    if unit_interval and not 0.0 <= number <= 1.0:
        raise InputError(f"`{name}` must lie in [0, 1]; got {number!r}.")
    return number


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if type(value) is int and -_LABEL_MAX <= value <= _LABEL_MAX:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise InputError(f"`{name}` must be an int or None; got {describe(value)}.")
    number = int(value)
    if abs(number) > _LABEL_MAX:
        raise InputError(f"`{name}` must fit in 32 bits; got {number}.")
    return number


_STR_ONLY = frozenset({str})


def check_decision(decision: Any, task_id: str) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """Validate a decision and return its JSON-able dict and its column values.

    The columns are ``(action, label, confidence, predicted, band, ood_score,
    policy_version)``.
    """
    to_dict = getattr(decision, "to_dict", None)
    if not isinstance(decision, Mapping) and callable(to_dict):
        decision = to_dict()
    if not isinstance(decision, Mapping):
        raise InputError(
            f"`decision` must be a mapping (e.g. `Decision.to_dict()`) or a `Decision`; got "
            f"{describe(decision)}."
        )
    if type(decision) is dict and set(map(type, decision)) <= _STR_ONLY:
        record = dict(decision)  # a `to_dict()`: copied at C speed, keys already text
    else:
        record = {str(key): value for key, value in decision.items()}
    action = record.get("action")
    action = action.value if isinstance(action, enum.Enum) else action
    if action not in _ACTIONS:
        raise InputError(
            f"`decision['action']` must be one of {list(_ACTIONS)}; got {action!r}. Record "
            "what the decision ladder did with the input."
        )
    band = record.get("band")
    band = band.value if isinstance(band, enum.Enum) else band
    if band is not None and band not in _BANDS:
        raise InputError(f"`decision['band']` must be one of {list(_BANDS)} or None; got {band!r}.")
    recorded_id = record.get("task_id")
    if recorded_id is not None and recorded_id != task_id:
        raise InputError(
            f"`decision['task_id']` is {recorded_id!r} but the task id passed is {task_id!r}; "
            "they must agree (or leave the decision's task_id unset)."
        )
    policy_version = record.get("policy_version")
    if policy_version is not None and not isinstance(policy_version, str):
        raise InputError(
            "`decision['policy_version']` must be a string or None; got "
            f"{describe(policy_version)}."
        )
    columns = (
        action,
        check_label(record.get("label"), "decision['label']"),
        _optional_float(record.get("confidence"), "decision['confidence']", unit_interval=True),
        _optional_int(record.get("predicted"), "decision['predicted']"),
        band,
        _optional_float(record.get("ood_score"), "decision['ood_score']"),
        policy_version,
    )
    record["task_id"] = task_id
    return record, columns


def check_payload(payload: Any, name: str = "payload") -> dict[str, Any]:
    """A mapping with string keys (None → empty)."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise InputError(f"`{name}` must be a mapping (a dict) or None; got {describe(payload)}.")
    return {str(key): value for key, value in payload.items()}


def _to_json(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dump_json(value: Mapping[str, Any], name: str = "payload") -> str:
    """Compact JSON text; NumPy scalars and arrays become numbers and lists."""
    try:
        return json.dumps(value, default=_to_json, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:
        raise InputError(
            f"`{name}` contains NaN or an infinite float ({exc}); JSON has no such values. "
            "Replace them with None."
        ) from None
    except (TypeError, RecursionError) as exc:
        raise InputError(
            f"`{name}` must hold only JSON values (numbers, strings, booleans, None, lists, "
            f"dicts, NumPy scalars and arrays); {exc}."
        ) from None
