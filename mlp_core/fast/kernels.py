"""The interface between the fast epoch and a device: one kernel set per array library.

:func:`mlp_core.fast.engine.epoch_body` is written once, against :class:`Kernels`; a
kernel set does each step of it on its device. :class:`~.numpy_kernels.NumpyKernels`
runs on the CPU (it records the calls of an epoch, replayed every epoch),
:class:`~.cupy_kernels.CupyKernels` on a GPU with fused CUDA kernels. Every method writes
into buffers it is given and returns nothing, so a whole epoch of calls can be recorded
(NumPy) or captured as a CUDA graph (CuPy) and replayed.

Shapes, in the book's symbols, for a batch of m_b rows: A_prev = A^{l-1} (m_b, h_{l-1});
Z, D (m_b, h_l); b (h_l,); W (h_{l-1}, h_l); Y (m_b, C); ``loss_out`` a one-element view
of the epoch's losses; ``step`` the step η/B, a scalar array on the device (so that a new
η changes no call).
"""

from __future__ import annotations

from typing import Protocol


class Kernels(Protocol):
    """What the one epoch body needs from a device."""

    def take_rows(self, X, order, out) -> None:
        """out ← X[order] (rows): the data in this epoch's order."""

    def layer(self, l: int, A_prev, W, b, Z, last: bool) -> None:
        """Z ← σ(A_prev W + b), or A_prev W + b for the output layer (``last``; NumPy's
        kernels leave its + b to :meth:`output`), keeping what σ' will need."""

    def output(self, Z, Y, D, loss_out) -> None:
        """loss_out[0] ← J, D ← Δ^L = A^L − Y, from Z = Z^L (overwritten); NumPy's kernels
        add the output layer's bias here, and take its step."""

    def error(self, l: int, D, W, A_prev, D_prev) -> None:
        """D_prev ← (D W^T) ⊙ σ'(Z^{l-1}): Δ^{l-1} from Δ^l and the old W^l, σ' read off
        A_prev = A^{l-1}."""

    def step(self, W, b, A_prev, D, step) -> None:
        """W ← W − step · A_prev^T D and b ← b − step · 1^T D, in place (NumPy's kernels
        take b's step in the pass that formed D, :mod:`~.cpu_fused`)."""
