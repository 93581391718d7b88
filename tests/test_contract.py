"""The scikit-learn estimator contract, checked on every public class with ``fit``.

``clone`` gives an unfitted copy with equal parameters; ``get_params`` / ``set_params``
round-trip; ``__init__`` only stores its arguments; ``fit`` validates its parameters,
returns ``self`` and only adds attributes ending in ``_``; every other public method refuses
to run before ``fit`` and says so; fitted estimators pickle and predict the same afterwards.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest
from sklearn.base import clone

import failwise
import failwise.calibration as calibration
import failwise.monitor as monitor
import failwise.policy as policy
from failwise._base import Estimator
from failwise.calibration import softmax
from failwise.exceptions import InputError, NotFittedError


def _classification(rng: np.random.Generator, n: int = 300, k: int = 3) -> tuple[Any, Any]:
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)
    logits = 2.5 * np.eye(k)[y] + rng.normal(size=(n, k))
    return logits, y


@dataclass
class Case:
    """How to fit one estimator and which methods need the fitted state."""

    factory: Callable[[], Any]
    fit: Callable[[Any, np.random.Generator], Any]
    #: Method name -> positional arguments, called before and after fit.
    methods: dict[str, Callable[[np.random.Generator], tuple[Any, ...]]] = field(
        default_factory=dict
    )


def _logits_fit(est: Any, rng: np.random.Generator) -> Any:
    return est.fit(*_classification(rng))


def _proba_fit(est: Any, rng: np.random.Generator) -> Any:
    logits, y = _classification(rng)
    return est.fit(softmax(logits), y)


def _binary_fit(est: Any, rng: np.random.Generator) -> Any:
    logits, y = _classification(rng, k=2)
    return est.fit(logits[:, 1] - logits[:, 0], y)


def _p1d_fit(est: Any, rng: np.random.Generator) -> Any:
    logits, y = _classification(rng, k=2)
    return est.fit(softmax(logits)[:, 1], y)


def _logits_args(rng: np.random.Generator) -> tuple[Any, ...]:
    return (rng.normal(size=(5, 3)),)


def _proba_args(rng: np.random.Generator) -> tuple[Any, ...]:
    return (softmax(rng.normal(size=(5, 3))),)


def _score_args(rng: np.random.Generator) -> tuple[Any, ...]:
    return (rng.normal(size=5),)


def _p1d_args(rng: np.random.Generator) -> tuple[Any, ...]:
    return (rng.uniform(size=5),)


def _no_args(rng: np.random.Generator) -> tuple[Any, ...]:
    return ()


def _risk_fit(est: Any, rng: np.random.Generator) -> Any:
    confidence = rng.uniform(0.5, 1.0, size=3000)
    return est.fit(confidence, rng.uniform(size=3000) < confidence)


def _policy_fit(est: Any, rng: np.random.Generator) -> Any:
    proba = rng.dirichlet(np.full(3, 0.3), size=2000)
    y = np.array([rng.choice(3, p=p) for p in proba])
    return est.fit(proba, y)


def _knn_fit(est: Any, rng: np.random.Generator) -> Any:
    return est.fit(rng.normal(size=(40, 4)))


def _mahalanobis_fit(est: Any, rng: np.random.Generator) -> Any:
    return est.fit(rng.normal(size=(40, 4)), rng.integers(0, 3, size=40))


def _combined_fit(est: Any, rng: np.random.Generator) -> Any:
    return est.fit(rng.normal(size=(50, 2)))


def _unseen_fit(est: Any, rng: np.random.Generator) -> Any:
    return est.fit(rng.normal(size=(200, 4)))


def _features(rng: np.random.Generator) -> tuple[Any, ...]:
    return (rng.normal(size=(30, 4)),)


CASES: dict[str, Case] = {
    "TemperatureScaling": Case(
        calibration.TemperatureScaling,
        _logits_fit,
        {"predict_proba": _logits_args, "to_state": _no_args},
    ),
    "VectorScaling": Case(
        calibration.VectorScaling,
        _logits_fit,
        {"predict_proba": _logits_args, "to_state": _no_args},
    ),
    "PlattScaling": Case(
        calibration.PlattScaling,
        _binary_fit,
        {"predict_proba": _score_args, "to_state": _no_args},
    ),
    "BetaCalibration": Case(
        calibration.BetaCalibration,
        _p1d_fit,
        {"predict_proba": _p1d_args, "to_state": _no_args},
    ),
    "IsotonicCalibration": Case(
        calibration.IsotonicCalibration,
        _proba_fit,
        {"predict_proba": _proba_args, "to_state": _no_args},
    ),
    "HistogramBinning": Case(
        calibration.HistogramBinning,
        _proba_fit,
        {"predict_proba": _proba_args, "to_state": _no_args},
    ),
    "CorrectnessCalibration": Case(
        calibration.CorrectnessCalibration,
        _binary_fit,
        {
            "predict_proba": _score_args,
            "predict_confidence": _score_args,
            "to_state": _no_args,
        },
    ),
    "RiskThreshold": Case(
        lambda: policy.RiskThreshold(target_risk=0.1, confidence_level=0.9),
        _risk_fit,
        {"predict": _p1d_args},
    ),
    "ConformalPredictionSets": Case(
        policy.ConformalPredictionSets,
        _proba_fit,
        {"predict_set": _proba_args, "set_size": _proba_args},
    ),
    "Policy": Case(
        lambda: policy.Policy(target_risk=0.1, confidence_level=0.9),
        _policy_fit,
        {"decide": _proba_args, "decide_one": lambda rng: (_proba_args(rng)[0][0],)},
    ),
    "KNNDistance": Case(
        lambda: policy.KNNDistance(n_neighbors=3),
        _knn_fit,
        {"score": lambda rng: (rng.normal(size=(5, 4)),), "score_training": _no_args},
    ),
    "MahalanobisDistance": Case(
        policy.MahalanobisDistance,
        _mahalanobis_fit,
        {"score": lambda rng: (rng.normal(size=(5, 4)),)},
    ),
    "CombinedOODScore": Case(
        policy.CombinedOODScore,
        _combined_fit,
        {"score": lambda rng: (rng.normal(size=(5, 2)),)},
    ),
    "UnseenInputDetector": Case(
        lambda: monitor.UnseenInputDetector(metric="euclidean"),
        _unseen_fit,
        {"score": _features, "unseen": _features, "test": _features},
    ),
}


def _public_classes_with_fit() -> set[str]:
    found = set()
    for info in pkgutil.iter_modules(failwise.__path__):
        if info.name.startswith("_") or info.name == "cli":
            continue
        module = importlib.import_module(f"failwise.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            has_fit = inspect.isclass(obj) and callable(getattr(obj, "fit", None))
            if has_fit and obj is not calibration.BaseCalibrator:
                found.add(name)
    return found


def _fitted(name: str, seed: int = 0) -> Any:
    case = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # uncertified corners of tiny problems
        return case.fit(case.factory(), np.random.default_rng(seed))


NAMES = sorted(CASES)


def test_every_public_class_with_fit_is_covered() -> None:
    # SentenceEmbedder needs the sentence encoder; tests/models checks it (embeddings marker).
    assert _public_classes_with_fit() - {"SentenceEmbedder"} == set(CASES)


@pytest.mark.parametrize("name", NAMES)
def test_every_estimator_derives_from_the_one_base(name: str) -> None:
    assert isinstance(CASES[name].factory(), Estimator)


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_has_a_constraint(name: str) -> None:
    estimator = CASES[name].factory()
    assert set(estimator._parameter_constraints) == set(estimator.get_params(deep=False))


@pytest.mark.parametrize("name", NAMES)
def test_clone_gives_an_unfitted_copy_with_equal_parameters(name: str) -> None:
    fitted = _fitted(name)
    copy = clone(fitted)
    assert type(copy) is type(fitted)
    assert copy.get_params(deep=False) == fitted.get_params(deep=False)
    assert not any(key.endswith("_") and not key.startswith("_") for key in vars(copy))


@pytest.mark.parametrize("name", NAMES)
def test_get_params_and_set_params_round_trip(name: str) -> None:
    estimator = CASES[name].factory()
    params = estimator.get_params(deep=True)
    fresh = type(estimator)().set_params(**params)
    assert fresh.get_params(deep=True) == params
    assert repr(fresh) == repr(estimator)


@pytest.mark.parametrize("name", NAMES)
def test_set_params_names_an_unknown_parameter(name: str) -> None:
    estimator = CASES[name].factory()
    with pytest.raises(InputError, match=r"has no parameter `alpha`; valid parameters are"):
        estimator.set_params(alpha=0.1)


@pytest.mark.parametrize("name", NAMES)
def test_init_only_stores_its_arguments(name: str) -> None:
    # Any object at all is stored as given: checking is the job of fit.
    cls = type(CASES[name].factory())
    sentinels = {param: object() for param in cls().get_params(deep=False)}
    estimator = cls(**sentinels)
    assert vars(estimator) == sentinels


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].factory().get_params()])
def test_fit_validates_the_parameters_first(name: str) -> None:
    case = CASES[name]
    estimator = case.factory()
    first = sorted(estimator.get_params(deep=False))[0]
    estimator.set_params(**{first: object()})
    with pytest.raises(InputError, match=rf"`{first}` must be"):
        case.fit(estimator, np.random.default_rng(0))


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_adds_only_trailing_underscore_attributes(name: str) -> None:
    case = CASES[name]
    estimator = case.factory()
    before = dict(vars(estimator))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        returned = case.fit(estimator, np.random.default_rng(0))
    assert returned is estimator
    added = set(vars(estimator)) - set(before)
    assert added
    assert all(key.endswith("_") or key.startswith("_") for key in added), added
    assert all(vars(estimator)[key] is value for key, value in before.items())


@pytest.mark.parametrize(
    ("name", "method"),
    [(name, method) for name in NAMES for method in CASES[name].methods],
)
def test_methods_refuse_to_run_before_fit_and_spell_out_the_order(name: str, method: str) -> None:
    case = CASES[name]
    args = case.methods[method](np.random.default_rng(1))
    with pytest.raises(NotFittedError, match=rf"call fit before {method}"):
        getattr(case.factory(), method)(*args)


@pytest.mark.parametrize("name", NAMES)
def test_a_pickled_estimator_predicts_the_same(name: str) -> None:
    fitted = _fitted(name)
    restored = pickle.loads(pickle.dumps(fitted))
    assert restored.get_params(deep=False) == fitted.get_params(deep=False)
    for method, make_args in CASES[name].methods.items():
        if method == "to_state":
            continue
        args = make_args(np.random.default_rng(2))
        expected, got = getattr(fitted, method)(*args), getattr(restored, method)(*args)
        if hasattr(expected, "to_dict"):  # Decision(s)
            expected, got = repr(expected), repr(got)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


# --------------------------------------------------------------------------- nested params


class _Inner(Estimator):
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"level": [float]}

    def __init__(self, *, level: float = 0.9) -> None:
        self.level = level


class _Outer(Estimator):
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"inner": [_Inner], "name": [str]}

    def __init__(self, inner: _Inner | None = None, name: str = "outer") -> None:
        self.inner = inner
        self.name = name


def test_deep_parameters_reach_into_components() -> None:
    outer = _Outer(_Inner(level=0.5))
    assert outer.get_params(deep=True) == {
        "inner": outer.inner,
        "inner__level": 0.5,
        "name": "outer",
    }
    assert set(outer.get_params(deep=False)) == {"inner", "name"}
    outer.set_params(inner__level=0.7, name="renamed")
    assert outer.inner is not None
    assert outer.inner.level == 0.7
    assert outer.name == "renamed"


def test_clone_copies_components_deeply() -> None:
    outer = _Outer(_Inner(level=0.5))
    copy = clone(outer)
    assert copy.inner is not outer.inner
    assert copy.get_params(deep=True)["inner__level"] == 0.5


def test_nested_keys_on_a_plain_value_are_refused() -> None:
    with pytest.raises(InputError, match=r"`name` is 'outer', which has no parameters"):
        _Outer().set_params(name__level=0.1)


def test_repr_shows_only_parameters_that_differ_from_their_defaults() -> None:
    assert repr(_Inner()) == "_Inner()"
    assert repr(_Inner(level=0.5)) == "_Inner(level=0.5)"
