"""A fitted :class:`~failwise.Policy` as plain data, and back.

:func:`policy_to_state` reads the policy's constructor arguments and fitted attributes,
including its :class:`~failwise.policy.RiskThreshold`, its
:class:`~failwise.policy.ConformalPredictionSets` and the rungs of its fitted ladder
(``policy.rungs_``, each through its own ``to_state``); :func:`policy_from_state` builds an
equivalent fitted policy by calling the constructor and setting those attributes. Nothing is
pickled and no code named by the data is imported: only the classes listed here and rung
classes registered by subclassing :class:`~failwise.policy.Rung` can be rebuilt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from failwise.exceptions import InputError, NotFittedError
from failwise.policy import (
    CertificationFrontier,
    ConformalPredictionSets,
    OODThreshold,
    OutcomeCosts,
    Policy,
    RiskThreshold,
    Rung,
    rung_class,
)

__all__ = ["POLICY_STATE_FORMAT", "policy_from_state", "policy_to_state"]

#: Version of the layout written by :func:`policy_to_state`.
POLICY_STATE_FORMAT: Final = 1

# Fitted parts stored as nested objects; everything else must be a plain value or an array.
_PARTS: Final[dict[str, type[Any]]] = {
    "risk_control_": RiskThreshold,
    "prediction_sets_": ConformalPredictionSets,
}

# Fitted results stored as frozen dataclasses: rebuilt from their fields.
_RECORDS: Final[dict[str, type[Any]]] = {
    "OODThreshold": OODThreshold,
    "CertificationFrontier": CertificationFrontier,
}

# Caches filled on first use: not part of the fitted state, reset to None on load.
_CACHES: Final[dict[type[Any], tuple[str, ...]]] = {RiskThreshold: ("_p_values",)}


def _params(obj: Any) -> dict[str, Any]:
    params: dict[str, Any] = dict(obj.get_params())
    return params


def _fitted_attributes(obj: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    caches = _CACHES.get(type(obj), ())
    return {
        name: value
        for name, value in vars(obj).items()
        if name not in params and name not in caches
    }


def _part_state(obj: Any, where: str) -> dict[str, Any]:
    params = _params(obj)
    if isinstance(params.get("random_state"), np.random.Generator):
        raise InputError(
            f"cannot save `{where}`: its random_state is a numpy Generator, whose stream "
            "cannot be written as plain data. Fit it with an int seed (or None) instead."
        )
    return {"params": params, "fitted": _fitted_attributes(obj, params)}


def _build_part(cls: type[Any], state: Mapping[str, Any], where: str) -> Any:
    _require_keys(state, ("params", "fitted"), where)
    try:
        part = cls(**state["params"])
    except TypeError as exc:
        raise InputError(
            f"`{where}` has parameters {sorted(state['params'])} that {cls.__name__} does not "
            f"take ({exc}); the state was written by another version of failwise."
        ) from None
    for name, value in state["fitted"].items():
        setattr(part, name, value)
    for name in _CACHES.get(cls, ()):
        setattr(part, name, None)
    return part


def _require_keys(state: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(state, Mapping):
        raise InputError(f"`{where}` must be a dict; got {type(state).__name__}.")
    missing = [key for key in keys if key not in state]
    if missing:
        raise InputError(
            f"`{where}` lacks the key(s) {missing}; it must come from `policy_to_state`."
        )


def _record_state(record: Any) -> dict[str, Any]:
    fields = {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}
    return {"record": type(record).__name__, "fields": fields}


def _build_record(state: Mapping[str, Any], where: str) -> Any:
    cls = _RECORDS.get(state["record"])
    if cls is None:
        raise InputError(
            f"`{where}` names an unknown record {state['record']!r}; known records are "
            f"{sorted(_RECORDS)}."
        )
    _require_keys(state, ("fields",), where)
    return cls(**state["fields"])


def _rung_state(
    rung: Any, index: int, where: str = "policy.rungs_", parts: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    if not isinstance(rung, Rung):
        raise InputError(
            f"cannot save {where}[{index}]: a {type(rung).__name__} is not a "
            "failwise.policy.Rung; subclass Rung (and implement to_state / from_state if it "
            "is not a dataclass) so that an artefact can rebuild it."
        )
    try:
        fields = rung.to_state()
    except InputError as exc:
        raise InputError(f"cannot save {where}[{index}]: {exc}") from None
    # A field that is one of the policy's fitted parts is saved once, as a reference.
    for key in fields:
        value = getattr(rung, key, None)
        for name, part in (parts or {}).items():
            if part is not None and value is part:
                fields[key] = {"$part": name}
    return {"rung": type(rung).rung_name, "fields": fields}


def _build_rung(rung_state: Any, fitted: Mapping[str, Any], where: str) -> Rung:
    _require_keys(rung_state, ("rung", "fields"), where)
    try:
        cls = rung_class(rung_state["rung"])
    except InputError as exc:
        raise InputError(f"`{where}` cannot be loaded: {exc}") from None
    # Format-1 artefacts refer to a fitted part instead of holding the rung's own state.
    fields = {
        key: fitted.get(value["$part"])
        if isinstance(value, Mapping) and "$part" in value
        else value
        for key, value in rung_state["fields"].items()
    }
    return cls.from_state(fields)


def policy_to_state(policy: Policy) -> dict[str, Any]:
    """Return a fitted policy as plain values and NumPy arrays.

    Parameters
    ----------
    policy : Policy
        A fitted policy.

    Returns
    -------
    dict
        ``{"class": "Policy", "format": 1, "params": {...}, "fitted": {...}}``. ``fitted``
        holds every fitted attribute; the risk certificate and the prediction sets are nested
        ``{"params", "fitted"}`` dictionaries, the out-of-scope screen is ``{"record":
        "OODThreshold", "fields": {...}}`` and each rung of ``rungs_`` is ``{"rung": class
        name, "fields": {...}}``.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise import Policy
    >>> from failwise.artifacts import policy_from_state, policy_to_state
    >>> rng = np.random.default_rng(0)
    >>> proba = rng.dirichlet(np.full(3, 0.3), size=2000)
    >>> y = np.array([rng.choice(3, p=p) for p in proba])
    >>> policy = Policy(target_risk=0.1, confidence_level=0.9).fit(proba, y)
    >>> state = policy_to_state(policy)
    >>> state["fitted"]["answer_threshold_"] == policy.answer_threshold_
    True
    >>> copy = policy_from_state(state)
    >>> bool((copy.decide(proba).action_codes == policy.decide(proba).action_codes).all())
    True
    """
    if not isinstance(policy, Policy):
        raise InputError(
            f"`policy` must be a failwise Policy; got {type(policy).__name__}. Calibrators "
            "have their own `to_state()`."
        )
    if not hasattr(policy, "rungs_"):
        raise NotFittedError(
            "This Policy is not fitted yet: call fit before saving it (an artefact holds a "
            "fitted ladder)."
        )
    params = _params(policy)
    costs = params.get("costs")
    if isinstance(costs, OutcomeCosts):
        params["costs"] = costs.to_dict()
    if params.get("extra_rungs") is not None:
        params["extra_rungs"] = [
            _rung_state(r, i, "policy.extra_rungs") for i, r in enumerate(params["extra_rungs"])
        ]
    fitted: dict[str, Any] = {}
    for name, value in _fitted_attributes(policy, params).items():
        if name in _PARTS:
            fitted[name] = None if value is None else _part_state(value, f"policy.{name}")
        elif name == "rungs_":
            parts = {part: getattr(policy, part, None) for part in _PARTS}
            fitted[name] = [_rung_state(r, i, parts=parts) for i, r in enumerate(value)]
        elif _RECORDS.get(type(value).__name__) is type(value):
            fitted[name] = _record_state(value)
        else:
            fitted[name] = value
    return {"class": "Policy", "format": POLICY_STATE_FORMAT, "params": params, "fitted": fitted}


def policy_from_state(state: Mapping[str, Any]) -> Policy:
    """Rebuild a fitted :class:`~failwise.Policy` from :func:`policy_to_state`'s output.

    Parameters
    ----------
    state : mapping
        ``{"class": "Policy", "format": 1, "params": {...}, "fitted": {...}}``.

    Returns
    -------
    Policy
        A fitted policy whose ``decide`` returns exactly what the saved one returned.
    """
    _require_keys(state, ("params", "fitted"), "state")
    if state.get("class", "Policy") != "Policy":
        raise InputError(f"`state` holds a {state.get('class')!r}, not a Policy.")
    if state.get("format", POLICY_STATE_FORMAT) != POLICY_STATE_FORMAT:
        raise InputError(
            f"`state` has policy format {state.get('format')!r}; this failwise reads format "
            f"{POLICY_STATE_FORMAT}. Refit the policy and save it again."
        )
    params = dict(state["params"])
    if isinstance(params.get("costs"), Mapping):
        params["costs"] = OutcomeCosts(**params["costs"])
    if params.get("extra_rungs") is not None:
        params["extra_rungs"] = [
            _build_rung(r, {}, f"state['params']['extra_rungs'][{i}]")
            for i, r in enumerate(params["extra_rungs"])
        ]
    unknown = set(params) - set(Policy().get_params())
    if unknown:
        raise InputError(
            f"`state` has parameter(s) {sorted(unknown)} that Policy does not take; it was "
            "written by another version of failwise. Refit the policy and save it again."
        )
    policy = Policy(**params)
    fitted = dict(state["fitted"])
    if "rungs_" not in fitted:
        raise InputError("`state['fitted']` lacks `rungs_`: it does not describe a fitted policy.")
    for name, cls in _PARTS.items():
        if fitted.get(name) is not None:
            fitted[name] = _build_part(cls, fitted[name], f"state['fitted']['{name}']")
    for name, value in fitted.items():
        if isinstance(value, Mapping) and "record" in value:
            fitted[name] = _build_record(value, f"state['fitted']['{name}']")
    rungs = [
        _build_rung(rung_state, fitted, f"state['fitted']['rungs_'][{index}]")
        for index, rung_state in enumerate(fitted.pop("rungs_"))
    ]
    for name, value in fitted.items():
        setattr(policy, name, value)
    policy.rungs_ = rungs
    return policy
