"""The interface between the fast epoch and a device: one kernel set per array library.

:func:`mlp_core.fast.engine.epoch_body` is written once, against :class:`Kernels`; a
kernel set does each step of it on its device. :class:`~.numpy_kernels.NumpyKernels`
runs on the CPU, :class:`~.cupy_kernels.CupyKernels` on a GPU with fused CUDA kernels.
Every method writes into buffers it is given (``out=``) and returns nothing, so a whole
epoch of calls can be captured as a CUDA graph and replayed.

Shapes, in the book's symbols, for a batch of m_b rows: Z, A, D (m_b, h_l); b, gb (h_l,);
W, G (h_{l-1}, h_l); Y (m_b, C); ``loss_out`` a one-element view of the epoch's losses;
``step`` the step η/B, a scalar array on the device (so that a new η changes no call).
"""

from __future__ import annotations

from typing import Protocol


class Kernels(Protocol):
    """What the one epoch body needs from a device."""

    def take_rows(self, X, order, out) -> None:
        """out ← X[order] (rows): the data in this epoch's order."""

    def matmul(self, a, b, out) -> None:
        """out ← a b (BLAS / cuBLAS)."""

    def bias_act(self, l: int, b, Z) -> None:
        """Z ← σ(Z + b) in place, for hidden layer l (keeping what σ' will need)."""

    def bias_add(self, b, Z) -> None:
        """Z ← Z + b in place (the output layer's logits Z^L)."""

    def output(self, Z, Y, D, loss_out) -> None:
        """loss_out[0] ← J, D ← Δ^L = A^L − Y, from Z = Z^L (overwritten with A^L)."""

    def derivative(self, l: int, A, D) -> None:
        """D ← D ⊙ σ'(Z^l), σ' read off A = A^l = σ(Z^l) (or what bias_act kept)."""

    def bias_grad(self, D, out) -> None:
        """out ← 1^T D (the column sums of Δ^l)."""

    def sgd(self, w, g, step) -> None:
        """w ← w − step · g in place (g may be overwritten)."""
