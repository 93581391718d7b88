"""What one worker holds while it serves: the store, the guards and the key cache.

:func:`open_state` runs once per worker (in the app's lifespan): it opens the store and
loads the policy (and calibrator) artefacts into a :class:`~failwise.runtime.Guard` that
records to that store. A policy folder may be

- a policy artefact itself (``manifest.json`` of kind ``policy``);
- a folder with ``policy`` and, optionally, ``calibrator`` artefacts;
- a folder written by ``failwise demo/evaluate --save-policy DIR``: one such folder per
  model; ``policy_model`` picks one (default: the only one, else the first by name).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Request

from failwise import artifacts, store
from failwise.artifacts import MANIFEST_FILE
from failwise.exceptions import InputError
from failwise.runtime import GroupCommit, Guard
from failwise.service._settings import Settings
from failwise.store import ServiceLevels

__all__ = [
    "KeyCache",
    "LoadedPolicy",
    "ServiceState",
    "find_policy",
    "get_state",
    "load_policy",
    "open_state",
    "state_dependency",
]


def _is_artifact(path: Path) -> bool:
    return (path / MANIFEST_FILE).is_file()


def find_policy(folder: Path, model: str | None = None) -> tuple[Path, Path | None]:
    """The policy artefact and (if any) calibrator artefact that ``folder`` names."""
    root = folder.expanduser()
    if not root.is_dir():
        raise InputError(
            f"--policy {folder}: no such folder. Pass a folder written by `failwise demo "
            "--save-policy DIR` (or evaluate), or a policy saved with failwise.artifacts.save."
        )
    if _is_artifact(root):
        return root, None
    if _is_artifact(root / "policy"):
        calibrator = root / "calibrator"
        return root / "policy", calibrator if _is_artifact(calibrator) else None
    models = sorted(p.name for p in root.iterdir() if _is_artifact(p / "policy"))
    if not models:
        raise InputError(
            f"--policy {folder} holds no policy artefact (expected {MANIFEST_FILE}, a "
            "`policy` sub-folder, or one sub-folder per model as --save-policy writes)."
        )
    name = model if model is not None else models[0]
    if name not in models:
        raise InputError(
            f"policy_model {name!r} is not in {folder}; it holds {models}. Pass one of them."
        )
    return find_policy(root / name)


def _import_model(spec: str, option: str = "--model") -> Any:
    module_name, attribute = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"{option} {spec}: cannot import {module_name!r}: {exc}.") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise InputError(
            f"{option} {spec}: {module_name!r} has no attribute {attribute!r}."
        ) from None


def _scores_of(xs: list[tuple[Any, float | None]]) -> np.ndarray[Any, Any]:
    """The "model" of clients that send scores: the scores themselves, one row per input."""
    return np.asarray([x[0] for x in xs], dtype=float)


def _ood_of(xs: list[tuple[Any, float | None]]) -> list[float]:
    """The out-of-scope score each client sent with its input (NaN when none)."""
    return [math.nan if x[1] is None else float(x[1]) for x in xs]


def _call_batch(method: Any, xs: list[tuple[Any, float | None]]) -> Any:
    return method([x[0] for x in xs])


def _wrap_callable(
    target: Any, methods: tuple[str, str], option: str, returns: str
) -> tuple[Any, bool]:
    """``target`` on the input part of ``(input, ood_score)`` pairs; (callable, batch).

    The first of ``methods`` it has is called on a batch of inputs; a plain callable is
    called on one input at a time.
    """
    for name in methods:
        method = getattr(target, name, None)
        if callable(method):
            return functools.partial(_call_batch, method), True
    if not callable(target):
        raise InputError(
            f"{option} must name an object with {methods[0]} or {methods[1]}, or a "
            f"callable x -> {returns}; got a {type(target).__name__}."
        )
    return (lambda x: target(x[0])), False


def _wrap_model(model: Any) -> tuple[Any, bool]:
    """The model on ``(input, ood_score)`` pairs; (callable, batch)."""
    return _wrap_callable(model, ("predict_proba", "decision_function"), "--model", "scores")


def _wrap_features(function: Any) -> tuple[Any, bool]:
    """The feature function on ``(input, ood_score)`` pairs; (callable, batch)."""
    return _wrap_callable(function, ("encode", "transform"), "--features", "feature vector")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class KeyCache:
    """Verified API keys, trusted for ``ttl_s`` seconds before being read again.

    Tokens are remembered by their SHA-256 digest, never as text, so the cache holds no
    usable secret; a hit costs a digest and a dictionary look-up (no store read).
    """

    def __init__(self, keys: store.ApiKeys, ttl_s: float) -> None:
        self._keys = keys
        self._ttl = ttl_s
        self._by_token: dict[bytes, tuple[float, store.ApiKey | None]] = {}
        self._by_id: dict[str, tuple[float, store.ApiKey | None]] = {}
        self._lock = threading.Lock()

    def _cached(self, table: dict[Any, Any], key: Any) -> tuple[bool, store.ApiKey | None]:
        with self._lock:
            hit = table.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return True, hit[1]
        return False, None

    def _put(self, table: dict[Any, Any], key: Any, value: store.ApiKey | None) -> None:
        with self._lock:
            if len(table) > 10_000:
                table.clear()
            table[key] = (time.monotonic(), value)

    def cached_token(self, token: str) -> tuple[bool, store.ApiKey | None]:
        """(hit, key) from the cache only."""
        return self._cached(self._by_token, _digest(token))

    def verify(self, token: str) -> store.ApiKey | None:
        """The valid key of ``token`` or None (reads the store on a cache miss)."""
        digest = _digest(token)
        hit, key = self._cached(self._by_token, digest)
        if hit:
            return key
        key = self._keys.verify(token)
        self._put(self._by_token, digest, key)
        return key

    def cached_id(self, key_id: str) -> tuple[bool, store.ApiKey | None]:
        """(hit, key) from the cache only."""
        return self._cached(self._by_id, key_id)

    def by_id(self, key_id: str) -> store.ApiKey | None:
        """The valid key ``key_id`` or None (reads the store on a cache miss)."""
        hit, key = self._cached(self._by_id, key_id)
        if hit:
            return key
        try:
            found: store.ApiKey | None = self._keys.get(key_id)
        except store.UnknownKeyError:
            found = None
        if found is not None and not found.active:
            found = None
        self._put(self._by_id, key_id, found)
        return found


@dataclass
class ServiceState:
    """One worker's open store, guards and caches (``app.state.service``)."""

    settings: Settings
    store: store.Store
    keys: KeyCache
    session_secret: str
    scores_guard: Guard | None = None
    model_guard: Guard | None = None
    policy_path: Path | None = None
    levels: ServiceLevels = field(default_factory=ServiceLevels)
    extra: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)
    commits: dict[int, GroupCommit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for guard in (self.scores_guard, self.model_guard):
            if guard is not None:
                self.commits[id(guard)] = GroupCommit(guard, max_group=self.settings.group_commit)

    def group_commit(self, guard: Guard) -> GroupCommit:
        """The group commit of one of this state's guards."""
        return self.commits[id(guard)]

    @property
    def uses_ood(self) -> bool:
        """Whether the policy needs an out-of-scope score with every input."""
        return self.scores_guard is not None and self.scores_guard.ood is not None

    @property
    def n_classes(self) -> int | None:
        """Length of a score vector (None without a policy)."""
        return None if self.scores_guard is None else self.scores_guard.n_classes

    def close(self) -> None:
        for closer in self.closers:
            closer()
        for guard in (self.scores_guard, self.model_guard):
            if guard is not None:
                guard.close()
        self.store.close()


@dataclass(frozen=True)
class LoadedPolicy:
    """The policy (and calibrator) artefacts a service serves, and where they were."""

    policy: Any = None
    calibrator: Any = None
    path: Path | None = None

    @property
    def n_classes(self) -> int | None:
        return None if self.policy is None else int(self.policy.n_classes_)

    @property
    def uses_ood(self) -> bool:
        return self.policy is not None and bool(np.isfinite(self.policy.ood_threshold_))


def load_policy(settings: Settings) -> LoadedPolicy:
    """Load (and verify) the artefacts ``settings.policy`` names."""
    if settings.policy is None:
        return LoadedPolicy()
    policy_path, calibrator_path = find_policy(settings.policy, settings.policy_model)
    policy = artifacts.load(policy_path)
    calibrator = None if calibrator_path is None else artifacts.load(calibrator_path)
    return LoadedPolicy(policy, calibrator, policy_path)


def open_state(settings: Settings, loaded: LoadedPolicy | None = None) -> ServiceState:
    """Open the store and build the guards of ``settings`` (once per worker)."""
    scores_guard = model_guard = None
    artefacts = loaded if loaded is not None else load_policy(settings)
    policy, calibrator, policy_path = artefacts.policy, artefacts.calibrator, artefacts.path
    model = None if settings.model is None else _import_model(settings.model)
    if settings.features is not None and model is None:
        raise InputError(
            "--features computes each input's features for the monitor, so it needs --model "
            "(clients that send scores send no input to compute them from)."
        )
    features = None if settings.features is None else _import_model(settings.features, "--features")
    opened = store.open(settings.store, pool_size=8)
    try:
        if policy is not None:
            uses_ood = artefacts.uses_ood
            common: dict[str, Any] = {
                "store": opened,
                "audit_rate": settings.audit_rate,
                "timeout_s": settings.model_timeout_s,
                "ood": _ood_of if uses_ood else None,
                "batch_ood": uses_ood,
            }
            scores_guard = Guard(_scores_of, calibrator, policy, batch_model=True, **common)
            if model is not None:
                wrapped, batch = _wrap_model(model)
                feature_function, batch_features = (
                    (None, False) if features is None else _wrap_features(features)
                )
                model_guard = Guard(
                    wrapped,
                    calibrator,
                    policy,
                    batch_model=batch,
                    features=feature_function,
                    batch_features=batch_features,
                    **common,
                )
        secret = (
            settings.session_secret.get_secret_value()
            if settings.session_secret is not None
            else opened.keys.secret("session")
        )
    except BaseException:
        opened.close()
        raise
    return ServiceState(
        settings=settings,
        store=opened,
        keys=KeyCache(opened.keys, settings.key_cache_s),
        session_secret=secret,
        scores_guard=scores_guard,
        model_guard=model_guard,
        policy_path=policy_path,
        levels=settings.service_levels(),
    )


def current_state(request: Request) -> ServiceState | None:
    """The worker's :class:`ServiceState`, or None while its store cannot be opened."""
    state: ServiceState | None = getattr(request.app.state, "service", None)
    return state


def unavailable_reason(request: Request) -> str:
    """Why the worker has no store yet (meaningful while :func:`current_state` is None)."""
    reason: str = getattr(request.app.state, "unavailable", "the store is not open yet")
    return reason


def get_state(request: Request) -> ServiceState:
    """The worker's :class:`ServiceState` (a FastAPI dependency).

    Raises
    ------
    failwise.store.StoreError
        While the worker's store cannot be opened (answered 503 with ``Retry-After``).
    """
    state = current_state(request)
    if state is None:
        raise store.StoreError(
            f"This worker cannot reach its store yet ({unavailable_reason(request)}); it "
            "keeps trying. Retry after the Retry-After delay."
        )
    return state


async def state_dependency(request: Request) -> ServiceState:
    """:func:`get_state` as an async dependency: FastAPI runs it on the event loop, where
    a plain function dependency takes a round trip through a worker thread per request."""
    return get_state(request)
