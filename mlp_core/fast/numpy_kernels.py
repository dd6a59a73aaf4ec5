"""The fast epoch's kernels on NumPy: every operation writes into a preallocated buffer."""

from __future__ import annotations

import numpy as np

from ..core.losses import get_loss


class NumpyKernels:
    """:class:`~.kernels.Kernels` on the CPU, for one activation and loss and one set of
    shapes. ReLU keeps its mask Z^l > 0 from the forward pass (``mask[l]``); tanh and
    sigmoid form σ'(Z^l) from A^l in a scratch buffer (``T[l]``)."""

    def __init__(self, sizes, rows: int, dtype, activation: str, loss: str):
        L = len(sizes) - 1
        self.activation, self.loss = activation, loss
        hidden = range(1, L)
        self.mask = (
            {l: np.empty((rows, sizes[l]), bool) for l in hidden} if activation == "relu" else {}
        )
        self.T = (
            {l: np.empty((rows, sizes[l]), dtype) for l in hidden}
            if activation in ("tanh", "sigmoid")
            else {}
        )
        self.ones = np.ones(rows, dtype)
        self._output = _OUTPUT[loss]

    def take_rows(self, X, order, out):
        """out ← X[order]. With every index in range, ``mode='clip'`` lets NumPy write
        straight into ``out`` (its default mode gathers into a temporary first, ~2.5×
        slower); otherwise NumPy's own rules (negative indices, errors) apply."""
        order = np.asarray(order)
        if order.size and (order.min() < 0 or order.max() >= X.shape[0]):
            np.take(X, order, axis=0, out=out)
        else:
            np.take(X, order, axis=0, out=out, mode="clip")

    def matmul(self, a, b, out):
        np.matmul(a, b, out=out)

    def bias_act(self, l, b, Z):
        np.add(Z, b, out=Z)
        _activate(self.activation, Z, self.mask.get(l))

    def bias_add(self, b, Z):
        np.add(Z, b, out=Z)

    def output(self, Z, Y, D, loss_out):
        loss_out[0] = self._output(Z, Y, D)

    def derivative(self, l, A, D):
        mb, act = A.shape[0], self.activation
        if act == "relu":
            np.multiply(D, self.mask[l][:mb], out=D)
        elif act == "tanh":  # 1 − tanh²(Z)
            S = self.T[l][:mb]
            np.multiply(A, A, out=S)
            np.subtract(1, S, out=S)
            np.multiply(D, S, out=D)
        elif act == "sigmoid":  # σ(Z) (1 − σ(Z))
            S = self.T[l][:mb]
            np.subtract(1, A, out=S)
            np.multiply(A, S, out=S)
            np.multiply(D, S, out=D)

    def bias_grad(self, D, out):
        np.matmul(self.ones[: D.shape[0]], D, out=out)  # 1^T Δ: a gemv, ~3× sum(axis=0)

    def sgd(self, w, g, step):
        np.multiply(g, step, out=g)
        np.subtract(w, g, out=w)


def _activate(act, Z, mask):
    """Z ← σ(Z) in place (Z already holds Z^l + b^l); ReLU keeps its mask."""
    if act == "relu":
        M = mask[: Z.shape[0]]
        np.greater(Z, 0, out=M)  # the mask, kept for the backward pass
        np.multiply(Z, M, out=Z)  # max(Z, 0) (−0.0 where Z < 0; same products)
    elif act == "tanh":
        np.tanh(Z, out=Z)
    elif act == "sigmoid":  # 0.5 (1 + tanh(0.5 Z)), as activations.sigmoid
        np.multiply(Z, 0.5, out=Z)
        np.tanh(Z, out=Z)
        np.add(Z, 1, out=Z)
        np.multiply(Z, 0.5, out=Z)
    # identity: nothing to do


def _softmax_cross_entropy(Z, Y, D):
    """J = (1/m_b) Σ_i [logsumexp(Z_i) − Y_i·Z_i] and Δ^L = softmax(Z) − Y, one pass.

    Z (m_b, C) is overwritten with softmax(Z); returns J."""
    mb = Z.shape[0]
    yz = np.vdot(Y, Z)
    M = Z.max(axis=1, keepdims=True)
    np.subtract(Z, M, out=Z)
    np.exp(Z, out=Z)
    s = Z.sum(axis=1, keepdims=True)
    J = ((np.log(s) + M).sum() - yz) / mb
    np.divide(Z, s, out=Z)
    np.subtract(Z, Y, out=D)
    return J


def _sigmoid_bce(Z, Y, D):
    J = get_loss("binary_cross_entropy").value(Z, Y)
    _activate("sigmoid", Z, None)
    np.subtract(Z, Y, out=D)
    return J


def _squared_error(Z, Y, D):
    np.subtract(Z, Y, out=D)
    return 0.5 * np.vdot(D, D) / Z.shape[0]


_OUTPUT = {
    "cross_entropy": _softmax_cross_entropy,
    "binary_cross_entropy": _sigmoid_bce,
    "squared_error": _squared_error,
}
