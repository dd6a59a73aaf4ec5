"""Gradient checking with centred finite differences (chapter 3, eq. ``eq-centred-diff``).

∂J/∂θ ≈ (J(θ + ε) − J(θ − ε)) / (2ε), one parameter at a time, in float64 on the CPU.
The error of the centred difference is O(ε²); with ε = 1e-6 in float64 a correct
gradient agrees to a relative error of about 1e-9, a wrong one (a transpose, a missing
1/m) is off by order 1.
"""

from __future__ import annotations

import numpy as np

from .backend import to_numpy
from .batched import backprop, mean_loss
from .params import Params


def relative_error(a, b) -> float:
    """‖a − b‖ / (‖a‖ + ‖b‖): 0 for equal arrays, 1 when one is zero, scale-free."""
    a, b = np.asarray(to_numpy(a), dtype=np.float64), np.asarray(to_numpy(b), dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def numerical_gradient(f, theta: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Centred differences of the scalar function ``f()`` w.r.t. every entry of ``theta``.

    ``theta`` is modified in place while probing and restored afterwards.
    """
    grad = np.zeros_like(theta)
    flat, gflat = theta.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        f_plus = f()
        flat[k] = old - eps
        f_minus = f()
        flat[k] = old
        gflat[k] = (f_plus - f_minus) / (2 * eps)
    return grad


def numerical_gradients(
    X, Y, params: Params, activation="relu", loss="cross_entropy", eps: float = 1e-6
):
    """Finite-difference ``(dW, db)`` of the mean loss J, computed in float64 on the CPU."""
    p = params.to("cpu").astype(np.float64)
    X64 = to_numpy(X).astype(np.float64)
    Y64 = to_numpy(Y).astype(np.float64)

    def J():
        return float(mean_loss(X64, Y64, p, activation, loss))

    dW = {l: numerical_gradient(J, p.W[l], eps) for l in p.layers}
    db = {l: numerical_gradient(J, p.b[l], eps) for l in p.layers}
    return dW, db


def gradient_errors(
    X, Y, params: Params, activation="relu", loss="cross_entropy", grads=None, eps: float = 1e-6
) -> dict:
    """Relative error of each analytic gradient against finite differences.

    ``grads`` is a ``(dW, db)`` pair to check; by default the batched backprop's, in
    float64. Returns ``{'W1': err, 'b1': err, ...}``.
    """
    if grads is None:
        p = params.to("cpu").astype(np.float64)
        grads = backprop(
            to_numpy(X).astype(np.float64), to_numpy(Y).astype(np.float64), p, activation, loss
        )
    dW, db = grads
    num_dW, num_db = numerical_gradients(X, Y, params, activation, loss, eps)
    errors = {}
    for l in params.layers:
        errors[f"W{l}"] = relative_error(dW[l], num_dW[l])
        errors[f"b{l}"] = relative_error(db[l], num_db[l])
    return errors


def gradients_agree(errors: dict, tol: float = 1e-7) -> bool:
    """True when every relative error is below ``tol``."""
    return max(errors.values()) < tol
