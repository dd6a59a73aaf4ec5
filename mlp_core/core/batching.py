"""Cutting an epoch into mini-batches: the batch slices and the epoch order (chapter 11).

Every engine (the book's formulas, the fast path, the benchmark's contenders and the
distributed trainer) takes its batches from here, so they all visit the same rows in the
same order.
"""

from __future__ import annotations

import numpy as np

from .validate import check_whole


def batch_slices(m: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` pairs cutting m rows into batches of B (the last may be smaller)."""
    B = check_whole(
        batch_size,
        "batch_size",
        example="It is the number of rows per step, e.g. batch_size=32, or batch_size=m for "
        "full-batch descent.",
    )
    return [(s, min(s + B, m)) for s in range(0, m, B)]


def step_size(lr: float, m_b: int, batch_size: int) -> float:
    """η m_b / B: the step of a batch of m_b rows in an epoch of batches of B (eq.
    ``eq-minibatch-step``). A full batch steps η; a short last batch steps less, so that
    every example moves the parameters by the same amount."""
    return lr * m_b / batch_size


def epoch_order(m: int, rng: np.random.Generator) -> np.ndarray:
    """A fresh permutation of the m row indices, drawn on the host from ``rng``."""
    return rng.permutation(m)
