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

    def matmul(a, b, out):  # out^T = b^T a^T, each taken as stored or transposed
        bt, trans_b = (b.T, 0) if b.flags.c_contiguous else (b, 1)
        at, trans_a = (a.T, 0) if a.flags.c_contiguous else (a, 1)
        gemm(1.0, bt, at, 0.0, out.T, trans_b, trans_a, 1)

    return matmul


class NumpyKernels:
    """:class:`~.kernels.Kernels` on the CPU, for one activation and loss and one set of
    shapes. Hidden layers keep the derivative σ'(Z^l) for the backward pass as they go
    (``S[l]``: ReLU's 0/1 mask in the array's own dtype, a multiply of the same type being
    the cheapest pass; tanh and sigmoid read it off A^l when it is needed)."""

    def __init__(self, sizes, rows: int, dtype, activation: str, loss: str):
        L = len(sizes) - 1
        self.activation, self.loss = activation, loss
        self._sigma, self._sigma_prime = ACTIVATE[activation], SIGMA_PRIME[activation]
        self.S = {l: np.empty((rows, sizes[l]), dtype) for l in range(1, L)}
        self.ones = np.ones(rows, dtype)
        self.gemm, self.gemv = blas_routines(dtype)
        self.ZT = np.empty((sizes[-1], rows), dtype)
        self._output = OUTPUT[loss]
        self.rows = np.empty((2, rows), dtype)  # the softmax's row maxima and sums

    def take_rows(self, X, order, out):
        """out ← X[order]. With every index in range, ``mode='clip'`` lets NumPy write
        straight into ``out`` (its default mode gathers into a temporary first, ~2.5×
        slower); otherwise NumPy's own rules (negative indices, errors) apply."""
        order = np.asarray(order)
        if order.size and (order.min() < 0 or order.max() >= X.shape[0]):
            np.take(X, order, axis=0, out=out)
        else:
            np.take(X, order, axis=0, out=out, mode="clip")

    # The BLAS calls pass their arguments by position (SciPy's keyword parsing costs as
    # much as a small product): gemm(α, a, b, β, c, trans_a, trans_b, overwrite_c) and
    # gemv(α, a, x, β, y, offx, incx, offy, incy, trans, overwrite_y).

    def layer(self, l, A_prev, W, b, Z, last):
        Z[...] = b  # then Z ← A^{l-1} W^l + Z: one GEMM with β = 1 (Z^T = W^T A^T + Z^T)
        self.gemm(1.0, W.T, A_prev.T, 1.0, Z.T, 0, 0, 1)
        if not last and self._sigma is not None:
            self._sigma(Z, self.S[l][: Z.shape[0]])

    def output(self, Z, Y, D, loss_out):
        loss_out[0] = self._output(self, Z, Y, D)

    def error(self, l, D, W, A_prev, D_prev):
        # (Δ^l (W^l)^T)^T = W^l (Δ^l)^T, then ⊙ σ'(Z^{l-1})
        self.gemm(1.0, W.T, D.T, 0.0, D_prev.T, 1, 0, 1)
        if self._sigma_prime is not None:
            S = self.S[l - 1][: D_prev.shape[0]]
            np.multiply(D_prev, self._sigma_prime(A_prev, S), out=D_prev)

    def step(self, W, b, A_prev, D, step):
        # W^T ← W^T − step (Δ^l)^T A^{l-1} and b ← b − step (Δ^l)^T 1 (step: a float here)
        self.gemm(-step, D.T, A_prev.T, 1.0, W.T, 0, 1, 1)
        self.gemv(-step, D.T, self.ones[: D.shape[0]], 1.0, b, 0, 1, 0, 1, 0, 1)


# σ in place, Z ← σ(Z) (Z already holds Z^l + b^l), and σ'(Z) read off A = σ(Z) into S;
# ReLU keeps its 0/1 mask in S as it goes. None: the identity, nothing to do.


def _relu(Z, S):
    np.greater(Z, 0, out=S)  # the mask, kept for the backward pass
    np.multiply(Z, S, out=Z)  # max(Z, 0) (−0.0 where Z < 0; NaN stays NaN)


def _sigmoid(Z, S=None):  # 0.5 (1 + tanh(0.5 Z)), as activations.sigmoid
    np.multiply(Z, 0.5, out=Z)
    np.tanh(Z, out=Z)
    np.add(Z, 1, out=Z)
    np.multiply(Z, 0.5, out=Z)


def _tanh_prime(A, S):  # 1 − tanh²(Z) = 1 − A²
    np.multiply(A, A, out=S)
    return np.subtract(1, S, out=S)


def _sigmoid_prime(A, S):  # σ(Z) (1 − σ(Z)) = A (1 − A)
    np.subtract(1, A, out=S)
    return np.multiply(A, S, out=S)


ACTIVATE = {
    "relu": _relu,
    "tanh": lambda Z, S: np.tanh(Z, out=Z),
    "sigmoid": _sigmoid,
    "identity": None,
}
SIGMA_PRIME = {
    "relu": lambda A, S: S,
    "tanh": _tanh_prime,
    "sigmoid": _sigmoid_prime,
    "identity": None,
}


def _softmax_cross_entropy(K, Z, Y, D):
    """J = (1/m_b) Σ_i [logsumexp(Z_i) − Y_i·Z_i] and Δ^L = softmax(Z) − Y, one pass.

    The softmax runs on a transposed copy ``K.ZT`` (C, m_b) of the logits Z (m_b, C): the
    row maxima M and sums of Z become reductions across the C rows of Z^T, which NumPy
    does in long vectorised passes (along rows of only C entries it does not).
    ``K.rows`` (2, B) receives M_i and r_i, the reciprocal of row i's sum of
    exp(Z_i − M_i); logsumexp(Z_i) = M_i − log r_i."""
    mb = Z.shape[0]
    ZT, M, r = K.ZT[:, :mb], K.rows[0, :mb], K.rows[1, :mb]
    yz = np.vdot(Y, Z)
    np.copyto(ZT, Z.T)
    np.maximum.reduce(ZT, axis=0, out=M)
    np.subtract(ZT, M, out=ZT)
    np.exp(ZT, out=ZT)
    np.add.reduce(ZT, axis=0, out=r)
    np.reciprocal(r, out=r)
    np.multiply(ZT, r, out=ZT)  # softmax(Z)^T
    np.subtract(ZT.T, Y, out=D)
    np.log(r, out=r)
    np.subtract(M, r, out=r)
    return (np.vdot(K.ones[:mb], r) - yz) / mb


def _sigmoid_bce(K, Z, Y, D):
    J = get_loss("binary_cross_entropy").value(Z, Y)
    _sigmoid(Z)
    np.subtract(Z, Y, out=D)
    return J


def _squared_error(K, Z, Y, D):
    np.subtract(Z, Y, out=D)
    return 0.5 * np.vdot(D, D) / Z.shape[0]


OUTPUT = {
    "cross_entropy": _softmax_cross_entropy,
    "binary_cross_entropy": _sigmoid_bce,
    "squared_error": _squared_error,
}
