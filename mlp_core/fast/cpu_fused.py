"""The fast epoch's elementwise work on the CPU, fused: one compiled pass per step (Numba).

Chapter 12's recording showed where the CPU epoch of a small network spends what its
products do not: in the passes of NumPy's ufuncs, one per operation (the bias add, then
the ReLU's comparison, then its multiply; eight for the softmax and Δ^L), each a full
trip over the batch. These functions do each step in *one* trip, as the GPU's fused
kernels do (:mod:`~mlp_core.fast.cupy_kernels`, whose formulas they repeat line by
line), compiled to machine code by Numba at their first call and cached on disk
(``cache=True``), once per dtype.

They compile without ``fastmath``: every operation is the IEEE one, in the order written,
and no sum is reordered, so a result does not depend on the CPU's vector width. Sums run
in the arrays' dtype, as NumPy's and the GPU's do, except each batch's loss, which is
summed in float64 (a few hundred terms) and stored in the arrays' dtype. Numba types a
literal such as 1 or 0.5 as a 64-bit number, so in float32 the steps that meet one (the
sigmoid, 1 − a² and a (1 − a), and their products with D) run in float64 and are rounded
once, when stored: never less accurate than float32 throughout.

The three derivative passes keep one loop each: a pass built by a factory around a
scalar σ' is a closure, which Numba compiles again in every new Python instead of
reading it from its cache.

Shapes in the book's symbols, for a batch of m_b rows: Z, D, Y (m_b, h) with h = h_l or C;
b (h,); ``loss_out`` a one-element array that receives the batch's J.
"""

from __future__ import annotations

import math

import numba

_jit = numba.njit(cache=True, nogil=True)


# --------------------------------------------------------------- forward: z ← σ(z + b)


@_jit
def bias_relu(Z, b):
    """Z ← max(Z + b, 0), NaN kept (eq. ``eq-forward-batch`` with σ = ReLU)."""
    m, h = Z.shape
    for i in range(m):
        for j in range(h):
            t = Z[i, j] + b[j]
            Z[i, j] = 0 if t <= 0 else t


@_jit
def bias_tanh(Z, b):
    """Z ← tanh(Z + b)."""
    m, h = Z.shape
    for i in range(m):
        for j in range(h):
            Z[i, j] = math.tanh(Z[i, j] + b[j])


@_jit
def _sigmoid(t):
    return 0.5 * (1 + math.tanh(0.5 * t))  # σ, as activations.sigmoid: never overflows


@_jit
def bias_sigmoid(Z, b):
    """Z ← σ(Z + b) = (1 + tanh((Z + b)/2)) / 2."""
    m, h = Z.shape
    for i in range(m):
        for j in range(h):
            Z[i, j] = _sigmoid(Z[i, j] + b[j])


@_jit
def bias_identity(Z, b):
    """Z ← Z + b (the output layer's Z^L, and the identity activation)."""
    m, h = Z.shape
    for i in range(m):
        for j in range(h):
            Z[i, j] += b[j]


# ------------------------------------------- backward: d ← d ⊙ σ'(z), read off a = σ(z)
# Each pass that forms a Δ^l also takes the bias's SGD step, b^l ← b^l − (η/B) 1^T Δ^l,
# while Δ^l is in the cache (``minus_step``: the 0-d array −η/B, read at the call).


@_jit
def _step_bias(b, D, minus_step):
    """b ← b + minus_step · 1^T D (the column sums of D, row after row)."""
    total = D[0].copy()
    for i in range(1, D.shape[0]):
        total += D[i]
    b += minus_step[()] * total


@_jit
def relu_back(D, A, b, minus_step):
    """D ← D ⊙ [A > 0] (A = ReLU(Z) > 0 exactly where Z > 0); then b's step."""
    m, h = D.shape
    for i in range(m):
        for j in range(h):
            d = D[i, j]
            D[i, j] = d if A[i, j] > 0 else d * 0  # d · 0: ±0, or NaN where d is
    _step_bias(b, D, minus_step)


@_jit
def tanh_back(D, A, b, minus_step):
    """D ← D ⊙ (1 − A²); then b's step."""
    m, h = D.shape
    for i in range(m):
        for j in range(h):
            a = A[i, j]
            D[i, j] = D[i, j] * (1 - a * a)
    _step_bias(b, D, minus_step)


@_jit
def sigmoid_back(D, A, b, minus_step):
    """D ← D ⊙ A (1 − A); then b's step."""
    m, h = D.shape
    for i in range(m):
        for j in range(h):
            a = A[i, j]
            D[i, j] = D[i, j] * (a * (1 - a))
    _step_bias(b, D, minus_step)


@_jit
def identity_back(D, A, b, minus_step):
    """D unchanged (σ' = 1); b's step."""
    _step_bias(b, D, minus_step)


# ------------------------------------------ output: Z^L = Z + b, the batch's J, Δ^L = A^L − Y


@_jit
def softmax_shift(Z, b, D, top):
    """Z ← Z + b, row by row top_i ← max_c Z_ic, and D ← Z − top: the exponents of the
    softmax, all ≤ 0, so exp never overflows (NumPy's ``exp`` then takes them in place,
    in vector registers)."""
    m, C = Z.shape
    for i in range(m):
        for c in range(C):
            Z[i, c] += b[c]
        t = Z[i, 0]
        for c in range(1, C):
            z = Z[i, c]
            if z > t or z != z:  # a NaN propagates, as in np.maximum
                t = z
        top[i] = t
        for c in range(C):
            D[i, c] = Z[i, c] - t


@_jit
def softmax_cross_entropy(Z, Y, D, top, loss_out, b, minus_step):
    """D holds exp(Z − top) (:func:`softmax_shift`, then ``exp``): row by row
    D ← softmax(Z) − Y (eq. ``eq-output-error-batch``) and
    loss_out[0] ← J = (1/m_b) Σ_i [top_i + log Σ_c D_ic − Y_i·Z_i]; then b's step."""
    m, C = Z.shape
    total = 0.0
    for i in range(m):
        s, yz = D[i, 0], Y[i, 0] * Z[i, 0]
        for c in range(1, C):
            s += D[i, c]
            yz += Y[i, c] * Z[i, c]
        for c in range(C):
            D[i, c] = D[i, c] / s - Y[i, c]
        total += (top[i] + math.log(s)) - yz
    loss_out[0] = total / m
    _step_bias(b, D, minus_step)


@_jit
def sigmoid_binary_cross_entropy(Z, b, Y, D, loss_out, minus_step):
    """Per entry of Z + b: the loss term softplus(z) − y z from the logit (never
    overflows), then Z ← σ(z), D ← σ(z) − Y; loss_out[0] ← J = (1/m_b) Σ terms; then
    b's step."""
    m, C = Z.shape
    total = 0.0
    for i in range(m):
        for c in range(C):
            z, y = Z[i, c] + b[c], Y[i, c]
            total += max(z, 0) - y * z + math.log1p(math.exp(-abs(z)))
            a = _sigmoid(z)
            Z[i, c] = a
            D[i, c] = a - y
    loss_out[0] = total / m
    _step_bias(b, D, minus_step)


@_jit
def squared_error(Z, b, Y, D, loss_out, minus_step):
    """Z ← Z + b, D ← Z − Y and loss_out[0] ← J = (1/(2 m_b)) Σ (Z − Y)²; then b's step."""
    m, C = Z.shape
    total = 0.0
    for i in range(m):
        for c in range(C):
            z = Z[i, c] + b[c]
            Z[i, c] = z
            d = z - Y[i, c]
            D[i, c] = d
            total += d * d
    loss_out[0] = 0.5 * total / m
    _step_bias(b, D, minus_step)


FORWARD = {
    "relu": bias_relu,
    "tanh": bias_tanh,
    "sigmoid": bias_sigmoid,
    "identity": bias_identity,
}
DERIVATIVE = {
    "relu": relu_back,
    "tanh": tanh_back,
    "sigmoid": sigmoid_back,
    "identity": identity_back,
}
