"""Shape checks whose errors teach.

Each check compares an array with the book's notation and, when it does not fit, says
which matrix is wrong, what shape it should have, what it has, and the likely fix
("W2 has shape (10, 64) but layer 2 maps 64 → 10, so W2 must be (64, 10): did you
transpose it?"). The checks look only at shapes and dtypes, so they cost nothing next to
the matrix products they guard.
"""

from __future__ import annotations

import numbers

from .backend import get_xp
from .errors import DataError, LabelError, ShapeError


def _shape(a) -> tuple:
    return tuple(getattr(a, "shape", ()))


def check_params(params) -> None:
    """W[l] is (h_{l-1}, h_l) and b[l] is (h_l,) for l = 1..L, and the layers chain."""
    W, b = params.W, params.b
    L = len(W)
    if L == 0:
        raise ShapeError(
            "W is empty: a network needs at least W[1], of shape (n, h_1) "
            "(init_params((n, h_1, ..., C)) builds one)."
        )
    if sorted(W) != list(range(1, L + 1)) or sorted(b) != list(range(1, L + 1)):
        raise ShapeError(
            f"W and b must be keyed by the layers 1..L as in the book; got W keys "
            f"{sorted(W)} and b keys {sorted(b)}. Layer 0 is the input X and has no weights."
        )
    h_prev = W[1].shape[0] if getattr(W[1], "ndim", 0) == 2 else None
    for l in range(1, L + 1):
        w, bias = W[l], b[l]
        if getattr(w, "ndim", 0) != 2:
            raise ShapeError(f"W{l} must be a matrix (h_{l - 1}, h_{l}); got shape {_shape(w)}.")
        h_in, h_out = w.shape
        if h_in != h_prev:
            hint = (
                f"; did you transpose it? W{l}.T has shape ({h_prev}, {h_in})"
                if h_out == h_prev
                else f"; layer {l - 1} has {h_prev} units, so W{l} needs {h_prev} rows."
            )
            raise ShapeError(
                f"W{l} has shape {w.shape} but layer {l} takes the {h_prev} outputs of "
                f"layer {l - 1}, so W{l} must be ({h_prev}, h_{l}) (rows index the "
                f"previous layer's units){hint}"
            )
        if _shape(bias) != (h_out,):
            if _shape(bias) in ((h_out, 1), (1, h_out)):
                fix = f"store it flat: b{l} = b{l}.reshape({h_out})"
            elif _shape(bias) == (h_in,):
                fix = (
                    f"if b{l} is right, layer {l} has {h_in} units and W{l} is "
                    f"transposed: it must be ({h_out}, {h_in}), pass W{l}.T "
                    "(rows index the previous layer's units)"
                )
            else:
                fix = f"b{l} needs one entry per unit of layer {l}"
            raise ShapeError(
                f"b{l} has shape {_shape(bias)} but W{l} is {w.shape}, so layer {l} has "
                f"{h_out} units and b{l} must have shape ({h_out},); {fix}."
            )
        if w.dtype != bias.dtype or w.dtype != W[1].dtype:
            raise ShapeError(
                f"W{l} is {w.dtype} and b{l} is {bias.dtype} while W1 is {W[1].dtype}: "
                "use one dtype for all parameters (params.astype(np.float32), say)."
            )
        h_prev = h_out


def check_X(X, n: int | None = None, name: str = "X") -> None:
    """X is an (m, n) floating-point matrix with m ≥ 1 (shapes and dtype only).

    ``n`` is the first layer's width h_0; ``None`` skips the feature count.
    """
    if not hasattr(X, "ndim") or not hasattr(X, "dtype"):
        raise DataError(
            f"{name} must be a NumPy or CuPy array of shape (m, n); found "
            f"{type(X).__name__}. Fix: {name} = np.asarray({name}, dtype=np.float64)."
        )
    shape = _shape(X)
    if len(shape) == 1:
        k = shape[0]
        raise ShapeError(
            f"{name} must be 2-D (m, n), one example per row; found a 1-D array of shape "
            f"({k},). For one example with n = {k} features use {name}.reshape(1, -1) "
            f"(shape (1, {k})); for {k} examples of one feature use {name}.reshape(-1, 1)."
        )
    if len(shape) != 2:
        raise ShapeError(
            f"{name} must be 2-D (m, n), one example per row; found {len(shape)}-D shape "
            f"{shape}. For images of shape (m, rows, cols) use {name}.reshape(len({name}), -1)."
        )
    m, cols = shape
    if m == 0:
        raise DataError(
            f"{name} is empty: shape {shape} has m = 0 examples; there is "
            "nothing to train on or predict."
        )
    if n is not None and cols != n:
        hint = (
            f" It looks transposed: pass {name}.T, examples as rows."
            if m == n
            else f" The network was built for n = {n} features (W1 has {n} rows)."
        )
        raise ShapeError(
            f"{name} has {cols} features (shape {shape}) but the first layer expects "
            f"n = h_0 = {n}.{hint}"
        )
    if X.dtype.kind in "iub":
        raise DataError(
            f"{name} has integer dtype {X.dtype}; the network computes in floating point, "
            f"and integer pixels silently truncate the updates. Fix: "
            f"{name} = {name}.astype(np.float64) (or np.float32), scaled to [0, 1]."
        )
    if X.dtype.kind != "f":
        raise DataError(
            f"{name} has dtype {X.dtype}; expected a real floating-point type "
            "(np.float64 or np.float32)."
        )


def check_Y(Y, m: int, C: int, name: str = "Y") -> None:
    """Y is the (m, C) target matrix: one-hot rows for a classifier.

    Catches labels passed where one-hot rows are expected, and a (m,) target next to an
    (m, 1) output, which NumPy would silently broadcast to an (m, m) error matrix.
    """
    shape = _shape(Y)
    if len(shape) == 1 and shape[0] == m:
        if C == 1:
            raise ShapeError(
                f"{name} has shape ({m},) but A^L is ({m}, 1): A^L − {name} would broadcast "
                f"to an ({m}, {m}) matrix and silently give wrong gradients. Use "
                f"{name}.reshape(-1, 1)."
            )
        raise LabelError(
            f"{name} has shape ({m},): it looks like class labels, but one-hot rows of "
            f"shape ({m}, {C}) are expected. Convert with mlp_core.data.one_hot(labels, C={C})."
        )
    if shape != (m, C):
        if len(shape) == 2 and shape == (C, m):
            fix = f" It looks transposed: pass {name}.T (one row per example)."
        else:
            fix = f" Row i is the target for example i; the last layer has C = {C} units."
        raise ShapeError(f"{name} must have shape (m, C) = ({m}, {C}); got {shape}.{fix}")
    if Y.dtype.kind not in "f":
        raise DataError(
            f"{name} has dtype {Y.dtype}; use a floating-point target, e.g. "
            f"{name}.astype(np.float32)."
        )


def check_same_dtype(X, params, name: str = "X") -> None:
    """X and the parameters share a dtype, so float32 stays float32 (no silent upcast)."""
    if X.dtype != params.dtype:
        raise DataError(
            f"{name} is {X.dtype} but the parameters are {params.dtype}; NumPy would "
            f"silently compute in the wider type. Cast one: {name} = {name}.astype("
            f"params.dtype) or params = params.astype({name}.dtype)."
        )


def check_column(v, rows: int, name: str) -> None:
    """One example as a column vector of shape (rows, 1) (the book's left column)."""
    if _shape(v) != (rows, 1):
        fix = (
            f"use {name}.reshape(-1, 1)"
            if _shape(v) in ((rows,), (1, rows))
            else f"{name} must have {rows} entries"
        )
        raise ShapeError(
            f"{name} must be a column vector of shape ({rows}, 1); got {_shape(v)}: {fix}."
        )


def check_finite(X, name: str = "X") -> None:
    """No NaN or Inf in X (they would poison every gradient after one step)."""
    xp = get_xp(X)
    bad = ~xp.isfinite(X)
    count = int(bad.sum())
    if count:
        row = int(xp.argmax(bad.any(axis=1))) if X.ndim == 2 else int(xp.argmax(bad))
        raise DataError(
            f"{name} contains {count} NaN or Inf value(s), the first in row {row}; remove "
            f"or impute them (e.g. {name}[~np.isfinite({name})] = 0) before training."
        )


def whole_number(value) -> int | None:
    """``value`` as an int if it is a whole number (3, 3.0, np.int64(3)), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if not float(value).is_integer():  # also False for NaN and ±Inf
        return None
    return int(value)
