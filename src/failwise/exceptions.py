"""Exceptions and warnings raised by failwise.

Every error message says what arrived, what was expected and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "FailwiseError",
    "InputError",
    "NotFittedError",
    "UncertifiedWarning",
]


class FailwiseError(Exception):
    """Base class of every error raised by failwise."""


class InputError(FailwiseError, ValueError):
    """An argument has the wrong shape, type, range or content.

    Subclasses :class:`ValueError` so that code written against NumPy and
    scikit-learn conventions keeps catching it.
    """


class NotFittedError(FailwiseError, AttributeError, ValueError):
    """A method that needs fitted state was called before ``fit``.

    Subclasses :class:`AttributeError` and :class:`ValueError` like
    :class:`sklearn.exceptions.NotFittedError`.
    """


class UncertifiedWarning(UserWarning):
    """No operating point could be certified at the requested risk and confidence.

    The fitted object then answers nothing automatically; the warning says what
    the data would have allowed and how to get a certificate (more labelled
    data, a higher ``target_risk`` or a lower ``confidence_level``).
    """
