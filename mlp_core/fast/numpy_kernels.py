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

from ..core.errors import ConfigError
from ..core.losses import get_loss


def blas_routines(dtype):
    """SciPy's (gemm, gemv) for ``dtype`` (sgemm/sgemv or dgemm/dgemv)."""
    return blas.get_blas_funcs(("gemm", "gemv"), dtype=np.dtype(dtype))


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
    gemm = blas_routines(dtype)[0]

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

    Hidden layers keep the derivative σ'(Z^l) for the backward pass as they go
    (``S[l]``: ReLU's 0/1 mask in the array's own dtype, a multiply of the same type being
    the cheapest pass; tanh and sigmoid read it off A^l when it is needed)."""

    def __init__(self, sizes, slices, dtype, activation: str, loss: str):
        L, rows, m = len(sizes) - 1, max(b - a for a, b in slices), slices[-1][1]
        self.activation, self.loss = activation, loss
        self._sigma, self._sigma_prime = ACTIVATE[activation], SIGMA_PRIME[activation]
        self.S = {l: np.empty((rows, sizes[l]), dtype) for l in range(1, L)}
        self.ones = np.ones(rows, dtype)
        self.gemm, self.gemv = blas_routines(dtype)
        self._output = OUTPUT[loss]
        self.calls = []  # (function, arguments), in the order of the epoch
        self._batches_recorded = 0
        self._step, self._minus_step = None, np.empty((), dtype)
        # cross-entropy: the transposed logits, and what each batch's J needs (M_i, s_i
        # per row, Σ Y·Z per batch), turned into J by finish() after the epoch
        self.ZT = np.empty((sizes[-1], rows), dtype)
        self.terms = np.empty((2, m), dtype)
        self.yz = np.empty(len(slices), dtype)
        self.starts = np.array([a for a, _ in slices])
        self.batch_rows = np.array([b - a for a, b in slices], dtype)

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
        self.calls, self._batches_recorded = [], 0
        try:
            epoch()
        except BaseException:
            self.calls = []
            raise

    def replay(self, losses):
        """Make every recorded call, in order (one epoch), then write each batch's J
        into ``losses``."""
        np.negative(self._step, out=self._minus_step)
        make_calls(self.calls)
        self.finish(losses)

    def finish(self, losses):
        """Cross-entropy: every batch's J = (1/m_b) Σ_i [M_i + log s_i − Y_i·Z_i] at once
        (the other losses wrote theirs as they went)."""
        if self.loss != "cross_entropy":
            return
        M, s = self.terms
        np.log(s, out=s)
        np.add(M, s, out=s)  # logsumexp(Z_i), row by row
        np.add.reduceat(s, self.starts, out=losses)
        np.subtract(losses, self.yz, out=losses)
        np.divide(losses, self.batch_rows, out=losses)

    # The BLAS calls pass their arguments by position (SciPy's keyword parsing costs as
    # much as a small product): gemm(α, a, b, β, c, trans_a, trans_b, overwrite_c) and
    # gemv(α, a, x, β, y, offx, incx, offy, incy, trans, overwrite_y).

    def layer(self, l, A_prev, W, b, Z, last):
        self.calls += [
            (np.copyto, (Z, b)),  # then Z ← A^{l-1} W^l + Z: one GEMM with β = 1
            (self.gemm, (1.0, W.T, A_prev.T, 1.0, Z.T, 0, 0, 1)),  # (Z^T = W^T A^T + Z^T)
        ]
        if not last and self._sigma is not None:
            self.calls += self._sigma(Z, self.S[l][: Z.shape[0]])

    def output(self, Z, Y, D, loss_out):
        k = self._batches_recorded
        self._batches_recorded += 1
        self.calls += self._output(self, k, Z, Y, D, loss_out)

    def error(self, l, D, W, A_prev, D_prev):
        # (Δ^l (W^l)^T)^T = W^l (Δ^l)^T, then ⊙ σ'(Z^{l-1})
        self.calls.append((self.gemm, (1.0, W.T, D.T, 0.0, D_prev.T, 1, 0, 1)))
        if self._sigma_prime is not None:
            S = self.S[l - 1][: D_prev.shape[0]]
            self.calls += self._sigma_prime(A_prev, S)
            self.calls.append((np.multiply, (D_prev, S, D_prev)))

    def step(self, W, b, A_prev, D, step):
        # W^T ← W^T − step (Δ^l)^T A^{l-1} and b ← b − step (Δ^l)^T 1, with −step read
        # at the time of the call from the 0-d array ``_minus_step`` (−η/B)
        self._step, s = step, self._minus_step
        self.calls += [
            (self.gemm, (s, D.T, A_prev.T, 1.0, W.T, 0, 1, 1)),
            (self.gemv, (s, D.T, self.ones[: D.shape[0]], 1.0, b, 0, 1, 0, 1, 0, 1)),
        ]


# Each activation's calls, as (function, arguments) lists: σ in place, Z ← σ(Z) (Z already
# holds Z^l + b^l), and σ'(Z) read off A = σ(Z) into S; ReLU keeps its 0/1 mask in S as
# it goes. None: the identity, nothing to do. A ufunc's third positional argument is
# its ``out``.


def _relu(Z, S):
    return [
        (np.greater, (Z, 0, S)),  # the mask, kept for the backward pass
        (np.multiply, (Z, S, Z)),  # max(Z, 0) (−0.0 where Z < 0; NaN stays NaN)
    ]


def _sigmoid(Z, S=None):  # 0.5 (1 + tanh(0.5 Z)), as activations.sigmoid
    return [
        (np.multiply, (Z, 0.5, Z)),
        (np.tanh, (Z, Z)),
        (np.add, (Z, 1, Z)),
        (np.multiply, (Z, 0.5, Z)),
    ]


def _tanh_prime(A, S):  # 1 − tanh²(Z) = 1 − A²
    return [(np.multiply, (A, A, S)), (np.subtract, (1, S, S))]


def _sigmoid_prime(A, S):  # σ(Z) (1 − σ(Z)) = A (1 − A)
    return [(np.subtract, (1, A, S)), (np.multiply, (A, S, S))]


ACTIVATE = {
    "relu": _relu,
    "tanh": lambda Z, S: [(np.tanh, (Z, Z))],
    "sigmoid": _sigmoid,
    "identity": None,
}
SIGMA_PRIME = {
    "relu": lambda A, S: [],  # S holds the mask already
    "tanh": _tanh_prime,
    "sigmoid": _sigmoid_prime,
    "identity": None,
}


# Each loss's calls for one batch, given the kernels K, the batch's index k and its
# Z = Z^L (m_b, C), Y, D (Δ^L) and ``loss_out`` (losses[k : k + 1]).


def _softmax_cross_entropy(K, k, Z, Y, D, loss_out):
    """Δ^L = softmax(Z) − Y, and what the batch's J needs, in eight calls; J itself,
    (1/m_b) Σ_i [logsumexp(Z_i) − Y_i·Z_i], is formed for every batch at once after the
    epoch (:meth:`NumpyKernels.finish`) from the rows' M_i (the row's maximum) and s_i
    (its sum of exp(Z_i − M_i)): logsumexp(Z_i) = M_i + log s_i.

    The softmax runs on a transposed copy ``K.ZT`` (C, m_b) of the logits Z (m_b, C): the
    row maxima and sums of Z become reductions across the C rows of Z^T, which NumPy does
    in long vectorised passes (along rows of only C entries it does not)."""
    mb, start = Z.shape[0], K.starts[k]
    ZT, M, s = K.ZT[:, :mb], K.terms[0, start : start + mb], K.terms[1, start : start + mb]
    return [
        (np.dot, (Y.reshape(-1), Z.reshape(-1), K.yz[k : k + 1].reshape(()))),  # Σ_i Y_i·Z_i
        (np.copyto, (ZT, Z.T)),
        (np.maximum.reduce, (ZT, 0, None, M)),
        (np.subtract, (ZT, M, ZT)),
        (np.exp, (ZT, ZT)),
        (np.add.reduce, (ZT, 0, None, s)),
        (np.divide, (ZT, s, ZT)),  # softmax(Z)^T
        (np.subtract, (ZT.T, Y, D)),
    ]


def _sigmoid_bce(K, k, Z, Y, D, loss_out):
    # J from the logits first (softplus, which never overflows), then Z ← σ(Z), Δ^L = σ − Y
    return [(_bce_into, (Z, Y, loss_out)), *_sigmoid(Z), (np.subtract, (Z, Y, D))]


def _bce_into(Z, Y, loss_out):
    loss_out[0] = get_loss("binary_cross_entropy").value(Z, Y)


def _squared_error(K, k, Z, Y, D, loss_out):
    return [(np.subtract, (Z, Y, D)), (_half_mean_square, (D, loss_out))]


def _half_mean_square(D, loss_out):
    loss_out[0] = 0.5 * np.vdot(D, D) / D.shape[0]


OUTPUT = {
    "cross_entropy": _softmax_cross_entropy,
    "binary_cross_entropy": _sigmoid_bce,
    "squared_error": _squared_error,
}
