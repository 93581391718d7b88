"""The monitor's reference: what the policy saw when it was fitted, saved beside it.

A :class:`Reference` holds, for every validation input the policy was fitted on, its
calibrated confidence, predicted label, the action the fitted ladder takes, its
out-of-scope score and whether the prediction was right (when labels are given), and —
when a feature function is given — its input features, compactly: float16 values, or a
fixed random projection (:func:`random_projection`) when the features are wide. The
runtime records the same features per decision (``Guard(features=...)``), so each window
of served traffic is compared with the reference on the same footing.

It is saved as an artefact of kind ``reference`` (:func:`failwise.artifacts.save`), in
``<model>/reference`` beside the policy that ``--save-policy`` writes, and loaded with
:func:`load_reference`. A reference without features still supports the label-free
estimate and the score and mix tests; :meth:`Reference.capabilities` says what it cannot do.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import check_confidence, describe
from failwise.exceptions import InputError

__all__ = [
    "ACTION_NAMES",
    "REFERENCE_STATE_FORMAT",
    "Reference",
    "load_reference",
    "random_projection",
]

ACTION_NAMES: Final = ("answer", "clarify", "fallback", "escalate", "abstain")
REFERENCE_STATE_FORMAT: Final = 1
#: Seed of the fixed projection: the same input width always gets the same matrix.
PROJECTION_SEED: Final = 20_240_917


def random_projection(features: Any, dims: int = 128) -> NDArray[np.float32]:
    """A fixed Gaussian random projection of ``features`` to ``dims`` columns.

    The matrix depends only on the input width and ``dims`` (a fixed seed), so the
    reference and every guard that project with the same ``dims`` agree. Distances are
    kept within a factor ``1 ± O(1/sqrt(dims))`` (Johnson–Lindenstrauss); with
    ``dims >= n_features`` the features are returned unchanged. Sparse rows (a SciPy
    sparse matrix, such as a TF-IDF vectoriser's output) are projected without being made
    dense, with the same matrix as their dense form; the matrix of a width is built once
    per process.

    Parameters
    ----------
    features : array-like or scipy.sparse matrix of shape (n, n_features) or (n_features,)
    dims : int, default=128

    Returns
    -------
    ndarray of float32, shape (n, dims) (or (dims,) for one vector)

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.monitor import random_projection
    >>> x = np.random.default_rng(0).normal(size=(3, 384))
    >>> random_projection(x).shape, np.allclose(random_projection(x[0]), random_projection(x)[0])
    ((3, 128), True)
    """
    if isinstance(dims, bool) or not isinstance(dims, int | np.integer) or dims < 1:
        raise InputError(f"`dims` must be an int >= 1; got {describe(dims)}.")
    from scipy import sparse

    if sparse.issparse(features):
        rows = sparse.csr_matrix(features, dtype=np.float64)
        if rows.shape[1] == 0 or not np.all(np.isfinite(rows.data)):
            raise InputError(
                f"`features` must have at least one column and finite values; got a sparse "
                f"matrix of shape {rows.shape}."
            )
        if dims >= rows.shape[1]:
            return np.asarray(rows.toarray(), dtype=np.float32)
        return np.asarray(rows @ _projection(int(rows.shape[1]), int(dims)), dtype=np.float32)
    array = np.asarray(features, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        raise InputError(
            f"`features` must be 1-D (one input) or 2-D (one row per input); got "
            f"{describe(features)}."
        )
    width = int(array.shape[-1])
    if dims >= width:
        return array.astype(np.float32)
    return (array @ _projection(width, int(dims))).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _projection(width: int, dims: int) -> NDArray[np.float64]:
    """The projection matrix of one input width (read-only: it is shared)."""
    rng = np.random.default_rng([PROJECTION_SEED, width, dims])
    matrix = rng.normal(0.0, 1.0 / np.sqrt(dims), size=(width, dims))
    matrix.flags.writeable = False
    return matrix


def _finite(values: ArrayLike, name: str) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise InputError(f"`{name}` holds NaN or infinite values.")
    return array


def _half(array: NDArray[np.float64]) -> NDArray[np.float16]:
    """Float16 feature rows (values beyond its range clipped)."""
    return np.clip(array, -65504, 65504).astype(np.float16)


def _column(values: ArrayLike | None, name: str, n: int, dtype: Any) -> NDArray[Any] | None:
    if values is None:
        return None
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != n:
        raise InputError(
            f"`{name}` must hold one value per reference input ({n}); got {describe(values)}."
        )
    return array.astype(dtype)


class Reference:
    """What the policy saw when it was fitted: the monitor's point of comparison.

    Parameters
    ----------
    confidence : array-like of shape (n,)
        Calibrated confidence of every reference (validation) input.
    predicted : array-like of int, shape (n,)
        The model's top label.
    action : array-like of str, shape (n,), optional
        The action the fitted ladder takes ("answer", "clarify", ...).
    ood_score : array-like of shape (n,), optional
        Out-of-scope scores, when the policy uses them.
    correct : array-like of bool, shape (n,), optional
        Whether the top label was right (validation labels known).
    features : array-like of shape (n, n_features), optional
        Input features from the same function the guard records (float16 is kept).
    feature_metric : {"cosine", "euclidean"}, default="cosine"
        Distance between feature vectors ("cosine" for sentence embeddings).
    neighbour_features : array-like of shape (n_neighbour, n_features), optional
        Features of other inputs drawn like the reference but not in it — the training
        inputs — that the unseen-input test searches for neighbours beside the reference
        rows (:meth:`UnseenInputDetector.fit <failwise.monitor.UnseenInputDetector.fit>`);
        a denser index makes it more sensitive. Needs ``features``; float16 is kept.
    feature_source : str, optional
        How the features are computed, in words ("all-MiniLM-L6-v2 sentence embeddings"),
        so that whoever serves the policy records the same with ``Guard(features=...)``.
        Needs ``features``.

    Attributes
    ----------
    n : int
    version : str
        Content hash of the reference (what the monitor's windows are keyed by).

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.monitor import Reference
    >>> reference = Reference(confidence=[0.9, 0.8, 0.6], predicted=[1, 0, 1])
    >>> reference.capabilities()["input_drift"]
    False
    """

    def __init__(
        self,
        *,
        confidence: ArrayLike,
        predicted: ArrayLike,
        action: ArrayLike | None = None,
        ood_score: ArrayLike | None = None,
        correct: ArrayLike | None = None,
        features: ArrayLike | None = None,
        feature_metric: str = "cosine",
        neighbour_features: ArrayLike | None = None,
        feature_source: str | None = None,
    ) -> None:
        conf = check_confidence(confidence, "confidence").astype(np.float64)
        n = int(conf.shape[0])
        if n < 2:
            raise InputError(
                f"A reference needs at least two inputs; got {n}. Pass the validation data "
                "the policy was fitted on."
            )
        self.confidence = conf
        self.predicted: NDArray[np.int64] = np.asarray(predicted).astype(np.int64)
        _column(predicted, "predicted", n, np.int64)
        self.action: NDArray[Any] | None = None
        if action is not None:
            names = np.asarray(_column(action, "action", n, str))
            unknown = sorted(set(names.tolist()) - set(ACTION_NAMES))
            if unknown:
                raise InputError(f"`action` holds {unknown}; actions are {list(ACTION_NAMES)}.")
            self.action = names
        self.ood_score = _column(ood_score, "ood_score", n, np.float64)
        if self.ood_score is not None and not np.all(np.isfinite(self.ood_score)):
            raise InputError("`ood_score` holds NaN or infinite values; pass finite scores.")
        self.correct = _column(correct, "correct", n, bool)
        self.features: NDArray[np.float16] | None = None
        if features is not None:
            array = _finite(features, "features")
            if array.ndim != 2 or array.shape[0] != n or array.shape[1] == 0:
                raise InputError(
                    f"`features` must have shape ({n}, n_features), one row per reference "
                    f"input; got {describe(features)}."
                )
            self.features = _half(array)
        self.neighbour_features = self._neighbours(neighbour_features)
        if feature_metric not in ("cosine", "euclidean"):
            raise InputError(
                f"`feature_metric` must be 'cosine' or 'euclidean'; got {feature_metric!r}."
            )
        self.feature_metric = feature_metric
        if feature_source is not None and (
            not isinstance(feature_source, str) or self.features is None
        ):
            raise InputError(
                "`feature_source` must be a str describing how `features` were computed, "
                f"and needs features=; got {describe(feature_source)}"
                + (" without features" if self.features is None else "")
                + "."
            )
        self.feature_source = feature_source
        self.version = self._hash()

    @classmethod
    def from_policy(
        cls,
        policy: Any,
        proba: ArrayLike,
        y: ArrayLike | None = None,
        *,
        ood_score: ArrayLike | None = None,
        fallback: ArrayLike | None = None,
        features: ArrayLike | None = None,
        feature_metric: str = "cosine",
        neighbour_features: ArrayLike | None = None,
        feature_source: str | None = None,
    ) -> Reference:
        """The reference of a fitted policy from its validation data.

        Parameters
        ----------
        policy : Policy
            Fitted on (``proba``, ``y``).
        proba : array-like of shape (n, n_classes)
            Calibrated probabilities of the validation inputs.
        y : array-like of shape (n,), optional
            Their labels (-1: out of scope); gives ``correct``.
        ood_score, fallback : array-like of shape (n,), optional
            As passed to ``policy.decide``.
        features : array-like of shape (n, n_features), optional
        feature_metric : {"cosine", "euclidean"}, default="cosine"
        neighbour_features : array-like of shape (n_neighbour, n_features), optional
            The training inputs' features (see the class parameters).
        feature_source : str, optional
            How the features are computed (see the class parameters).
        """
        decisions = policy.decide(proba, ood_score, fallback)
        correct = None
        if y is not None:
            labels = np.asarray(y)
            if labels.shape != decisions.predicted.shape:
                raise InputError(
                    f"`y` must hold one label per row of `proba` ({decisions.predicted.size}); "
                    f"got {describe(y)}."
                )
            correct = decisions.predicted == labels
        return cls(
            confidence=decisions.confidence,
            predicted=decisions.predicted,
            action=np.asarray(decisions.action, dtype=str),
            ood_score=ood_score,
            correct=correct,
            features=features,
            feature_metric=feature_metric,
            neighbour_features=neighbour_features,
            feature_source=feature_source,
        )

    def _neighbours(self, values: ArrayLike | None) -> NDArray[np.float16] | None:
        if values is None:
            return None
        if self.features is None:
            raise InputError(
                "`neighbour_features` needs `features`: the unseen-input test calibrates on "
                "the reference's own features; pass features= as well."
            )
        array = _finite(values, "neighbour_features")
        if array.ndim != 2 or array.shape[1] != self.features.shape[1]:
            raise InputError(
                f"`neighbour_features` must have shape (n_neighbour, {self.features.shape[1]}), "
                f"the reference's feature width; got {describe(values)}."
            )
        return _half(array)

    @property
    def n(self) -> int:
        """Reference inputs."""
        return int(self.confidence.shape[0])

    @property
    def n_features(self) -> int | None:
        """Feature columns, or None without features."""
        return None if self.features is None else int(self.features.shape[1])

    def capabilities(self) -> dict[str, bool]:
        """Which monitors this reference supports."""
        has_features = self.features is not None
        return {
            "estimate": True,
            "confidence_drift": True,
            "ood_score_drift": self.ood_score is not None,
            "label_mix": True,
            "action_mix": self.action is not None,
            "input_drift": has_features,
            "unseen_inputs": has_features,
            "blind_spots": has_features,
            "accuracy_by_label": self.correct is not None,
        }

    def limitations(self) -> list[str]:
        """One sentence per monitor this reference cannot run, and how to enable it."""
        out = []
        if self.features is None:
            out.append(
                "the reference has no input features, so input drift, unseen inputs and blind "
                "spots cannot be checked; build it with features= (the function the guard "
                "records with Guard(features=...))"
            )
        if self.ood_score is None:
            out.append("the reference has no out-of-scope scores: their drift is not tested")
        if self.action is None:
            out.append("the reference has no ladder actions: the action mix is not tested")
        return out

    def answer_accuracy_by_label(self) -> dict[int, float]:
        """Per predicted label: accuracy among the reference's answers (or its mean
        confidence, without labels), the basis of a label-mix change's accuracy impact."""
        answered = np.ones(self.n, dtype=bool) if self.action is None else self.action == "answer"
        basis = self.confidence if self.correct is None else self.correct.astype(np.float64)
        out: dict[int, float] = {}
        for label in np.unique(self.predicted[answered]):
            rows = answered & (self.predicted == label)
            out[int(label)] = float(basis[rows].mean())
        return out

    # ------------------------------------------------------------------ saved state
    def to_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(params, fitted) for :func:`failwise.artifacts.save`."""
        fitted: dict[str, Any] = {
            "confidence": self.confidence,
            "predicted": self.predicted,
            "action": None
            if self.action is None
            else np.array([ACTION_NAMES.index(a) for a in self.action], dtype=np.int8),
            "ood_score": self.ood_score,
            "correct": self.correct,
            "features": self.features,
        }
        if self.neighbour_features is not None:  # absent otherwise: older versions unchanged
            fitted["neighbour_features"] = self.neighbour_features
        params: dict[str, Any] = {"feature_metric": self.feature_metric}
        if self.feature_source is not None:  # absent otherwise: older versions unchanged
            params["feature_source"] = self.feature_source
        return params, fitted

    @classmethod
    def from_state(cls, params: dict[str, Any], fitted: dict[str, Any]) -> Reference:
        """Rebuild from :meth:`to_state`'s output."""
        action = fitted.get("action")
        return cls(
            confidence=fitted["confidence"],
            predicted=fitted["predicted"],
            action=None if action is None else np.asarray(ACTION_NAMES)[np.asarray(action)],
            ood_score=fitted.get("ood_score"),
            correct=fitted.get("correct"),
            features=fitted.get("features"),
            feature_metric=str(params.get("feature_metric", "cosine")),
            neighbour_features=fitted.get("neighbour_features"),
            feature_source=params.get("feature_source"),
        )

    def _hash(self) -> str:
        digest = hashlib.sha256(b"failwise-reference/1\n")
        params, fitted = self.to_state()
        digest.update(repr(sorted(params.items())).encode())
        for name in sorted(fitted):
            value = fitted[name]
            digest.update(name.encode())
            if value is not None:
                array = np.ascontiguousarray(value)
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                digest.update(array.tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        feats = "no features" if self.features is None else f"{self.n_features} features"
        return f"Reference(n={self.n}, {feats}, version={self.version[:12]})"


def load_reference(path: str | os.PathLike[str]) -> Reference:
    """Load the reference saved at ``path``, or beside the policy artefact at ``path``.

    ``path`` may be the reference artefact itself, a model folder holding ``reference``
    (as ``--save-policy`` writes), the ``policy`` artefact inside that folder, or the
    ``--save-policy`` folder itself when it holds one model.

    Raises
    ------
    InputError
        When no reference artefact is found there (the message lists where it looked).
    """
    from failwise.artifacts import MANIFEST_FILE, info, load

    root = Path(path).expanduser()
    candidates: Sequence[Path] = (root, root / "reference", root.parent / "reference")
    looked = []
    for candidate in candidates:
        looked.append(str(candidate))
        if (candidate / MANIFEST_FILE).is_file() and info(candidate).kind == "reference":
            loaded: Reference = load(candidate)
            return loaded
    models = sorted(
        child.parent.name
        for child in root.glob("*/reference")
        if (child / MANIFEST_FILE).is_file() and info(child).kind == "reference"
    )
    if len(models) == 1:
        return load_reference(root / models[0])
    if models:
        raise InputError(
            f"{root} holds the references of {len(models)} models ({', '.join(models)}), as "
            f"--save-policy writes them; pass one model's folder, e.g. {root / models[0]}."
        )
    raise InputError(
        f"No monitor reference at {root}: looked in {', '.join(looked)}. Save one with "
        "failwise.artifacts.save(Reference.from_policy(policy, proba, y), '<model>/reference') "
        "or fit the policy with --save-policy, which writes it beside the policy."
    )
