"""What the guard does for the monitor: record input features, apply the store's quarantines.

:class:`FeatureCalls` runs the guard's feature function (``Guard(features=...)``) on the
inputs of a call; the vectors are recorded with the decisions, in their transaction
(``store.record_decisions(..., features=...)``). A feature function that fails or returns
something unusable never fails the request: the decision records no features and says why
in ``extra["features_error"]``.

:class:`QuarantineZones` keeps the store's active quarantines as one
:class:`~failwise.policy.Quarantine` rung, read again at most every ``refresh_s`` seconds
(in the calling thread, when a decision needs it), so a zone quarantined by the monitor
changes what users get within seconds. A failed read keeps the zones already loaded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.policy import Quarantine, RowState, run_row
from failwise.runtime._attempt import short

__all__ = ["FeatureCalls", "QuarantineZones"]

Vector = NDArray[np.float64]


def _vector(value: Any) -> tuple[Vector | None, str | None]:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return None, f"the feature function returned {describe(value)}: {exc}"
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.size == 0:
        return None, f"the feature function returned shape {array.shape}, not one 1-D vector"
    if not np.all(np.isfinite(array)):
        return None, "the feature function returned NaN or infinite values"
    return array, None


class FeatureCalls:
    """Calls a feature function per input, or once per batch with ``batch=True``."""

    def __init__(self, function: Callable[[Any], Any], *, batch: bool) -> None:
        if not callable(function):
            raise InputError(
                f"`features` must be a callable input -> 1-D feature vector (or, with "
                f"batch_features=True, list of inputs -> 2-D array); got {describe(function)}."
            )
        self.function = function
        self.batch = batch

    def many(self, items: Sequence[Any]) -> list[tuple[Vector | None, str | None]]:
        """(vector or None, error or None) per input."""
        if not items:
            return []
        if self.batch:
            try:
                matrix = np.asarray(self.function(list(items)), dtype=np.float64)
            except Exception as exc:  # a failing feature function means "no features"
                return [(None, short(exc))] * len(items)
            if matrix.ndim != 2 or matrix.shape[0] != len(items):
                error = (
                    f"the feature function returned shape {matrix.shape} for {len(items)} "
                    "inputs; it must return one row per input"
                )
                return [(None, error)] * len(items)
            return [_vector(row) for row in matrix]
        out: list[tuple[Vector | None, str | None]] = []
        for x in items:
            try:
                out.append(_vector(self.function(x)))
            except Exception as exc:  # a failing feature function means "no features"
                out.append((None, short(exc)))
        return out


class QuarantineZones:
    """The store's active quarantines as a rung, refreshed at most every ``refresh_s``."""

    def __init__(
        self, store: Any, refresh_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not callable(getattr(store, "quarantines", None)):
            raise InputError(
                "`quarantine=True` needs a store that keeps quarantines: pass "
                "store=failwise.store.open(url)."
            )
        self.store = store
        self.refresh_s = float(refresh_s)
        self.clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._zones: list[Any] = []
        self._rungs: dict[int, Quarantine | None] = {}
        self.error: str | None = None

    def rung(self, dims: int) -> Quarantine | None:
        """The rung of the active zones with ``dims`` features (None: no such zone)."""
        now = self.clock()
        with self._lock:
            stale = self._loaded_at is None or now - self._loaded_at >= self.refresh_s
            if stale:
                try:
                    self._zones = list(self.store.quarantines(active_only=True))
                    self._rungs = {}
                    self.error = None
                except Exception as exc:  # keep serving with the zones already loaded
                    self.error = short(exc)
                self._loaded_at = now
            if dims not in self._rungs:
                self._rungs[dims] = Quarantine.from_zones(self._zones, dims=dims)
            return self._rungs[dims]

    def claim(
        self,
        rows: list[int],
        outcomes: Sequence[Any],
        oods: Sequence[tuple[float | None, str | None]],
        fallbacks: Sequence[tuple[int, str | None]],
        feats: Sequence[tuple[Vector | None, str | None]],
        out: list[Any],
        ladder: tuple[Any, float, float],
    ) -> list[int]:
        """Decide the ``rows`` inside a zone with the Quarantine rung (into ``out``, as
        ``(fields, None)``); return the other rows. ``ladder`` is the policy's
        (describe(), medium band floor, answer threshold)."""
        with_features = [i for i in rows if feats[i][0] is not None]
        rest = rows
        for size in sorted({int(feats[i][0].shape[0]) for i in with_features}):  # type: ignore[union-attr]
            rung = self.rung(size)
            if rung is None:
                continue
            chosen = [i for i in with_features if feats[i][0].shape[0] == size]  # type: ignore[union-attr]
            zones = rung.zone_of(np.stack([feats[i][0] for i in chosen]))  # type: ignore[misc]
            inside = {i: int(z) for i, z in zip(chosen, zones, strict=True) if z >= 0}
            for i, zone in inside.items():
                vector = feats[i][0]
                row = RowState(outcomes[i].proba, oods[i][0], fallbacks[i][0], vector)
                run_row(row, [rung])
                fields = row.fields(*ladder)
                fields["reason"] = rung.reason_for(vector)  # type: ignore[arg-type]
                fields["_quarantine"] = {
                    "quarantine_id": int(rung.quarantine_ids[zone]),
                    "finding_id": int(rung.finding_ids[zone]),
                }
                out[i] = (fields, None)
            rest = [i for i in rest if i not in inside]
        return rest
