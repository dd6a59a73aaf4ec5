"""The fast engine: the book's epoch rearranged for speed, on NumPy and on CuPy.

It is *the same computation* as :func:`mlp_core.training.run_epoch` (tests/test_fast.py
proves it); read :mod:`mlp_core.core.batched` to learn the algorithm and
:mod:`mlp_core.fast.engine` to see where the time goes.
"""

from .engine import (
    FAST_ACTIVATIONS,
    FAST_LOSSES,
    clear_workspaces,
    graph_status,
    run_epoch_fast,
    supports,
)

__all__ = [
    "FAST_ACTIVATIONS",
    "FAST_LOSSES",
    "clear_workspaces",
    "graph_status",
    "run_epoch_fast",
    "supports",
]
