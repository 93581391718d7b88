"""`Quarantine`: the rung that escalates inputs falling inside a flagged blind spot.

The monitor finds clusters of served inputs unlike anything the policy was fitted on
(blind spots, :func:`failwise.monitor.find_gaps`). Quarantining one stores its centre and
radius in the store; a :class:`~failwise.runtime.Guard` with ``quarantine=True`` loads the
active zones, and this rung sends every input whose features lie within a zone's radius to
a human, whatever the model's confidence, until a reviewer releases the zone. Its reason
names the quarantine and the finding it came from.

Distances: ``"cosine"`` is ``1 - cos(x, centre)`` (the centre is a unit vector);
``"euclidean"`` is the Euclidean distance. Rows without features are never claimed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.policy._decision import Action, Reason
from failwise.policy._ladder import LadderState, RowState
from failwise.policy._rungs import Rung

__all__ = ["Quarantine"]


def _vector_rows(features: ArrayLike, metric: str) -> NDArray[np.float64]:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if metric == "cosine":
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        array = array / np.where(norms > 0, norms, 1.0)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class Quarantine(Rung):
    """Escalate inputs whose features lie within ``radii[k]`` of ``centres[k]``.

    Parameters
    ----------
    centres : ndarray of shape (n_zones, n_features)
        Centre of each quarantined blind spot (scaled to unit length for "cosine").
    radii : ndarray of shape (n_zones,)
        How far from its centre an input is inside the zone.
    quarantine_ids, finding_ids : ndarray of int, shape (n_zones,)
        The store's ids of each quarantine and of the finding it came from.
    metric : {"cosine", "euclidean"}, default="cosine"

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.policy import Quarantine, RowState
    >>> rung = Quarantine(np.array([[1.0, 0.0]]), np.array([0.1]), np.array([3]), np.array([12]))
    >>> row = RowState(np.array([0.95, 0.05]), features=np.array([0.99, 0.05]))
    >>> rung.decide_row(row)
    >>> row.action, rung.reason_for(row.features).split(":")[1]
    (3, ' inside quarantined blind spot (quarantine 3, finding 12)')
    """

    rung_name = "Quarantine"

    centres: NDArray[np.float64]
    radii: NDArray[np.float64]
    quarantine_ids: NDArray[np.int64]
    finding_ids: NDArray[np.int64]
    metric: str = "cosine"

    def __post_init__(self) -> None:
        centres = np.asarray(self.centres, dtype=np.float64)
        if centres.ndim != 2 or centres.shape[1] == 0 or not np.all(np.isfinite(centres)):
            raise InputError(
                f"`centres` must be a finite 2-D array (one row per zone); got "
                f"{describe(self.centres)}."
            )
        k = centres.shape[0]
        for name in ("radii", "quarantine_ids", "finding_ids"):
            value = np.asarray(getattr(self, name))
            if value.shape != (k,):
                raise InputError(
                    f"`{name}` must hold one value per zone ({k}); got {describe(value)}."
                )
        radii = np.asarray(self.radii, dtype=np.float64)
        if not np.all(np.isfinite(radii) & (radii > 0)):
            raise InputError(f"`radii` must be finite and > 0; got {describe(self.radii)}.")
        if self.metric not in ("cosine", "euclidean"):
            raise InputError(f"`metric` must be 'cosine' or 'euclidean'; got {self.metric!r}.")
        object.__setattr__(self, "centres", centres)
        object.__setattr__(self, "_unit", _vector_rows(centres, self.metric))
        object.__setattr__(self, "radii", radii)
        object.__setattr__(self, "quarantine_ids", np.asarray(self.quarantine_ids, np.int64))
        object.__setattr__(self, "finding_ids", np.asarray(self.finding_ids, np.int64))

    @classmethod
    def from_zones(cls, zones: Sequence[Any], *, dims: int | None = None) -> Quarantine | None:
        """The rung of the store's active zones (:meth:`failwise.store.Store.quarantines`)
        with ``dims`` features (others are left out); None when there is none."""
        kept = [z for z in zones if dims is None or int(z.centre.shape[0]) == dims]
        if not kept:
            return None
        metrics = {z.metric for z in kept}
        metric = "cosine" if "cosine" in metrics else "euclidean"
        kept = [z for z in kept if z.metric == metric]
        return cls(
            np.stack([np.asarray(z.centre, dtype=np.float64) for z in kept]),
            np.array([z.radius for z in kept]),
            np.array([z.id for z in kept]),
            np.array([z.finding_id for z in kept]),
            metric,
        )

    @property
    def n_features(self) -> int:
        return int(self.centres.shape[1])

    def distances(self, features: ArrayLike) -> NDArray[np.float64]:
        """Distance of each input (rows of ``features``) to each zone's centre, (n, n_zones)."""
        rows = _vector_rows(features, self.metric)
        if rows.shape[1] != self.n_features:
            raise InputError(
                f"`features` has {rows.shape[1]} columns but the quarantine zones have "
                f"{self.n_features}; use the feature function the zones were found with."
            )
        unit: NDArray[np.float64] = getattr(self, "_unit")  # noqa: B009  (set in __post_init__)
        if self.metric == "cosine":
            out: NDArray[np.float64] = 1.0 - rows @ unit.T
            return out
        return np.asarray(
            np.linalg.norm(rows[:, None, :] - unit[None, :, :], axis=2), dtype=np.float64
        )

    def zone_of(self, features: ArrayLike) -> NDArray[np.intp]:
        """Index of the nearest zone each input lies inside, or -1 (NaN rows: -1)."""
        rows = np.asarray(features, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows[None, :]
        valid = np.all(np.isfinite(rows), axis=1)
        out = np.full(rows.shape[0], -1, dtype=np.intp)
        if not valid.any():
            return out
        distance = self.distances(rows[valid])
        slack = distance / self.radii[None, :]
        nearest = np.argmin(slack, axis=1)
        inside = slack[np.arange(nearest.size), nearest] <= 1.0
        out[np.flatnonzero(valid)[inside]] = nearest[inside]
        return out

    def reason_for(self, features: ArrayLike) -> str:
        """The reason sentence of an input this rung escalates."""
        zone = int(self.zone_of(features)[0])
        if zone < 0:
            raise InputError("this input lies in no quarantined zone; it was not quarantined.")
        distance = float(self.distances(features)[0, zone])
        return (
            f"escalate: inside quarantined blind spot (quarantine "
            f"{int(self.quarantine_ids[zone])}, finding {int(self.finding_ids[zone])}): "
            f"{self.metric} distance {distance:.3f} ≤ {float(self.radii[zone]):.3f} from its "
            "centre, so a human answers until a reviewer releases it"
        )

    def __call__(self, state: LadderState) -> None:
        if state.features is None:
            return
        zones = self.zone_of(state.features)
        state.assign(state.undecided & (zones >= 0), Action.ESCALATE, Reason.RULE)

    def decide_row(self, row: RowState) -> None:
        if row.features is None or row.decided:
            return
        if self.zone_of(row.features)[0] >= 0:
            row.assign(Action.ESCALATE, Reason.RULE)

    def to_state(self) -> dict[str, Any]:
        return {
            "centres": np.asarray(self.centres, dtype=np.float64),
            "radii": np.asarray(self.radii, dtype=np.float64),
            "quarantine_ids": np.asarray(self.quarantine_ids, dtype=np.int64),
            "finding_ids": np.asarray(self.finding_ids, dtype=np.int64),
            "metric": str(self.metric),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Quarantine:
        missing = {"centres", "radii", "quarantine_ids", "finding_ids"} - set(state)
        if missing:
            raise InputError(f"a saved Quarantine needs {sorted(missing)}; got {sorted(state)}.")
        return cls(
            np.asarray(state["centres"]),
            np.asarray(state["radii"]),
            np.asarray(state["quarantine_ids"]),
            np.asarray(state["finding_ids"]),
            str(state.get("metric", "cosine")),
        )
