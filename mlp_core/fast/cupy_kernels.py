"""The fast epoch's kernels on CuPy: fused CUDA kernels, nothing that waits for the host.

Bias + activation, the activation derivative and each SGD update are one elementwise
kernel each; the softmax, the per-row cross-entropy and Δ^L are one row-wise kernel; the
loss of a batch is reduced into the epoch's loss array on the device. No call allocates
(every output is a workspace buffer), so an epoch of these calls can be captured as a
CUDA graph (:mod:`mlp_core.fast.graph`). ``tests/test_cuda_kernels.py`` compiles every
source here with NVRTC for the H100/H200 and ``tests/test_fast.py`` runs them as host C++.
"""

from __future__ import annotations

import numpy as np

# Bias add and activation in one pass: z ← σ(z + b), b broadcast over the rows.
FORWARD = {
    "relu": "T t = z + b; z = (t <= (T)0) ? (T)0 : t;",  # keeps NaN, like maximum
    "tanh": "z = tanh(z + b);",
    "sigmoid": "z = (T)0.5 * ((T)1 + tanh((T)0.5 * (z + b)));",
    "identity": "z = z + b;",
}
# The activation derivative read off a = σ(z): d ← d ⊙ σ'(z).
DERIVATIVE = {
    "relu": "d = d * (a > (T)0 ? (T)1 : (T)0);",
    "tanh": "d = d * ((T)1 - a * a);",
    "sigmoid": "d = d * (a * ((T)1 - a));",
    "identity": "",
}
# Sigmoid output with binary cross-entropy, per element: the loss term from the logit
# (softplus(z) − y z, which never overflows), then z ← σ(z) and d ← σ(z) − y.
SIGMOID_BCE = (
    "e = ((z > (T)0) ? z : (T)0) - y * z + log1p(exp(-fabs(z))); "
    "z = (T)0.5 * ((T)1 + tanh((T)0.5 * z)); d = z - y;"
)
# One thread per row: softmax, the row's cross-entropy and Δ^L = softmax(z) − y.
SOFTMAX_XENT = r"""
extern "C" __global__ void softmax_xent_rows(const REAL* __restrict__ Z,
        const REAL* __restrict__ Y, REAL* __restrict__ D, REAL* __restrict__ row_loss,
        const int m, const int C) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    const REAL* z = Z + (long long)i * C;
    const REAL* y = Y + (long long)i * C;
    REAL* d = D + (long long)i * C;
    REAL mx = z[0];
    for (int c = 1; c < C; ++c) mx = z[c] > mx ? z[c] : mx;
    REAL s = 0, yz = 0;
    for (int c = 0; c < C; ++c) { s += EXP(z[c] - mx); yz += y[c] * z[c]; }
    row_loss[i] = (mx + LOG(s)) - yz;
    for (int c = 0; c < C; ++c) d[c] = EXP(z[c] - mx) / s - y[c];
}
"""
_THREADS = 128


def check_raw_arguments(name: str, arrays: dict, dtype) -> None:
    """A RawKernel reads its arrays through bare pointers: each must be C-contiguous and
    of the kernel's element type, or it reads the wrong numbers silently."""
    for arg, a in arrays.items():
        if a.dtype != dtype or not a.flags.c_contiguous:
            raise ValueError(
                f"{name}: {arg} must be a C-contiguous {np.dtype(dtype).name} array (the "
                f"kernel takes a raw pointer); got {a.dtype}, strides {a.strides}"
            )


class CupyKernels:
    """:class:`~.kernels.Kernels` on CuPy (or a stand-in with the same namespace), for
    one activation and loss. Scratch buffers: ``G`` ((A^{l-1})^T Δ^l, one per weight
    shape), ``gb`` (1^T Δ^l, one per width), ``row_loss`` (m_b,) and ``E`` (m_b, C).
    The compiled kernels are shared by every workspace of the same namespace."""

    _compiled: dict = {}

    def __init__(self, cp, sizes, rows: int, dtype, activation: str, loss: str):
        self.cp, self.activation, self.loss = cp, activation, loss
        self.k = self.compiled(cp, activation)
        self.ones = cp.ones(rows, dtype)
        pairs = set(zip(sizes[:-1], sizes[1:]))
        self.G = {shape: cp.empty(shape, dtype) for shape in pairs}
        self.gb = {h: cp.empty(h, dtype) for h in sizes[1:]}
        self.row_loss = cp.empty(rows, dtype)
        self.E = cp.empty((rows, sizes[-1]), dtype)

    @classmethod
    def compiled(cls, cp, activation):
        key = (cp, activation)  # the namespace itself: a dead object's id can be reused
        if key not in cls._compiled:
            cls._compiled[key] = _Compiled(cp, activation)
        return cls._compiled[key]

    def take_rows(self, X, order, out):
        self.cp.take(X, order, axis=0, out=out)

    def layer(self, l, A_prev, W, b, Z, last):
        self.cp.matmul(A_prev, W, out=Z)
        (self.k.bias_add if last else self.k.bias_act)(b, Z)  # z ← σ(z + b), one kernel

    def error(self, l, D, W, A_prev, D_prev):
        self.cp.matmul(D, W.T, out=D_prev)
        if self.k.derivative is not None:
            self.k.derivative(A_prev, D_prev)  # d ← d ⊙ σ'(z), read off a = σ(z)

    def step(self, W, b, A_prev, D, step):
        G, gb = self.G[W.shape], self.gb[b.shape[0]]
        self.cp.matmul(A_prev.T, D, out=G)
        self.k.sgd(G, step, W)  # w ← w − s g, one kernel
        self.cp.matmul(self.ones[: D.shape[0]], D, out=gb)
        self.k.sgd(gb, step, b)

    def output(self, Z, Y, D, loss_out):
        cp = self.cp
        mb, C = Z.shape
        if self.loss == "cross_entropy":
            row = self.row_loss[:mb]
            check_raw_arguments("softmax_xent_rows", dict(Z=Z, Y=Y, D=D, row_loss=row), Z.dtype)
            self.k.xent[Z.dtype](
                (-(-mb // _THREADS),), (_THREADS,), (Z, Y, D, row, np.int32(mb), np.int32(C))
            )
            cp.sum(row, axis=0, keepdims=True, out=loss_out)
            cp.multiply(loss_out, 1.0 / mb, out=loss_out)
        else:
            E = self.E[:mb]
            if self.loss == "binary_cross_entropy":
                self.k.sigmoid_bce(Y, Z, D, E)  # E ← loss terms, Z ← σ(Z), D ← Z − Y
                scale = 1.0 / mb
            else:  # squared_error: identity output
                cp.subtract(Z, Y, out=D)
                cp.multiply(D, D, out=E)
                scale = 0.5 / mb
            cp.sum(E.reshape(-1), axis=0, keepdims=True, out=loss_out)
            cp.multiply(loss_out, scale, out=loss_out)


class _Compiled:
    """The fused kernels for one activation (CuPy compiles each at its first launch)."""

    def __init__(self, cp, activation):
        # w ← w − s g, in place: the SGD step for W (g = G) and for b (g = 1^T Δ)
        self.sgd = cp.ElementwiseKernel("T g, T s", "T w", "w = w - s * g;", "mlp_sgd_step")
        self.bias_act = cp.ElementwiseKernel(
            "T b", "T z", FORWARD[activation], f"mlp_bias_{activation}"
        )
        self.bias_add = cp.ElementwiseKernel("T b", "T z", FORWARD["identity"], "mlp_bias_add")
        body = DERIVATIVE[activation]
        self.derivative = (
            cp.ElementwiseKernel("T a", "T d", body, f"mlp_d_{activation}") if body else None
        )
        self.sigmoid_bce = cp.ElementwiseKernel(
            "T y", "T z, T d, T e", SIGMOID_BCE, "mlp_sigmoid_bce"
        )
        self.xent = {
            np.dtype(dtype): cp.RawKernel(
                f"#define REAL {real}\n#define EXP exp{f}\n#define LOG log{f}\n" + SOFTMAX_XENT,
                "softmax_xent_rows",
            )
            for dtype, real, f in ((np.float32, "float", "f"), (np.float64, "double", ""))
        }
