"""The core: the book's formulas, their validation, parameters, data and files (NumPy only).

Rooms, in import order (each imports only those above it):
``errors`` → ``backend`` → ``validate`` → ``activations``, ``losses`` → ``params`` →
``batching`` → ``single``, ``batched`` → ``gradcheck``; ``data`` and ``io`` beside them.
"""

from . import (
    activations,
    backend,
    batched,
    batching,
    data,
    errors,
    gradcheck,
    io,
    losses,
    params,
    single,
    validate,
)

__all__ = [
    "activations",
    "backend",
    "batched",
    "batching",
    "data",
    "errors",
    "gradcheck",
    "io",
    "losses",
    "params",
    "single",
    "validate",
]
