"""The API's request and response models.

Requests are strict: unknown fields are refused, types are not coerced (``{"scores":
[false]}`` is a 422, so is ``"0.3"`` for a number), floats must be finite, strings must
be non-blank text (no NUL, no unpaired surrogate), lists have bounds. Responses are
documented here and published in the OpenAPI description.
"""

from __future__ import annotations

import enum
import json
import math
from typing import Annotated, Any, Literal, TypeVar, cast

import orjson
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, JsonValue

from failwise.store import Event

__all__ = [
    "MAX_SCORES",
    "BatchRequest",
    "BatchResponse",
    "ClaimRequest",
    "DecisionOut",
    "DecisionRequest",
    "EventOut",
    "FastJSONResponse",
    "FeedbackRequest",
    "FeedbackResponse",
    "FilterState",
    "Health",
    "ItemDetailOut",
    "LeaseRequest",
    "QueueItemOut",
    "QueuePageOut",
    "QueueRowOut",
    "ResolveRequest",
    "TaskOut",
    "TaskResponse",
    "clean_json",
    "event_out",
]

#: What ``GET /v1/queue?state=`` selects (see :data:`failwise.store.FILTER_STATES`).
FilterState = Literal["open", "waiting", "pending", "claimed", "expired", "resolved", "all"]

#: Longest score vector accepted (classes).
MAX_SCORES = 100_000
#: Longest note or reason accepted (characters).
MAX_NOTE = 10_000

_STRICT = ConfigDict(extra="forbid", strict=True)


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("a non-blank string")
    if "\x00" in value:
        raise ValueError("a string without NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("valid Unicode text (no unpaired surrogate)") from None
    return value


def _json_text(value: Any, depth: int = 0) -> Any:
    if depth > 32:
        raise ValueError("JSON nested at most 32 levels deep")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("valid Unicode text (no unpaired surrogate)") from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("finite numbers (JSON has no NaN or Infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _json_text(key, depth + 1)
            _json_text(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _json_text(item, depth + 1)
    return value


#: Non-blank text without NUL characters (the OpenAPI description says so too).
_NON_BLANK = r"^[^\x00]*\S[^\x00]*$"
Text = Annotated[str, Field(pattern=_NON_BLANK), AfterValidator(_text)]
TaskId = Annotated[
    str, Field(min_length=1, max_length=256, pattern=_NON_BLANK), AfterValidator(_text)
]
Note = Annotated[
    str, Field(min_length=1, max_length=MAX_NOTE, pattern=_NON_BLANK), AfterValidator(_text)
]
Score = Annotated[float, Field(allow_inf_nan=False)]


def _whole(value: Any) -> Any:
    """A float with no fractional part as an int (JSON Schema counts 3.0 as an integer)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


Label = Annotated[int, BeforeValidator(_whole), Field(ge=-1, le=2**31 - 1)]
_LABEL_SCHEMA: dict[str, JsonValue] = {"type": "integer", "minimum": -1, "maximum": 2**31 - 1}
Context = Annotated[dict[str, JsonValue], AfterValidator(_json_text)]
Input = Annotated[JsonValue, AfterValidator(_json_text)]
LeaseSeconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]


class DecisionRequest(BaseModel):
    """One input to decide: its ``scores`` (or its ``input``, when a model is configured)."""

    model_config = _STRICT

    scores: Annotated[list[Score], Field(min_length=1, max_length=MAX_SCORES)] | None = Field(
        None,
        description="The model's score vector (probabilities or logits), one per class.",
    )
    input: Input = Field(
        None, description="The raw input, passed to the configured model (instead of scores)."
    )
    ood_score: Score | None = Field(
        None,
        description="The input's out-of-scope score (higher: more out of scope); required "
        "when the policy was fitted with one.",
    )
    context: Context | None = Field(
        None, description="Anything to keep with the decision (shown to reviewers)."
    )
    task_id: TaskId | None = Field(None, description="The task id; a fresh one by default.")


class BatchRequest(BaseModel):
    """Many inputs, decided and recorded in one transaction."""

    model_config = _STRICT

    items: Annotated[list[DecisionRequest], Field(min_length=1, max_length=100_000)]


class DecisionOut(BaseModel):
    """A decision as recorded (``Decision.to_dict()``)."""

    model_config = ConfigDict(extra="allow")

    action: Literal["answer", "clarify", "fallback", "escalate", "abstain"]
    label: int | None
    confidence: float | None
    band: str
    prediction_set: list[int]
    reason: str
    predicted: int | None
    task_id: str
    policy_version: str | None
    review: Literal["escalation", "audit"] | None
    review_probability: float | None


class BatchResponse(BaseModel):
    """The decisions of a batch, in input order."""

    decisions: list[DecisionOut]


class FeedbackRequest(BaseModel):
    """What the user did with the task's output."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "oneOf": [
                {
                    "properties": {"outcome": {"const": "corrected"}, "label": _LABEL_SCHEMA},
                    "required": ["label"],
                },
                {
                    "properties": {
                        "outcome": {"enum": ["accepted", "abandoned"]},
                        "label": {"type": "null"},
                    }
                },
            ]
        },
    )

    outcome: Literal["accepted", "corrected", "abandoned"]
    label: Label | None = Field(
        None, description="The user's correct label (only with `corrected`; -1: out of scope)."
    )


class FeedbackResponse(BaseModel):
    """The event written."""

    event_id: int


class EventOut(BaseModel):
    """One event of a task."""

    id: int
    task_id: str
    kind: str
    at: float
    label: int | None
    payload: dict[str, Any]


class TaskOut(BaseModel):
    """A task as its decision opened it."""

    task_id: str
    created_at: float
    action: str
    label: int | None
    confidence: float | None
    predicted: int | None
    band: str | None
    ood_score: float | None
    policy_version: str | None
    decision: dict[str, Any]


class QueueItemOut(BaseModel):
    """One review-queue item."""

    id: int
    task_id: str
    kind: Literal["escalation", "audit"]
    reason: str
    priority: float
    created_at: float
    state: Literal["pending", "claimed", "expired", "resolved"]
    claimed_by: str | None
    lease_expires_at: float | None
    claimed_at: float | None
    resolved_at: float | None
    resolved_by: str | None
    label: int | None
    note: str | None
    due_at: float = Field(description="When the item is due, from its priority (the SLA).")


class QueueRowOut(QueueItemOut):
    """One item of the reviewer's list."""

    breached: bool = Field(description="Past its due time (unresolved, or resolved late).")
    action: str
    predicted: int | None
    confidence: float | None
    preview: str = Field(description="One line of the recorded input.")


class QueuePageOut(BaseModel):
    """One page of the list, by priority then age, and how many items match in all."""

    items: list[QueueRowOut]
    total: int
    limit: int
    offset: int
    at: float


class ItemDetailOut(BaseModel):
    """One item with what a reviewer needs to resolve it."""

    item: QueueItemOut
    breached: bool
    decision: dict[str, Any]
    context: dict[str, Any] | None
    input_text: str
    top_labels: list[tuple[int, float]] = Field(
        description="The model's most probable labels with calibrated probabilities."
    )
    prediction_set: list[int]
    reason: str
    events: list[EventOut]


class TaskResponse(BaseModel):
    """A task, its events and its queue items."""

    task: TaskOut
    events: list[EventOut]
    queue_items: list[QueueItemOut]


class ClaimRequest(BaseModel):
    """Claim the next item (highest priority, then oldest)."""

    model_config = _STRICT

    kind: Literal["escalation", "audit"] | None = None
    lease_s: LeaseSeconds | None = None


class LeaseRequest(BaseModel):
    """Extend the lease of a claimed item."""

    model_config = _STRICT

    lease_s: LeaseSeconds | None = None


class ResolveRequest(BaseModel):
    """The item's label, or that the input is out of scope; an optional note."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "oneOf": [
                {
                    "properties": {"label": _LABEL_SCHEMA, "out_of_scope": {"const": False}},
                    "required": ["label"],
                },
                {
                    "properties": {"label": {"type": "null"}, "out_of_scope": {"const": True}},
                    "required": ["out_of_scope"],
                },
            ]
        },
    )

    label: Label | None = None
    out_of_scope: bool = False
    note: Note | None = None


class Health(BaseModel):
    """A probe's answer."""

    status: Literal["ok", "unavailable"]
    detail: str | None = None
    schema_version: int | None = None


_T = TypeVar("_T")


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value


def event_out(event: Event) -> dict[str, Any]:
    """An event as the API serialises it."""
    return {
        "id": event.id,
        "task_id": event.task_id,
        "kind": event.kind,
        "at": event.at,
        "label": event.label,
        "payload": event.payload,
    }


def clean_json(value: _T) -> _T:
    """``value`` with every NaN or infinite float replaced by None (JSON cannot hold them)."""
    return cast(_T, _clean(value))


def _orjson_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class FastJSONResponse(Response):
    """A JSON response encoded in one native call (``orjson``).

    Its text is what :func:`clean_json` then ``JSONResponse`` give, without the copy:
    NaN and infinite floats become ``null``, NumPy scalars and arrays numbers and lists.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, default=_orjson_default, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            # What orjson does not take but JSON holds (an integer beyond 64 bits in a
            # client's context): the standard encoder, as JSONResponse does.
            return json.dumps(
                clean_json(content),
                default=_orjson_default,
                ensure_ascii=False,
                allow_nan=False,
                separators=(",", ":"),
            ).encode("utf-8")
