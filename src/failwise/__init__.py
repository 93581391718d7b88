"""failwise: make ML systems handle their own failures."""

from __future__ import annotations

__all__ = ["OUT_OF_SCOPE", "__version__"]

__version__ = "0.1.0.dev0"

#: Label that marks an input belonging to none of the model's classes.
OUT_OF_SCOPE = -1
