"""Read models of the review queue: the reviewer's list, one item in full, reviewer stats.

These are the queue's reads for people (the reviewer page, the JSON API, the CLI): the
items by priority then age with their due times (:class:`ServiceLevels`), filtered by a
:class:`QueueFilter`; one item with what the reviewer needs to decide; per-reviewer
throughput, handling time and overturn rate; and bulk release / resolve by filter, each
item through :meth:`Queue.release` / :meth:`Queue.resolve`, so each is changed at most
once and every change is an event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from failwise._params import Seconds, check_param
from failwise.exceptions import InputError
from failwise.store._backend import Op, Row, Tx
from failwise.store._checks import check_at, check_label, check_text
from failwise.store._errors import QueueStateError
from failwise.store._events import Event
from failwise.store._queue_filter import QueueFilter, filter_sql
from failwise.store._queue_levels import ServiceLevels
from failwise.store._queue_reads import QueueItem, check_item_id, item_from_row
from failwise.store._queue_stats import QueueStats
from failwise.store._reads import event_from_row

__all__ = [
    "BulkResult",
    "ItemDetail",
    "QueuePage",
    "QueueRow",
    "QueueViews",
    "context_preview",
]

_ITEM = (
    "qi.id, qi.task_id, qi.kind, qi.reason, qi.priority, qi.created_at, qi.state, "
    "qi.claimed_by, qi.lease_expires_at, qi.claimed_at, qi.resolved_at, qi.resolved_by, "
    "qi.label, qi.note"
)
_FROM = (
    "FROM queue_items qi JOIN tasks t ON t.task_id = qi.task_id "
    "JOIN events d ON d.task_id = qi.task_id AND d.kind = 'decision'"
)
_ORDER = "ORDER BY qi.priority DESC, qi.created_at, qi.id"
_CLAIM_ITEM = f"""
UPDATE queue_items SET state = 'claimed', claimed_by = ?, claimed_at = ?, lease_expires_at = ?
WHERE id = ? AND (state IN ('pending', 'expired')
                  OR (state = 'claimed' AND lease_expires_at <= ?))
RETURNING {_ITEM.replace("qi.", "")}
"""

#: Context keys read as the input itself, in this order, when present.
_INPUT_KEYS = ("input", "text", "query", "message", "utterance", "question")

#: Most items one bulk action changes.
MAX_BULK = 10_000


def context_preview(context: Any, limit: int = 160) -> str:
    """A one-line text of a recorded input: its ``input``/``text``/… value, else its JSON."""
    text: str
    if isinstance(context, dict):
        found = next((context[k] for k in _INPUT_KEYS if isinstance(context.get(k), str)), None)
        text = found if found is not None else json.dumps(context, ensure_ascii=False)
    elif context is None:
        text = ""
    else:
        text = context if isinstance(context, str) else json.dumps(context, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class QueueRow:
    """One item of the reviewer's list.

    Attributes
    ----------
    item : QueueItem
    due_at : float
        Unix seconds when it is due (see :class:`ServiceLevels`).
    breached : bool
        Past its due time: unresolved at ``at``, or resolved after it.
    action : str
        The decision's action.
    predicted : int or None
        The model's top label.
    confidence : float or None
        Its calibrated confidence.
    preview : str
        One line of the recorded input (see :func:`context_preview`).
    """

    item: QueueItem
    due_at: float
    breached: bool
    action: str
    predicted: int | None
    confidence: float | None
    preview: str


@dataclass(frozen=True)
class QueuePage:
    """A page of the reviewer's list, the number of items the filter selects, and when."""

    rows: list[QueueRow]
    total: int
    at: float
    offset: int = 0


@dataclass(frozen=True)
class ItemDetail:
    """One queue item with what a reviewer needs to resolve it.

    Attributes
    ----------
    item : QueueItem
    due_at : float
    breached : bool
    decision : dict
        The decision as recorded.
    context : dict or None
        The input as recorded with the decision (``decision["context"]``).
    input_text : str
        The input itself (see :func:`context_preview`, not shortened).
    top_labels : list of (int, float)
        The model's most probable labels with their calibrated probabilities, most
        probable first (``decision["top_labels"]`` when recorded, else the top label and
        its confidence).
    prediction_set : list of int
    reason : str
        Why the decision sent the task here (the decision's reason).
    events : list of Event
        Every event of the task, by time.
    """

    item: QueueItem
    due_at: float
    breached: bool
    decision: dict[str, Any]
    context: dict[str, Any] | None
    input_text: str
    top_labels: list[tuple[int, float]]
    prediction_set: list[int]
    reason: str
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action selected and changed.

    Attributes
    ----------
    matched : int
        Items the filter selected that the action applies to.
    changed : list of int
        Ids of the items changed (empty for a dry run).
    skipped : list of int
        Ids of selected items another reviewer changed first (left as they were).
    dry_run : bool
    """

    matched: int
    changed: list[int]
    skipped: list[int]
    dry_run: bool


def _top_labels(decision: dict[str, Any]) -> list[tuple[int, float]]:
    recorded = decision.get("top_labels")
    out: list[tuple[int, float]] = []
    if isinstance(recorded, list):
        for entry in recorded:
            if (
                isinstance(entry, (list, tuple))
                and len(entry) == 2
                and isinstance(entry[0], int)
                and isinstance(entry[1], (int, float))
            ):
                out.append((int(entry[0]), float(entry[1])))
    if out:
        return out
    predicted, confidence = decision.get("predicted"), decision.get("confidence")
    if isinstance(predicted, int) and predicted >= 0 and isinstance(confidence, (int, float)):
        return [(predicted, float(confidence))]
    return []


def _check_selection(selection: Any) -> QueueFilter:
    if selection is None:
        return QueueFilter()
    if not isinstance(selection, QueueFilter):
        raise InputError(
            f"`selection` must be a failwise.store.QueueFilter or None; got {selection!r}."
        )
    return selection


def _check_levels(levels: Any) -> ServiceLevels:
    if levels is None:
        return ServiceLevels()
    if not isinstance(levels, ServiceLevels):
        raise InputError(
            f"`levels` must be a failwise.store.ServiceLevels or None; got {levels!r}."
        )
    return levels


def _check_count(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"`{name}` must be an int >= {low}; got {value!r}.")
    return value


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


class QueueViews(QueueStats):
    """The people-facing reads and bulk actions of :class:`~failwise.store.Queue`."""

    _read: Callable[[str, Sequence[Any]], list[Row]]
    _write: Callable[[Op], Any]
    _backend_name: str

    if TYPE_CHECKING:

        def get(self, item_id: int, *, at: float | None = None) -> QueueItem: ...

        def release(
            self, item_id: int, *, reviewer: str | None = None, at: float | None = None
        ) -> QueueItem: ...

        def resolve(
            self,
            item_id: int,
            label: int,
            note: str | None = None,
            reviewer: str | None = None,
            *,
            at: float | None = None,
        ) -> QueueItem: ...

    # ---------------------------------------------------------------- the list
    def view(
        self,
        selection: QueueFilter | None = None,
        *,
        levels: ServiceLevels | None = None,
        limit: int = 50,
        offset: int = 0,
        at: float | None = None,
    ) -> QueuePage:
        """The items ``selection`` selects, by priority then age, with their due times.

        Parameters
        ----------
        selection : QueueFilter, optional
            Open items of both kinds by default.
        levels : ServiceLevels, optional
            Due times; the defaults of :class:`ServiceLevels` by default.
        limit : int, default=50
        offset : int, default=0
            Items to skip (for the next page).
        at : float, optional
            Unix seconds "now" (ages, leases, breaches); now by default.

        Returns
        -------
        QueuePage

        Examples
        --------
        >>> import tempfile
        >>> from failwise import store
        >>> folder = tempfile.mkdtemp()
        >>> with store.open(f"sqlite:///{folder}/events.db") as events:
        ...     decision = {"action": "escalate", "predicted": 2, "context": {"text": "refund?"}}
        ...     request = store.QueueRequest("t1", "escalation", "low confidence", 0.9)
        ...     _ = events.record_decision("t1", decision, at=0.0, enqueue=[request])
        ...     page = events.queue.view(store.QueueFilter(text="REFUND"), at=1200.0)
        >>> page.total, page.rows[0].preview, page.rows[0].due_at, page.rows[0].breached
        (1, 'refund?', 900.0, True)
        """
        chosen = _check_selection(selection)
        sla = _check_levels(levels)
        size = _check_count(limit, "limit", 1)
        skip = _check_count(offset, "offset", 0)
        now = check_at(at)
        where, params = filter_sql(chosen, sla, now, self._backend_name)
        due, due_params = sla.sql("qi")
        rows = self._read(
            f"SELECT {_ITEM}, t.action, t.predicted, t.confidence, d.payload, {due} "
            f"{_FROM}{where} {_ORDER} LIMIT ? OFFSET ?",
            (*due_params, *params, size, skip),
        )
        total = int(self._read(f"SELECT COUNT(*) {_FROM}{where}", params)[0][0])
        return QueuePage([self._row(row, now) for row in rows], total, now, skip)

    def _row(self, row: Row, now: float) -> QueueRow:
        item = item_from_row(row[:14], now=now)
        decision = json.loads(row[17])
        due_at = float(row[18])
        return QueueRow(
            item=item,
            due_at=due_at,
            breached=_breached(item, due_at, now),
            action=str(row[14]),
            predicted=None if row[15] is None else int(row[15]),
            confidence=None if row[16] is None else float(row[16]),
            preview=context_preview(decision.get("context")),
        )

    def matching_ids(
        self,
        selection: QueueFilter | None = None,
        *,
        levels: ServiceLevels | None = None,
        limit: int = MAX_BULK,
        at: float | None = None,
    ) -> list[int]:
        """Ids of the items ``selection`` selects, in claim order (at most ``limit``)."""
        chosen = _check_selection(selection)
        sla = _check_levels(levels)
        size = _check_count(limit, "limit", 1)
        now = check_at(at)
        where, params = filter_sql(chosen, sla, now, self._backend_name)
        rows = self._read(f"SELECT qi.id {_FROM}{where} {_ORDER} LIMIT ?", (*params, size))
        return [int(row[0]) for row in rows]

    # ---------------------------------------------------------------- one item
    def detail(
        self, item_id: int, *, levels: ServiceLevels | None = None, at: float | None = None
    ) -> ItemDetail:
        """Item ``item_id`` with its input, the model's top labels, the reason and history.

        Raises
        ------
        UnknownItemError
            When there is no such item.
        """
        sla = _check_levels(levels)
        now = check_at(at)
        item = self.get(item_id, at=now)
        decision_rows = self._read(
            "SELECT payload FROM events WHERE task_id = ? AND kind = 'decision'", (item.task_id,)
        )
        decision: dict[str, Any] = json.loads(decision_rows[0][0]) if decision_rows else {}
        events = [
            event_from_row(row)
            for row in self._read(
                "SELECT id, task_id, kind, at, label, payload FROM events WHERE task_id = ? "
                "ORDER BY at, id",
                (item.task_id,),
            )
        ]
        context = decision.get("context")
        context = context if isinstance(context, dict) else None
        due_at = item.created_at + sla.due_s(item.kind, item.priority)
        prediction_set = decision.get("prediction_set")
        return ItemDetail(
            item=item,
            due_at=due_at,
            breached=_breached(item, due_at, now),
            decision=decision,
            context=context,
            input_text=context_preview(context, limit=100_000),
            top_labels=_top_labels(decision),
            prediction_set=[int(v) for v in prediction_set or [] if isinstance(v, int)]
            if isinstance(prediction_set, list)
            else [],
            reason=str(decision.get("reason") or item.reason),
            events=events,
        )

    def recent_resolutions(
        self, reviewer: str, window_s: float = 300.0, *, limit: int = 10, at: float | None = None
    ) -> list[QueueItem]:
        """The items ``reviewer`` resolved in the last ``window_s`` seconds, latest first
        (what an undo may still reopen)."""
        name = check_text(reviewer, "reviewer")
        window = float(check_param("window_s", window_s, [Seconds()]))
        size = _check_count(limit, "limit", 1)
        now = check_at(at)
        rows = self._read(
            f"SELECT {_ITEM} FROM queue_items qi WHERE qi.state = 'resolved' "
            "AND qi.resolved_by = ? AND qi.resolved_at >= ? AND qi.resolved_at <= ? "
            "ORDER BY qi.resolved_at DESC, qi.id DESC LIMIT ?",
            (name, now - window, now, size),
        )
        return [item_from_row(row, now=now) for row in rows]

    # ---------------------------------------------------------------- pick one
    def claim_item(
        self, item_id: int, reviewer: str, lease_s: float = 300.0, *, at: float | None = None
    ) -> QueueItem:
        """Lease item ``item_id`` (not the next one) to ``reviewer``.

        For a reviewer who picks an item from the list, and for bulk resolution. Atomic
        like :meth:`claim`: an item is held by one reviewer at a time.

        Raises
        ------
        UnknownItemError
            When there is no such item.
        QueueStateError
            When the item is resolved, or another reviewer holds a lease that still runs.
            Nothing is written.
        """
        from failwise.store._queue import _event, _locked_item

        item_id = check_item_id(item_id)
        name = check_text(reviewer, "reviewer")
        lease = float(check_param("lease_s", lease_s, [Seconds()]))
        now = check_at(at)

        def op(tx: Tx) -> QueueItem:
            current = _locked_item(tx, item_id)
            rows = tx.execute(_CLAIM_ITEM, (name, now, now + lease, item_id, now))
            if not rows:
                raise QueueStateError(
                    f"Queue item {item_id} is {current.state}"
                    + (f" by {current.claimed_by!r}" if current.claimed_by else "")
                    + "; only a waiting item (pending, or a lease that ran out) can be claimed. "
                    "Nothing was written."
                )
            if current.state == "claimed":
                at_ = current.lease_expires_at if current.lease_expires_at is not None else now
                _event(tx, current, "expired", at_, reviewer=current.claimed_by)
            item = item_from_row(rows[0])
            _event(tx, item, "claimed", now, reviewer=name, lease_expires_at=now + lease)
            return item

        result: QueueItem = self._write(op)
        return result

    # ---------------------------------------------------------------- bulk actions
    def bulk_release(
        self,
        selection: QueueFilter | None = None,
        *,
        reviewer: str | None = None,
        dry_run: bool = False,
        levels: ServiceLevels | None = None,
        at: float | None = None,
    ) -> BulkResult:
        """Hand every claimed item ``selection`` selects back to the queue.

        Parameters
        ----------
        selection : QueueFilter, optional
            Narrowed to claimed items (lease running).
        reviewer : str, optional
            Only items this reviewer holds; any holder by default (an admin's release).
        dry_run : bool, default=False
            Count, change nothing.
        """
        base = _check_selection(selection)
        name = None if reviewer is None else check_text(reviewer, "reviewer")
        now = check_at(at)
        chosen = QueueFilter(
            **{**base.__dict__, "state": "claimed", "assignee": name or base.assignee}
        )
        ids = self.matching_ids(chosen, levels=levels, at=now)
        if _check_flag(dry_run):
            return BulkResult(len(ids), [], [], True)
        changed, skipped = [], []
        for item_id in ids:
            try:
                self.release(item_id, reviewer=name, at=now)
                changed.append(item_id)
            except QueueStateError:
                skipped.append(item_id)
        return BulkResult(len(ids), changed, skipped, False)

    def bulk_resolve(
        self,
        selection: QueueFilter | None,
        label: int,
        *,
        reviewer: str,
        note: str | None = None,
        dry_run: bool = False,
        levels: ServiceLevels | None = None,
        at: float | None = None,
    ) -> BulkResult:
        """Resolve every open item ``selection`` selects with ``label``, as ``reviewer``.

        Items waiting are claimed by ``reviewer`` first (:meth:`Queue.claim_item`); items
        ``reviewer`` holds are resolved; items another reviewer holds are left to them (not
        counted as matched). An item someone else claims or resolves meanwhile is skipped:
        each item is resolved at most once.

        Parameters
        ----------
        selection : QueueFilter or None
            Narrowed to open items.
        label : int
            ``-1`` marks the requests out of scope.
        reviewer : str
        note : str, optional
        dry_run : bool, default=False
            Count, change nothing.
        """
        base = _check_selection(selection)
        checked = int(check_label(label, required=True) or 0)
        name = check_text(reviewer, "reviewer")
        now = check_at(at)
        state = base.state if base.state in ("waiting", "pending", "expired") else "open"
        chosen = QueueFilter(**{**base.__dict__, "state": state})
        page = self.view(chosen, levels=levels, limit=MAX_BULK, at=now)
        ids = [
            row.item.id
            for row in page.rows
            if row.item.state != "claimed" or row.item.claimed_by == name
        ]
        if _check_flag(dry_run):
            return BulkResult(len(ids), [], [], True)
        held = {row.item.id for row in page.rows if row.item.state == "claimed"}
        changed, skipped = [], []
        for item_id in ids:
            try:
                if item_id not in held:
                    self.claim_item(item_id, name, at=now)
                self.resolve(item_id, label=checked, note=note, reviewer=name, at=now)
                changed.append(item_id)
            except QueueStateError:
                skipped.append(item_id)
        return BulkResult(len(ids), changed, skipped, False)


def _check_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"`dry_run` must be True or False; got {value!r}.")
    return value


def _breached(item: QueueItem, due_at: float, now: float) -> bool:
    if item.state == "resolved":
        return item.resolved_at is not None and item.resolved_at > due_at
    return due_at <= now
