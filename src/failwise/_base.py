"""`Estimator`: the scikit-learn estimator contract, once, for every class with ``fit``.

A subclass stores its keyword arguments in ``__init__`` and does nothing else, declares a
``_parameter_constraints`` table, and calls :meth:`Estimator._validate_params` at the top of
``fit``. The base class gives it ``get_params(deep=...)`` and ``set_params`` (nested
``component__parameter`` keys, as scikit-learn), a ``__repr__`` that shows the parameters
that differ from their defaults, and the "call fit before <method>" check, so that
:func:`sklearn.base.clone`, grid searches and pickling work on every failwise estimator.

failwise does not derive from :class:`sklearn.base.BaseEstimator`: importing it pulls in
``scipy.stats`` and most of scikit-learn, which ``import failwise`` avoids, and its errors
do not follow the house style (received / expected / fix). The duck-typed protocol
(``get_params`` / ``set_params`` and constructor arguments stored unchanged) is all that
scikit-learn's ``clone`` needs.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self

from failwise._params import validate_params
from failwise._validation import check_fitted
from failwise.exceptions import InputError

__all__ = ["Estimator"]


class Estimator:
    """Base class of every failwise class with ``fit``.

    Examples
    --------
    >>> from failwise._base import Estimator
    >>> from failwise._params import Probability
    >>> class Screen(Estimator):
    ...     _parameter_constraints = {"level": [Probability()]}
    ...     def __init__(self, *, level=0.9):
    ...         self.level = level
    ...     def fit(self, x=None):
    ...         self._validate_params()
    ...         self.fitted_level_ = self.level
    ...         return self
    >>> Screen(level=0.5)
    Screen(level=0.5)
    >>> Screen().set_params(level=0.7).get_params()
    {'level': 0.7}
    """

    #: Parameter name → accepted forms, checked by :meth:`_validate_params` in ``fit``.
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    # ------------------------------------------------------------------ parameters

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The constructor's parameter names, sorted (as scikit-learn lists them)."""
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for parameter in inspect.signature(init).parameters.values():
            if parameter.name == "self":
                continue
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ takes *args or **kwargs; an estimator must name "
                    "every parameter so that get_params and clone can see it."
                )
            names.append(parameter.name)
        return sorted(names)

    @classmethod
    def _parameter_defaults(cls) -> dict[str, Any]:
        """Constructor parameter name → default, in signature order (``empty`` if none)."""
        names = set(cls._get_param_names())
        signature = inspect.signature(cls.__init__)
        return {n: p.default for n, p in signature.parameters.items() if n in names}

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of parameters that are estimators themselves, under
            ``<parameter>__<name>`` keys.

        Returns
        -------
        dict
            Parameter name to value, e.g. to fit a fresh copy with
            ``type(est)(**est.get_params(deep=False))``.
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for key, nested in value.get_params(deep=True).items():
                    out[f"{name}__{key}"] = nested
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters; they are validated at the next ``fit``.

        Keys of the form ``<parameter>__<name>`` set a parameter of a parameter that is an
        estimator itself.

        Returns
        -------
        self
        """
        if not params:
            return self
        names = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, separator, rest = key.partition("__")
            if name not in names:
                close = ", ".join(names) if names else "none"
                origin = f" (in key {key!r})" if separator else ""
                raise InputError(
                    f"{type(self).__name__} has no parameter `{name}`{origin}; valid parameters "
                    f"are: {close}. Check the spelling, or list them with `get_params()`."
                )
            if separator:
                nested.setdefault(name, {})[rest] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            component = getattr(self, name)
            if not hasattr(component, "set_params") or isinstance(component, type):
                raise InputError(
                    f"{type(self).__name__}: `{name}` is {component!r}, which has no "
                    f"parameters, so {sorted(sub_params)} cannot be set on it. Set `{name}` "
                    "itself instead."
                )
            component.set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = self._parameter_defaults()
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name, default in defaults.items()
            if not _same_value(getattr(self, name), default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ------------------------------------------------------------------ lifecycle

    def _validate_params(self) -> None:
        """Check every parameter against ``_parameter_constraints`` (first thing in fit)."""
        validate_params(self, self._parameter_constraints)

    def _check_fitted(self, attribute: str, method: str) -> None:
        """Raise :class:`NotFittedError` ("call fit before <method>") unless fitted."""
        check_fitted(self, attribute, method)

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` has run: some public attribute ends in ``_``."""
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))


def _same_value(value: Any, default: Any) -> bool:
    if value is default:
        return True
    try:
        return bool(type(value) is type(default) and value == default)
    except (TypeError, ValueError):  # arrays and other objects without a scalar ==
        return False
