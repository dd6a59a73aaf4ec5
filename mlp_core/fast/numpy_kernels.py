"""The fast epoch's kernels on NumPy: every operation writes into a preallocated buffer.

The products call the BLAS through SciPy (``scipy.linalg.blas``), because a BLAS GEMM
computes C ← α A B + β C: with β = 1 the product lands on what C already holds, so the
SGD update W ← W − (η/B) (A^{l-1})^T Δ^l becomes one call that reads and writes W once,
instead of a product, a scaling and a subtraction (NumPy's ``matmul`` has no α or β). The
bias add and the bias's step b ← b − (η/B) 1^T Δ^l are no BLAS calls: they ride on the
fused passes between the products (:mod:`~.cpu_fused`). SciPy's BLAS is
Fortran's, column-major: a C-ordered (r, c) array is, unchanged, the column-major
(c, r) matrix of its transpose, so each call below passes ``.T`` views and computes the
transposed product (Z^T = W^T A^T), copying nothing.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from ..core.errors import ConfigError
from . import cpu_fused
from .cpu_fused import DERIVATIVE, FORWARD


def blas_gemm(dtype):
    """SciPy's GEMM for ``dtype`` (sgemm or dgemm)."""
    return blas.get_blas_funcs("gemm", dtype=np.dtype(dtype))


def gemm_call(gemm, a, b, out):
    """``(gemm, arguments)``: calling ``gemm(*arguments)`` makes out ← a b, for C-ordered
    ``out`` and operands that are C-ordered or the ``.T`` of a C-ordered array (no
    copies). It computes out^T = b^T a^T, each operand taken as stored or transposed."""
    if not out.flags.c_contiguous:  # SciPy would write the product into a copy of it
        raise ConfigError(
            f"gemm_call writes into a C-ordered output; got one with strides {out.strides} "
            f"for shape {out.shape}. Pass a C-ordered buffer (np.empty(shape, dtype))."
        )
    bt, trans_b = (b.T, 0) if b.flags.c_contiguous else (b, 1)
    at, trans_a = (a.T, 0) if a.flags.c_contiguous else (a, 1)
    return gemm, (1.0, bt, at, 0.0, out.T, trans_b, trans_a, 1)


def blas_matmul(dtype):
    """``matmul(a, b, out)``: out ← a b through the BLAS GEMM (:func:`gemm_call`)."""
    gemm = blas_gemm(dtype)

    def matmul(a, b, out):
        function, arguments = gemm_call(gemm, a, b, out)
        function(*arguments)

    return matmul


def make_calls(calls) -> None:
    """Make every ``(function, arguments)`` call of the list, in order."""
    for function, arguments in calls:
        function(*arguments)


class NumpyKernels:
    """:class:`~.kernels.Kernels` on the CPU, for one activation and loss and one set of
    shapes, which *record* the calls of an epoch instead of making them: :meth:`replay`
    makes them. Every call writes into a buffer the workspace owns and the step η/B is
    read from a 0-d array at the time of the call, so the calls recorded once for a
    workspace replay every later epoch, for any η, with none of the Python work of
    walking the batches and layers again (the CPU's counterpart of a CUDA graph).

    The products are BLAS calls; everything between them is one fused pass per step
    (:mod:`~.cpu_fused`): bias + σ, then, backwards, the loss with Δ^L and each
    Δ^{l-1} ⊙ σ'(Z^{l-1}) (read off A^{l-1} = σ(Z^{l-1})), each pass also taking the SGD
    step of the bias of the Δ it forms. So :meth:`step` has only W's product to record,
    and the output layer's bias add waits for the loss's pass."""

    def __init__(self, sizes, slices, dtype, activation: str, loss: str):
        rows = max(b - a for a, b in slices)
        self.activation, self.loss = activation, loss
        self._forward, self._derivative = FORWARD[activation], DERIVATIVE[activation]
        self._output = OUTPUT[loss]
        self.top = np.empty(rows, dtype)  # the softmax's row maxima
        self.gemm = blas_gemm(dtype)
        self.calls = []  # (function, arguments), in the order of the epoch
        self._step, self._minus_step = None, np.empty((), dtype)
        self._biases = {}  # l → b^l, as the forward pass meets them

    def take_rows(self, X, order, out):
        """out ← X[order], now (not recorded). With every index in range,
        ``mode='clip'`` lets NumPy write straight into ``out`` (its default mode gathers
        into a temporary first, ~2.5× slower); otherwise NumPy's own rules (negative
        indices, errors) apply."""
        order = np.asarray(order)
        if order.size and (order.min() < 0 or order.max() >= X.shape[0]):
            np.take(X, order, axis=0, out=out)
        else:
            np.take(X, order, axis=0, out=out, mode="clip")

    def record(self, epoch):
        """Run ``epoch()`` (``epoch_body`` with these kernels) once: the kernels record
        its calls. If it fails, nothing is kept."""
        self.calls = []
        try:
            epoch()
        except BaseException:
            self.calls = []
            raise

    def replay(self):
        """Make every recorded call, in order: one epoch (each batch's J lands in the
        losses the recording was given)."""
        np.negative(self._step, out=self._minus_step)
        make_calls(self.calls)

    # The BLAS calls pass their arguments by position (SciPy's keyword parsing costs as
    # much as a small product): gemm(α, a, b, β, c, trans_a, trans_b, overwrite_c).

    def layer(self, l, A_prev, W, b, Z, last):
        self.calls.append((self.gemm, (1.0, W.T, A_prev.T, 0.0, Z.T, 0, 0, 1)))  # Z^T = W^T A^T
        self._biases[l] = b
        if not last:  # (the output layer's b is added by the loss's pass)
            self.calls.append((self._forward, (Z, b)))  # Z ← σ(Z + b), one pass

    def output(self, Z, Y, D, loss_out):
        top = self.top[: Z.shape[0]]
        b = self._biases[len(self._biases)]  # b^L
        self.calls += self._output(Z, b, Y, D, loss_out, self._minus_step, top)

    def error(self, l, D, W, A_prev, D_prev):
        # (Δ^l (W^l)^T)^T = W^l (Δ^l)^T, then ⊙ σ'(Z^{l-1}), read off A^{l-1}, and b^{l-1}'s
        # step; b^{l-1} is the bias of the layer that produced A^{l-1}
        b_prev = self._biases[l - 1]
        self.calls += [
            (self.gemm, (1.0, W.T, D.T, 0.0, D_prev.T, 1, 0, 1)),
            (self._derivative, (D_prev, A_prev, b_prev, self._minus_step)),
        ]

    def step(self, W, b, A_prev, D, step):
        # W^T ← W^T − step (Δ^l)^T A^{l-1}, with −step read at the time of the call from
        # the 0-d array ``_minus_step`` (−η/B); b's step was taken by the pass that formed D
        self._step = step
        self.calls.append((self.gemm, (self._minus_step, D.T, A_prev.T, 1.0, W.T, 0, 1, 1)))


# Each loss's calls for one batch, from Z^L without its bias b: the loss's J into
# ``loss_out``, Δ^L into D, and b's step (``minus_step``: −η/B); ``top`` (m_b,) is scratch.


def _softmax_cross_entropy(Z, b, Y, D, loss_out, minus_step, top):
    return [
        (cpu_fused.softmax_shift, (Z, b, D, top)),
        (np.exp, (D, D)),
        (cpu_fused.softmax_cross_entropy, (Z, Y, D, top, loss_out, b, minus_step)),
    ]


def _sigmoid_binary_cross_entropy(Z, b, Y, D, loss_out, minus_step, top):
    return [(cpu_fused.sigmoid_binary_cross_entropy, (Z, b, Y, D, loss_out, minus_step))]


def _squared_error(Z, b, Y, D, loss_out, minus_step, top):
    return [(cpu_fused.squared_error, (Z, b, Y, D, loss_out, minus_step))]


OUTPUT = {
    "cross_entropy": _softmax_cross_entropy,
    "binary_cross_entropy": _sigmoid_binary_cross_entropy,
    "squared_error": _squared_error,
}
