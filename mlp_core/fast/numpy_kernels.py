"""The fast epoch's kernels on NumPy: every operation writes into a preallocated buffer.

The products call the BLAS through SciPy (``scipy.linalg.blas``), because a BLAS GEMM
computes C ← α A B + β C: with β = 1 the product lands on what C already holds, so the
bias add of the forward pass and the SGD updates W ← W − (η/B) (A^{l-1})^T Δ^l,
b ← b − (η/B) 1^T Δ^l each become one call that reads and writes W once, instead of a
product, a scaling and a subtraction (NumPy's ``matmul`` has no α or β). SciPy's BLAS is
Fortran's, column-major: a C-ordered (r, c) array is, unchanged, the column-major
(c, r) matrix of its transpose, so each call below passes ``.T`` views and computes the
transposed product (Z^T = W^T A^T), copying nothing.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from ..core.losses import get_loss


def blas_routines(dtype):
    """SciPy's (gemm, gemv) for ``dtype`` (sgemm/sgemv or dgemm/dgemv)."""
    return blas.get_blas_funcs(("gemm", "gemv"), dtype=np.dtype(dtype))


def blas_matmul(dtype):
    """``matmul(a, b, out)``: out ← a b through the BLAS GEMM, for C-ordered ``out`` and
    operands that are C-ordered or the ``.T`` of a C-ordered array (no copies)."""
    gemm = blas_routines(dtype)[0]

    def column_major(x):  # (column-major array holding x^T or x, is it x?)
        return (x.T, 0) if x.flags.c_contiguous else (x, 1)

    def matmul(a, b, out):
        bt, trans_b = column_major(b)
        at, trans_a = column_major(a)
        gemm(1.0, bt, at, trans_a=trans_b, trans_b=trans_a, c=out.T, overwrite_c=True)

    return matmul


class NumpyKernels:
    """:class:`~.kernels.Kernels` on the CPU, for one activation and loss and one set of
    shapes. Hidden layers keep the derivative σ'(Z^l) for the backward pass as they go
    (``S[l]``: ReLU's 0/1 mask in the array's own dtype, a multiply of the same type being
    the cheapest pass; tanh and sigmoid read it off A^l when it is needed)."""

    def __init__(self, sizes, rows: int, dtype, activation: str, loss: str):
        L = len(sizes) - 1
        self.activation, self.loss = activation, loss
        self.S = {l: np.empty((rows, sizes[l]), dtype) for l in range(1, L)}
        self.ones = np.ones(rows, dtype)
        self.gemm, self.gemv = blas_routines(dtype)
        self.ones_C = np.ones(sizes[-1], dtype)
        self._output = _OUTPUT[loss]
        self.rows = np.empty((2, rows), dtype)  # the softmax's row maxima and row sums

    def take_rows(self, X, order, out):
        """out ← X[order]. With every index in range, ``mode='clip'`` lets NumPy write
        straight into ``out`` (its default mode gathers into a temporary first, ~2.5×
        slower); otherwise NumPy's own rules (negative indices, errors) apply."""
        order = np.asarray(order)
        if order.size and (order.min() < 0 or order.max() >= X.shape[0]):
            np.take(X, order, axis=0, out=out)
        else:
            np.take(X, order, axis=0, out=out, mode="clip")

    def layer(self, l, A_prev, W, b, Z, last):
        np.copyto(Z, b)  # Z ← A^{l-1} W^l + Z: one GEMM with β = 1 (Z^T = W^T A^T + Z^T)
        self.gemm(1.0, W.T, A_prev.T, beta=1.0, c=Z.T, overwrite_c=True)
        if not last:
            _activate(self.activation, Z, self.S.get(l))

    def output(self, Z, Y, D, loss_out):
        loss_out[0] = self._output(self, Z, Y, D)

    def error(self, l, D, W, A_prev, D_prev):
        # (Δ^l (W^l)^T)^T = W^l (Δ^l)^T, then ⊙ σ'(Z^{l-1})
        self.gemm(1.0, W.T, D.T, trans_a=True, c=D_prev.T, overwrite_c=True)
        mb, act = D_prev.shape[0], self.activation
        if act == "identity":
            return
        S = self.S[l - 1][:mb]
        if act == "tanh":  # 1 − tanh²(Z) = 1 − A²
            np.multiply(A_prev, A_prev, out=S)
            np.subtract(1, S, out=S)
        elif act == "sigmoid":  # σ(Z) (1 − σ(Z)) = A (1 − A)
            np.subtract(1, A_prev, out=S)
            np.multiply(A_prev, S, out=S)
        np.multiply(D_prev, S, out=D_prev)

    def step(self, W, b, A_prev, D, step):
        s = -float(step)  # W^T ← W^T − s (Δ^l)^T A^{l-1}, b ← b − s (Δ^l)^T 1
        self.gemm(s, D.T, A_prev.T, trans_b=True, beta=1.0, c=W.T, overwrite_c=True)
        self.gemv(s, D.T, self.ones[: D.shape[0]], beta=1.0, y=b, overwrite_y=True)


def _activate(act, Z, S):
    """Z ← σ(Z) in place (Z already holds Z^l + b^l); ReLU keeps its 0/1 mask in S."""
    if act == "relu":
        S = S[: Z.shape[0]]
        np.greater(Z, 0, out=S)  # the mask, kept for the backward pass
        np.multiply(Z, S, out=Z)  # max(Z, 0) (−0.0 where Z < 0; NaN stays NaN)
    elif act == "tanh":
        np.tanh(Z, out=Z)
    elif act == "sigmoid":  # 0.5 (1 + tanh(0.5 Z)), as activations.sigmoid
        np.multiply(Z, 0.5, out=Z)
        np.tanh(Z, out=Z)
        np.add(Z, 1, out=Z)
        np.multiply(Z, 0.5, out=Z)
    # identity: nothing to do


def _softmax_cross_entropy(K, Z, Y, D):
    """J = (1/m_b) Σ_i [logsumexp(Z_i) − Y_i·Z_i] and Δ^L = softmax(Z) − Y, one pass.

    Z (m_b, C) is overwritten with exp(Z − max); ``K.rows`` (2, B) receives each row's
    max and sum. The row sums are a product with a vector of ones (a BLAS gemv), like
    the bias gradient; returns J."""
    mb, C = Z.shape
    M, s = K.rows[0, :mb], K.rows[1, :mb]
    yz = np.vdot(Y, Z)
    np.maximum.reduce(Z, axis=1, out=M)
    np.subtract(Z, M[:, None], out=Z)
    np.exp(Z, out=Z)
    K.gemv(1.0, Z.T, K.ones_C, y=s, trans=True, overwrite_y=True)  # s ← Z 1
    np.divide(Z, s[:, None], out=D)
    np.subtract(D, Y, out=D)
    np.log(s, out=s)
    ones = K.ones[:mb]
    return (np.vdot(ones, M) + np.vdot(ones, s) - yz) / mb


def _sigmoid_bce(K, Z, Y, D):
    J = get_loss("binary_cross_entropy").value(Z, Y)
    _activate("sigmoid", Z, None)
    np.subtract(Z, Y, out=D)
    return J


def _squared_error(K, Z, Y, D):
    np.subtract(Z, Y, out=D)
    return 0.5 * np.vdot(D, D) / Z.shape[0]


_OUTPUT = {
    "cross_entropy": _softmax_cross_entropy,
    "binary_cross_entropy": _sigmoid_bce,
    "squared_error": _squared_error,
}
