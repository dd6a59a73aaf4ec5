"""The benchmark, ``python -m mlp_core bench``, and the book's Part III experiments."""

from .harness import *  # noqa: F403
from .harness import __all__  # noqa: F401
