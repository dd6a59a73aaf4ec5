"""Gradient checking with centred finite differences (chapter 3, eq. ``eq-centred-diff``).

∂J/∂θ ≈ (J(θ + ε) − J(θ − ε)) / (2ε), one parameter at a time, in float64 on the CPU.
The error of the centred difference is O(ε²); with ε = 1e-6 in float64 a correct
gradient agrees to a relative error of about 1e-9, a wrong one (a transpose, a missing
1/m) is off by order 1.
"""

from __future__ import annotations

import numpy as np

from .backend import to_numpy
from .batched import backprop, cache_loss, forward
from .errors import DataError, ShapeError
from .losses import get_loss
from .params import Params
from .validate import check_batch, check_plain, check_real, check_same_shape


def relative_error(a, b) -> float:
    """‖a − b‖ / (‖a‖ + ‖b‖) for two arrays of one shape: 0 for equal arrays, 1 when one
    is zero, scale-free. Arrays of different shapes are refused (no broadcasting)."""
    try:
        a, b = (x if hasattr(x, "shape") else np.asarray(x) for x in (a, b))
    except ValueError as exc:  # a ragged list
        raise DataError(f"a and b must be arrays of one shape ({exc}).") from None
    check_same_shape(a, b, "a", "b")
    for name, x in (("a", a), ("b", b)):
        check_plain(x, name)
        if x.dtype.kind not in "biuf":
            raise DataError(f"{name} must hold real numbers; found dtype {x.dtype}.")
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


def gradient_errors(
    X, Y, params: Params, activation="relu", loss="cross_entropy", grads=None, eps: float = 1e-6
) -> dict:
    """Relative error of each analytic gradient against finite differences.

    Parameters
    ----------
    X : array, shape (m, n)
    Y : array, shape (m, C)
    params : Params
    activation, loss : str or object
    grads : (dW, db), optional
        The gradients to check, dicts keyed 1..L of the shapes of W[l] (h_{l-1}, h_l) and
        b[l] (h_l,); by default the batched backprop's, in float64. A missing layer or a
        gradient of another shape (a transpose, a column) is refused with a ShapeError.
    eps : float
        The step ε of the centred difference.

    Returns
    -------
    dict
        ``{'W1': err, 'b1': err, ...}``, each a :func:`relative_error`.
    """
    check_batch(X, params, Y, targets=get_loss(loss).targets)
    check_real(eps, "eps (the step ε of the centred difference)", above=0, example="e.g. eps=1e-6")
    X64, Y64 = (to_numpy(a).astype(np.float64) for a in (X, Y))
    p = params.to("cpu").astype(np.float64)
    if grads is not None:
        _check_grads(grads, params)
    dW, db = grads or backprop(X64, Y64, p, activation, loss, check=False)

    def J():
        return float(cache_loss(forward(X64, p, activation, loss, check=False), Y64, loss))

    errors = {}
    for l in params.layers:
        errors[f"W{l}"] = relative_error(dW[l], numerical_gradient(J, p.W[l], eps))
        errors[f"b{l}"] = relative_error(db[l], numerical_gradient(J, p.b[l], eps))
    return errors


def _check_grads(grads, params: Params) -> None:
    """``grads`` is a pair (dW, db) of dicts with the layers' keys and the parameters' shapes."""
    if not (isinstance(grads, (tuple, list)) and len(grads) == 2):
        raise ShapeError(
            f"grads must be a pair (dW, db), as backprop returns; found {type(grads).__name__}."
        )
    for name, g, ref in (("dW", grads[0], params.W), ("db", grads[1], params.b)):
        if not isinstance(g, dict):
            raise ShapeError(
                f"{name} must be a dict keyed by layer 1..L; found {type(g).__name__}."
            )
        missing = [l for l in params.layers if l not in g]
        if missing:
            raise ShapeError(
                f"{name} has no entry for layer(s) {missing}; it needs one per layer 1..{params.L} "
                f"(found keys {sorted(g, key=repr)})."
            )
        for l in params.layers:
            check_same_shape(ref[l], g[l], f"{name[1]}{l}", f"{name}[{l}]")


def gradients_agree(errors: dict, tol: float = 1e-7) -> bool:
    """True when every relative error is below ``tol``."""
    return max(errors.values()) < tol
