"""Every shape, dtype, key, one-hot, finiteness and whole-number rule, and its message.

Each check compares an array with the book's notation and, when it does not fit, says
which matrix is wrong, what shape it should have, what it has, and the likely fix
("W2 has shape (10, 64) but layer 2 maps 64 → 10, so W2 must be (64, 10): did you
transpose it?"). The shape and dtype checks cost nothing next to the matrix products they guard; the
finiteness checks read every entry once.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import operator
import os
from collections.abc import Mapping

import numpy as np

from .backend import device_of, get_xp
from .errors import ConfigError, DataError, LabelError, ParamsError, ShapeError

#: How a Params is made; every refusal of a wrong container ends with it.
MAKE_PARAMS = (
    "A Params holds two dicts keyed by the layers 1..L, W[l] of shape (h_{l-1}, h_l) and "
    "b[l] of shape (h_l,), NumPy or CuPy arrays: build one with "
    "mc.init_params((n, h_1, ..., C)), or wrap your arrays with "
    "mc.Params({1: W1, 2: W2}, {1: b1, 2: b2})."
)


def _shape(a) -> tuple:
    return tuple(getattr(a, "shape", ()))


def _is_array(a) -> bool:
    return hasattr(a, "ndim") and hasattr(a, "dtype") and hasattr(a, "shape")


def check_plain(a, name: str) -> None:
    """Refuse NumPy's matrix and masked-array subclasses, which the formulas would get wrong
    (a matrix's rows stay 2-D and it has no ``keepdims``; a mask is silently ignored)."""
    if isinstance(a, np.matrix):
        raise DataError(
            f"{name} is a numpy.matrix; the library computes with plain arrays (a matrix's "
            f"rows stay 2-D and its reductions differ). Fix: {name} = np.asarray({name})."
        )
    if isinstance(a, np.ma.MaskedArray):
        raise DataError(
            f"{name} is a masked array; the formulas would use the values under its mask. "
            f"Fix: decide what a masked entry means, then pass a plain array, e.g. "
            f"{name} = {name}.filled(0.0)."
        )


def check_array(a, name: str, shape: str, error=DataError, also: str = "") -> None:
    """``a`` is a plain NumPy or CuPy array (not a list, a matrix or a masked array)."""
    if not _is_array(a):
        raise error(
            f"{name} must be a NumPy or CuPy array of shape {shape}; found "
            f"{type(a).__name__}. Fix: {name} = np.asarray({name}, dtype=np.float64).{also}"
        )
    check_plain(a, name)


def check_layer_keys(W, b) -> int:
    """W and b are dicts with the same keys, the layers 1..L; returns L."""
    for name, d in (("W", W), ("b", b)):
        if not isinstance(d, Mapping):
            raise ParamsError(
                f"{name} must be a dict keyed by layer index 1..L ({name}[1], {name}[2], ...); "
                f"found {type(d).__name__}. {MAKE_PARAMS}"
            )
    if not W:
        raise ShapeError(
            "W is empty: a network needs at least W[1], of shape (n, h_1) "
            "(init_params((n, h_1, ..., C)) builds one)."
        )
    keys_W, keys_b = set(W), set(b)
    if not all(
        isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys_W | keys_b
    ):
        raise ShapeError(
            f"W and b must be keyed by integer layer indices 1..L; found keys "
            f"W: {sorted(map(repr, keys_W))}, b: {sorted(map(repr, keys_b))}."
        )
    L = len(keys_W)
    expected = set(range(1, L + 1))
    if keys_W != expected:
        hint = (
            " Layer indices start at 1 as in the book: W[1] maps h_0 = n to h_1. "
            "Layer 0 is the input X and has no weights."
            if 0 in keys_W
            else ""
        )
        raise ShapeError(
            f"W must be keyed by the layers 1..L as in the book; found keys "
            f"{sorted(int(k) for k in keys_W)}, expected {sorted(expected)}.{hint}"
        )
    if keys_b != expected:
        missing = sorted(expected - keys_b)
        extra = sorted(int(k) for k in keys_b - expected)
        raise ShapeError(
            f"b must have the same keys as W, 1..{L}; missing {missing}, unexpected {extra}."
        )
    return L


def check_params(params) -> None:
    """W[l] is (h_{l-1}, h_l) and b[l] is (h_l,) for l = 1..L, and the layers chain.

    ``params`` must be a :class:`~mlp_core.params.Params` (anything with dicts ``W`` and
    ``b``) of floating-point arrays; a tuple ``(W, b)`` or lists are refused with a
    :class:`ParamsError` that says how to make one.
    """
    if not (hasattr(params, "W") and hasattr(params, "b")):
        raise ParamsError(
            f"params must be a Params, found {type(params).__name__}"
            + (" (a (W, b) pair?)" if isinstance(params, (tuple, list)) else "")
            + f". {MAKE_PARAMS}"
        )
    W, b = params.W, params.b
    L = check_layer_keys(W, b)
    for l in range(1, L + 1):
        for name, a, shape in (
            (f"W{l}", W[l], f"(h_{l - 1}, h_{l})"),
            (f"b{l}", b[l], f"(h_{l},)"),
        ):
            check_array(a, name, shape, ParamsError, f" {MAKE_PARAMS}")
            if a.dtype.kind != "f":
                raise DataError(
                    f"{name} has dtype {a.dtype}; the parameters must be floating point "
                    f"(np.float64 or np.float32). Fix: params = params.astype(np.float64)."
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
    check_array(X, name, "(m, n)")
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
    check_array(Y, name, "(m, C)")
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
    """X and the parameters share a dtype, so float32 stays float32 (no silent upcast),
    and a device: NumPy arrays with NumPy parameters, CuPy arrays with CuPy parameters."""
    if X.dtype != params.dtype:
        raise DataError(
            f"{name} is {X.dtype} but the parameters are {params.dtype}; NumPy would "
            f"silently compute in the wider type. Cast one: {name} = {name}.astype("
            f"params.dtype) or params = params.astype({name}.dtype)."
        )
    here, there = device_of(X), device_of(params.W[1])
    if here != there:
        raise DataError(
            f"{name} is on the {here} but the parameters are on the {there}; one computation "
            f"runs on one device. Move one: {name} = mc.to_device({name}, params.device), "
            f"or params = params.to({here!r})."
        )


def check_column(v, rows: int, name: str) -> None:
    """One example as a column vector of shape (rows, 1) (the book's left column)."""
    check_plain(v, name)
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


def check_finite_params(params) -> None:
    """No NaN or Inf in any W[l] or b[l] (diverged or corrupt parameters)."""
    for l in range(1, len(params.W) + 1):
        for name, a in ((f"W{l}", params.W[l]), (f"b{l}", params.b[l])):
            count = int((~get_xp(a).isfinite(a)).sum())
            if count:
                raise DataError(
                    f"{name} contains {count} NaN or Inf value(s): these parameters are bad "
                    f"input (diverged or corrupt), not something a smaller step can fix. "
                    f"Start again from mc.init_params(sizes), or from a saved file."
                )


def check_batch(X, params, Y=None, name_X: str = "X", name_Y: str = "Y", targets=None):
    """The parameters, X (m, n) and Y (m, C) agree in shape, dtype and device, and are finite.

    Parameters
    ----------
    X : array, shape (m, n)
        The batch, one example per row (A^0).
    params : Params
        W[l] (h_{l-1}, h_l) and b[l] (h_l,), l = 1..L; n = h_0 and C = h_L.
    Y : array, shape (m, C), optional
        The targets; not checked when None (a forward pass needs none).
    name_X, name_Y : str
        The names the messages use (``"X_val"`` for a held-out set, say).
    targets : callable, optional
        The loss's rule for its targets, ``targets(Y, name_Y)``
        (:attr:`mlp_core.losses.Loss.targets`: rows that are distributions for
        cross-entropy, say).
    """
    check_params(params)
    _check_rows(X, params, Y, name_X, name_Y, targets)


def _check_rows(X, params, Y, name_X, name_Y, targets) -> None:
    check_X(X, params.sizes[0], name_X)
    check_same_dtype(X, params, name_X)
    check_finite_params(params)
    check_finite(X, name_X)
    if Y is not None:
        check_targets(Y, params, X.shape[0], name_Y, targets)


def check_targets(Y, params, m: int, name: str = "Y", targets=None):
    """Y is the (m, C) target matrix of checked parameters: its shape, dtype and device,
    no NaN or Inf, and the loss's rule ``targets(Y, name)`` if given."""
    check_Y(Y, m, params.sizes[-1], name)
    check_same_dtype(Y, params, name)
    check_finite(Y, name)
    if targets is not None:
        targets(Y, name)


def check_example(x, params, y=None, targets=None) -> None:
    """One example as :func:`check_batch` checks a batch (of one row, x^T and y^T): x (n, 1)
    and y (C, 1) are columns that fit the parameters, share their dtype and device, and
    are finite; ``targets`` is the loss's rule for y."""
    check_params(params)
    check_column(x, params.sizes[0], "x")
    if y is not None:
        check_column(y, params.sizes[-1], "y")
    _check_rows(x.T, params, None if y is None else y.T, "x", "y", targets)


def is_one_hot(Y) -> bool:
    """True when Y is a non-empty (m, C) matrix whose every row is one-hot (zeros and a 1)."""
    if getattr(Y, "ndim", 0) != 2 or Y.size == 0:
        return False
    xp = get_xp(Y)
    return bool(xp.all((Y == 0) | (Y == 1)) and xp.all(Y.sum(axis=1) == 1))


#: The largest seed: every consumer of a seed (NumPy's generators, scikit-learn's
#: ``random_state`` in the stratified split) accepts 0 … 2**32 − 1.
MAX_SEED = 2**32 - 1


def check_whole(value, name: str, at_least: int = 1, at_most: int | None = None, example=""):
    """``value`` as an int in [at_least, at_most] (3, 3.0 and np.int64(3) are whole
    numbers; True, 2.5, "3", NaN are not), else a ConfigError naming ``name``.

    The one home of "a whole number ≥ k": batch sizes, epochs, layer widths, sample
    counts, class counts and the CLI's options all pass through here.
    """
    k = whole_number(value)
    if k is None or k < at_least or (at_most is not None and k > at_most):
        bound = f"≥ {at_least}" if at_most is None else f"in {at_least} … {at_most}"
        raise ConfigError(
            f"{name} must be a whole number {bound}, got {value!r}."
            + (f" {example}" if example else "")
        )
    return k


def check_seed(seed, name: str = "seed"):
    """A seed: a whole number in 0 … 2**32 − 1 (returned as an int), None, or a NumPy
    Generator or SeedSequence (returned as they are)."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return seed
    why = f"Or None for a fresh random start; e.g. {name}=0 (the same seed gives the same run)."
    return check_whole(seed, name, 0, MAX_SEED, why)


_COMPARE = {">": operator.gt, "≥": operator.ge, "<": operator.lt}


def check_real(value, name: str, *, above=None, at_least=None, below=None, example="") -> float:
    """``value`` as a float if it is a finite real number (0.5, 3, np.float32(2); not True,
    "0.5", NaN or ±Inf) with value > ``above``, value ≥ ``at_least`` and value < ``below``
    where given, else a ConfigError naming ``name``.

    The one home of "a number in a range": the learning rate, the held-out fraction, the
    noise of the toy data sets, the step of the centred difference.
    """
    bounds = [
        (s, limit)
        for s, limit in ((">", above), ("≥", at_least), ("<", below))
        if limit is not None
    ]
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (real and all(_COMPARE[s](value, limit) for s, limit in bounds)):
        bound = " and ".join(f"{s} {limit:g}" for s, limit in bounds)
        raise ConfigError(
            f"{name} must be a finite number {bound}".rstrip()
            + f", got {value!r}"
            + (f"; {example}." if example else ".")
        )
    return float(value) + 0.0  # and -0.0 becomes 0.0


def check_lr(lr, name: str = "lr") -> float:
    """The learning rate η: a finite real number > 0, returned as a Python float (a NumPy
    float64 scalar would silently widen float32 parameters)."""
    return check_real(lr, f"{name} (the learning rate η)", above=0, example=f"e.g. {name}=0.1")


def check_fraction(value, name: str) -> float:
    """A share strictly between 0 and 1 (the held-out fraction, say), as a float."""
    return check_real(
        value,
        name,
        above=0,
        below=1,
        example=f"e.g. {name}=0.2 keeps a fifth of the examples apart",
    )


def check_sizes(sizes, name: str = "sizes") -> tuple:
    """The layer widths h = (h_0 = n, h_1, ..., h_L = C) as a tuple of ints: a sequence of
    at least two whole numbers ≥ 1, else a ConfigError that says what a sizes is."""
    example = "e.g. (64, 32, 10): 64 inputs, a hidden layer of 32 units and 10 classes"
    if isinstance(sizes, Mapping):
        raise ConfigError(
            f"{name} is a {type(sizes).__name__}, but it is the layer widths h = (n, h_1, ..., C), "
            f"{example}. To use weights you already have, wrap them: mc.Params(W, b)."
        )
    widths = None
    if not isinstance(sizes, (str, bytes, set, frozenset)):  # a set has no order
        with contextlib.suppress(TypeError):
            widths = tuple(sizes)
    if widths is None or len(widths) < 2:
        raise ConfigError(
            f"{name} must be a sequence of at least two layer widths h = (n, ..., C), got "
            f"{sizes!r}; {example}."
        )
    example = f"The layer widths: {example}."
    return tuple(check_whole(h, f"{name}[{i}]", example=example) for i, h in enumerate(widths))


def check_choice(name, table, what: str):
    """``table[name]`` for a name of the table (activations, losses, init schemes), else a
    ConfigError that names ``what`` and lists the valid names."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown {what} {name!r}; valid names are: {', '.join(table)}") from None


#: The dtypes the library creates arrays in, and the only ones the fast engine computes in.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``np.dtype(dtype)`` when it is float32 or float64, else a ConfigError saying why."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} {dtype!r} is not a NumPy dtype; use np.float32 or np.float64."
        ) from None
    if dt not in FLOAT_DTYPES:
        if dt.kind in "iub":
            why = "integer weights round every small step to zero"
        elif dt.kind == "f":
            why = (
                "the library computes in float32 or float64 (float16 loses the small "
                "gradient steps; longdouble is not portable and has no GPU or BLAS support)"
            )
        else:
            why = "the network computes in real floating point"
        raise ConfigError(f"{name} must be np.float32 or np.float64, got {dt}: {why}.")
    return dt


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_fits_in_memory(nbytes: int, what: str, fix: str = "use smaller sizes") -> None:
    """Refuse, before allocating, what would take more than half of this machine's memory
    (it would end in a MemoryError at best, the kernel's out-of-memory killer at worst).

    ``what`` says what would be allocated and is followed by "need N GiB"; ``fix`` says
    what to do instead.
    """
    have = _physical_memory()
    if have is not None and nbytes > have // 2:
        raise ConfigError(
            f"{what} need {nbytes >> 30:,} GiB, more than half of this machine's "
            f"{have >> 30:,} GiB of memory; {fix}."
        )


def check_same_shape(a, b, name_a: str = "a", name_b: str = "b") -> None:
    """Two arrays compared entry by entry have one shape (no silent broadcasting)."""
    for name, x in ((name_a, a), (name_b, b)):
        if not _is_array(x) and not isinstance(x, numbers.Real):
            raise DataError(f"{name} must be an array; found {type(x).__name__}.")
    sa, sb = _shape(a), _shape(b)
    if sa != sb:
        hint = ""
        if sorted(sa) == sorted(sb) and len(sa) == 2:
            hint = f" Is one transposed? {name_b}.T has shape {sb[::-1]}."
        elif math.prod(sa) == math.prod(sb):
            hint = f" Same entries, another layout: reshape one, e.g. {name_b}.reshape({sa})."
        raise ShapeError(
            f"{name_a} has shape {sa} but {name_b} has shape {sb}; they must match entry by "
            f"entry (NumPy would broadcast them and compare the wrong numbers).{hint}"
        )
