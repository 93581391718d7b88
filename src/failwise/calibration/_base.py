"""The calibrator contract: parameters, fitted state, state dictionaries, shared input checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._base import Estimator
from failwise._validation import (
    check_binary_labels,
    check_fitted,
    check_probabilities,
    check_scores,
    describe,
)
from failwise.exceptions import InputError

__all__ = ["BaseCalibrator", "StateKind"]

#: How a fitted attribute is stored in a state dictionary.
StateKind = Literal["int", "float", "bool", "str", "array"]

#: Version of the layout written by :meth:`BaseCalibrator.to_state`.
STATE_FORMAT = 1

#: Probabilities are clipped to this before taking logarithms.
LOG_EPSILON = 1e-12

_REGISTRY: dict[str, type[BaseCalibrator]] = {}


class BaseCalibrator(Estimator):
    """Base class of every calibrator: the scikit-learn estimator contract.

    Subclasses store their keyword arguments in ``__init__`` and nothing else, declare a
    ``_parameter_constraints`` table checked in ``fit``, and list their fitted attributes
    (with how each is stored) in :meth:`_state_schema`. :class:`failwise._base.Estimator`
    provides ``get_params``/``set_params`` and a ``__repr__`` showing non-default
    parameters; this class adds :meth:`to_state`/:meth:`from_state` for serialisation.
    """

    n_classes_: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ fitted state

    def _state_schema(self) -> dict[str, StateKind]:
        """Fitted attributes and how each is stored; may depend on the parameters."""
        return {"n_classes_": "int"}

    def _check_is_fitted(self, method: str) -> None:
        check_fitted(self, "n_classes_", method)

    def to_state(self) -> dict[str, Any]:
        """Return the fitted calibrator as plain data.

        The result holds only JSON-able values (str, int, float, bool, None, dict) and
        NumPy arrays, so it can be written as JSON plus an array archive and read back with
        :meth:`from_state`.

        Returns
        -------
        dict
            ``{"calibrator": class name, "format": 1, "params": {...}, "fitted": {...}}``.
        """
        self._check_is_fitted("to_state")
        fitted: dict[str, Any] = {}
        for name, kind in self._state_schema().items():
            value = getattr(self, name)
            fitted[name] = np.array(value, copy=True) if kind == "array" else _scalar(value, kind)
        return {
            "calibrator": type(self).__name__,
            "format": STATE_FORMAT,
            "params": dict(self.get_params()),
            "fitted": fitted,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a fitted calibrator from the output of :meth:`to_state`.

        Called on :class:`BaseCalibrator` itself, it builds whichever calibrator the state
        names; called on a subclass, the state must name that subclass.

        Parameters
        ----------
        state : mapping
            A dictionary produced by :meth:`to_state` (arrays may be any array-like).

        Returns
        -------
        calibrator
            A fitted calibrator that predicts exactly as the one that was saved.
        """
        if not isinstance(state, Mapping):
            raise InputError(
                f"`state` must be a dict produced by `to_state()`; got {describe(state)}."
            )
        missing = [key for key in ("calibrator", "params", "fitted") if key not in state]
        if missing:
            raise InputError(
                f"`state` lacks the key(s) {missing}; it must come from `to_state()`, which "
                "writes 'calibrator', 'format', 'params' and 'fitted'."
            )
        if state.get("format", STATE_FORMAT) != STATE_FORMAT:
            raise InputError(
                f"`state` has format {state.get('format')!r}; this version of failwise reads "
                f"format {STATE_FORMAT}. Refit the calibrator and save it again."
            )
        name = state["calibrator"]
        target = _REGISTRY.get(name) if isinstance(name, str) else None
        if target is None:
            raise InputError(
                f"`state` names an unknown calibrator {name!r}; known calibrators are "
                f"{sorted(_REGISTRY)}."
            )
        if cls is not BaseCalibrator and target is not cls:
            raise InputError(
                f"`state` holds a {name}, not a {cls.__name__}. Call "
                f"`{name}.from_state(state)` or `BaseCalibrator.from_state(state)`."
            )
        params = dict(state["params"])
        unknown = set(params) - set(target._get_param_names())
        if unknown:
            raise InputError(
                f"`state` has parameter(s) {sorted(unknown)} that {name} does not take; it was "
                "written by another version of failwise. Refit and save it again."
            )
        calibrator = target(**params)
        calibrator._validate_params()
        fitted = state["fitted"]
        for attribute, kind in calibrator._state_schema().items():
            if attribute not in fitted:
                raise InputError(
                    f"`state['fitted']` lacks `{attribute}`, which a fitted {name} needs. Save "
                    "the state again with `to_state()`."
                )
            value = fitted[attribute]
            setattr(
                calibrator,
                attribute,
                np.array(value, copy=True) if kind == "array" else _scalar(value, kind),
            )
        if not isinstance(calibrator, cls):  # pragma: no cover - guarded by the registry check
            raise InputError(f"`state` does not describe a {cls.__name__}.")
        return calibrator

    # ------------------------------------------------------------------ fitting and prediction

    def fit(self, scores: ArrayLike, y: ArrayLike) -> BaseCalibrator:
        """Fit the calibrator on held-out scores and labels; returns the calibrator."""
        raise NotImplementedError  # pragma: no cover - every calibrator overrides it

    def predict_proba(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Return calibrated class probabilities, shape (n_samples, n_classes)."""
        raise NotImplementedError  # pragma: no cover - every calibrator overrides it


def _scalar(value: Any, kind: StateKind) -> Any:
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        return bool(value)
    return str(value)


# ---------------------------------------------------------------------- shared input checks


def binary_labels(y: ArrayLike, name: str = "y") -> NDArray[np.intp]:
    """Validate 0/1 labels and require both classes to be present."""
    labels = check_binary_labels(y, name)
    if labels.min() == labels.max():
        only = int(labels[0])
        raise InputError(
            f"`{name}` holds only class {only}; a binary calibrator needs examples of both "
            "0 and 1 to learn how scores map to probabilities. Add examples of the other class."
        )
    return labels


def check_columns(array: NDArray[Any], n_columns: int, name: str, what: str = "classes") -> None:
    """Raise when ``array`` has a different number of columns than seen in ``fit``."""
    if array.shape[1] != n_columns:
        raise InputError(
            f"`{name}` has {array.shape[1]} columns but {n_columns} {what} were seen in fit. "
            "Pass the scores of the same model, with columns in the same order as in fit."
        )


def binary_scores(
    scores: ArrayLike,
    name: str = "scores",
    *,
    expected_ndim: int | None = None,
    probability_1d: bool = False,
) -> tuple[NDArray[np.float64], int]:
    """Turn the input of a binary calibrator into one float64 score per sample.

    1-D input is a score per sample (in [0, 1] when ``probability_1d``); 2-D input must be
    (n_samples, 2) probabilities, whose second column is returned.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
    ndim : int
        1 or 2, the form that arrived; ``predict_proba`` must receive the same form as ``fit``.
    """
    array = check_scores(scores, name, ndim=None)
    if expected_ndim is not None and array.ndim != expected_ndim:
        seen = "1-D scores" if expected_ndim == 1 else "(n_samples, 2) probabilities"
        raise InputError(
            f"`{name}` has shape {array.shape} but fit saw {seen}. Pass the same kind of "
            "scores as in fit."
        )
    if array.ndim == 2:
        if array.shape[1] != 2:
            raise InputError(
                f"`{name}` must be 1-D scores or (n_samples, 2) probabilities for a binary "
                f"calibrator; got shape {array.shape}. For more classes use a multiclass "
                "calibrator such as `TemperatureScaling`; for one column pass `scores[:, 0]`."
            )
        check_probabilities(array, name)
        return np.asarray(array[:, 1], dtype=np.float64), 2
    if probability_1d:
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise InputError(
                f"`{name}` must hold positive-class probabilities in [0, 1]; got values from "
                f"{low:.4g} to {high:.4g}. Apply a sigmoid to decision values first, or use "
                "`PlattScaling`, which takes any real score."
            )
    return np.asarray(array, dtype=np.float64), 1


def positive_to_proba(positive: NDArray[np.float64]) -> NDArray[np.float64]:
    """Stack P(class 1) into an (n_samples, 2) matrix [P(0), P(1)]."""
    positive = np.clip(positive, 0.0, 1.0)
    return np.column_stack([1.0 - positive, positive])


def safe_logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Log-odds of ``p`` clipped to [LOG_EPSILON, 1 - LOG_EPSILON]."""
    clipped = np.clip(p, LOG_EPSILON, 1.0 - LOG_EPSILON)
    result: NDArray[np.float64] = np.log(clipped) - np.log1p(-clipped)
    return result


def renormalise_rows(
    mapped: NDArray[np.float64], fallback: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Divide each row by its sum; rows that sum to 0 take the matching ``fallback`` row.

    ``fallback`` holds the uncalibrated probabilities of the same samples.
    """
    sums = mapped.sum(axis=1, keepdims=True)
    zero = sums[:, 0] <= 0.0
    sums[zero] = 1.0
    mapped /= sums
    if zero.any():
        mapped[zero] = fallback[zero]
    return mapped


def is_multiclass(scores: ArrayLike) -> bool:
    """Whether ``scores`` is 2-D with 3 or more columns (a multiclass probability matrix)."""
    try:
        shape = np.shape(scores)
    except (TypeError, ValueError):  # ragged input; the validators say what is wrong
        return False
    if len(shape) == 2 and shape[1] == 1:
        raise InputError(
            f"`scores` has shape {tuple(shape)}; pass one score per sample as a 1-D array "
            "(`scores[:, 0]`) or (n_samples, n_classes) probabilities."
        )
    return len(shape) == 2 and shape[1] > 2
