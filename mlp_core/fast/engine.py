"""One training epoch, rearranged for speed.

The book's formulas live in :mod:`mlp_core.batched`, and :func:`mlp_core.train.run_epoch`
is the readable epoch built from them. This module is the *same computation rearranged
for speed*: same batches in the same order, same forward pass, same Δ^l, same step
θ ← θ − η (m_b / B) ∂J/∂θ (partial last batch included); ``tests/test_fast.py`` proves
that the two agree (float64 to 1e-12, float32 to 1e-5) for every activation and loss on
the CPU. Without a GPU, the tests also compile every CUDA kernel below with NVRTC for
compute_90 (``tests/test_cuda_kernels.py``) and run the GPU epoch's code with those
kernels built as host C++ against the reference; the tests that run it through CuPy on a
device have not yet been run (no GPU result is recorded), which is why
:func:`mlp_core.train.train` uses this path by default on NumPy only. Read ``batched.py``
to learn the algorithm; read this to see where the time goes and what can be done about it.

What is rearranged (each item's effect is measured by ``python -m mlp_core bench``):

1. **Pre-permute once per epoch.** ``X[order]`` is gathered once into a preallocated
   buffer, so each mini-batch is a contiguous slice (a view), not a fancy-index copy.
2. **Preallocated buffers, products written with ``out=``.** One (B, h_l) buffer per
   layer holds Z^l and is overwritten in place by A^l = σ(Z^l + b^l); σ'(Z^l) is read off
   A^l instead of recomputing σ: ReLU keeps its mask Z^l > 0 from the forward pass,
   tanh uses 1 − (A^l)², sigmoid A^l (1 − A^l) (the same numbers the reference computes).
3. **The 1/m_b cancels the m_b/B.** The reference takes the mean gradient (1/m_b) and
   then a step scaled by m_b/B; here every batch, the partial one too, takes
   W^l ← W^l − (η/B) (A^{l-1})^T Δ^l and b^l ← b^l − (η/B) 1^T Δ^l.
4. **One walk down the layers.** Δ^{l-1} = (Δ^l (W^l)^T) ⊙ σ'(Z^{l-1}) is formed with the
   old W^l, then W^l and b^l are updated in place; no gradient dicts, no new arrays.
5. **The bias gradient as a matrix-vector product** (1^T Δ^l, BLAS gemv; about 3× faster
   than ``sum(axis=0)`` on a CPU).
6. **Fused output.** For cross-entropy, softmax, the loss J and Δ^L = A^L − Y come from
   one pass over Z^L (one kernel on the GPU).
7. As in the reference, dJ/dA^0 (the error at the input) is never formed.
8. **Optionally, one BLAS thread for small products** (NumPy, ``blas_threads=1``): when
   every matrix product of a batch is tiny, waking a second BLAS thread for each costs
   more than it saves (badly so on a loaded machine). The limit is process-wide (the BLAS
   has one thread pool), so it is never applied automatically.

On CuPy, in addition: bias + activation, the activation derivative and each SGD update
(w ← w − (η/B) g) are single fused elementwise kernels; the softmax, the loss and Δ^L
are one row-wise kernel; nothing in the epoch makes the host wait for the device (the
batch losses stay on the device); and with
``cuda_graph=True`` the whole epoch, after one eager warm-up epoch, is captured once as a
CUDA graph and then replayed with a single launch.

The fast path keeps its buffers (including an (m, n) copy of X) in a small cache, keyed
by thread, of the last two shapes; :func:`clear_workspaces` frees them.
"""

from __future__ import annotations

import collections
import contextlib
import threading

import numpy as np

from ..core.activations import ACTIVATIONS, get_hidden_activation
from ..core.backend import get_xp, is_gpu_array
from ..core.batching import batch_slices
from ..core.errors import ConfigError
from ..core.losses import LOSSES, get_loss
from ..core.params import Params

FAST_ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
FAST_LOSSES = ("cross_entropy", "binary_cross_entropy", "squared_error")

# Workspaces (preallocated buffers, and captured CUDA graphs) for the last few shapes.
_MAX_WORKSPACES = 2
_WORKSPACES: collections.OrderedDict[tuple, _Workspace] = collections.OrderedDict()


def clear_workspaces() -> None:
    """Free every cached buffer and CUDA graph of the fast path."""
    _WORKSPACES.clear()


# ----------------------------------------------------------------------------- the epoch


def run_epoch_fast(
    X,
    Y,
    params: Params,
    order,
    batch_size: int,
    lr: float,
    activation="relu",
    loss="cross_entropy",
    *,
    cuda_graph: bool = False,
    blas_threads: int | None = None,
):
    """One pass over the data in ``order``: returns ``(params, batch_losses)``.

    The same contract as :func:`mlp_core.train.run_epoch` (batches of B rows of
    ``X[order]``, the last one partial and its step scaled by m_b/B; one mean loss J per
    batch, left on the device), computed with the rearrangements listed in the module
    docstring. ``params`` is not modified: a copy is updated in place and returned.

    ``cuda_graph=True`` (CuPy only) captures the whole epoch as a CUDA graph the second
    time the same shapes, dtype, batch size and learning rate are seen, and replays it
    from then on; it falls back to the eager epoch if capture fails.

    ``blas_threads`` (NumPy only): limit the BLAS to this many threads during the epoch
    (process-wide, for every thread of the program); ``None`` leaves the BLAS alone.

    Only the built-in activations and losses have fast kernels (:func:`supports`); the
    arrays must share one dtype, float32 or float64.
    """

    if not supports(activation, loss):
        raise ConfigError(
            f"the fast path has kernels only for the built-in activations "
            f"{', '.join(FAST_ACTIVATIONS)} and losses {', '.join(FAST_LOSSES)}; for "
            f"{activation!r} / {loss!r} use train(..., fast=False), the book's formulas."
        )
    act, loss_name = get_hidden_activation(activation).name, get_loss(loss).name
    if not (X.dtype == Y.dtype == params.dtype) or X.dtype not in (np.float32, np.float64):
        raise ConfigError(
            f"the fast path needs X, Y and the parameters in one dtype, float32 or float64; "
            f"got X {X.dtype}, Y {Y.dtype}, parameters {params.dtype}. Cast them, e.g. "
            f"X.astype(params.dtype)."
        )
    slices = batch_slices(X.shape[0], batch_size)
    B = int(batch_size)
    xp = get_xp(X)
    if is_gpu_array(X) != is_gpu_array(params.W[1]):
        raise ConfigError(
            "X and the parameters must be on the same device "
            "(move one with mlp_core.to_device / params.to)."
        )
    order = xp.asarray(order)
    if order.shape != (X.shape[0],):
        raise ConfigError(
            f"order must hold one row index per example, shape "
            f"({X.shape[0]},); got {tuple(order.shape)}"
        )
    ws = _workspace(xp, params.sizes, X.shape[0], B, X.dtype, act, loss_name, slices)
    step = lr / B  # (η m_b / B) · (1 / m_b): the same for every batch
    if xp is not np:
        return ws.epoch_gpu(X, Y, params, order, step, cuda_graph)
    with _blas_threads(blas_threads):
        return ws.epoch_cpu(X, Y, params, order, step)


def supports(activation, loss) -> bool:
    """True when the fast path has kernels for this activation and loss: the built-in
    ones, looked up by name *and* identity (a user's own ``Activation("relu", ...)`` with
    a different σ must not be silently replaced by the built-in ReLU kernel)."""
    try:
        act, los = get_hidden_activation(activation), get_loss(loss)
    except ConfigError:
        return False
    return (
        act.name in FAST_ACTIVATIONS
        and ACTIVATIONS.get(act.name) is act
        and los.name in FAST_LOSSES
        and LOSSES.get(los.name) is los
    )


_THREADPOOLS = []


@contextlib.contextmanager
def _blas_threads(n):
    """Limit NumPy's BLAS to ``n`` threads inside the block (``None``: leave it alone).

    Uses threadpoolctl (a dependency of scikit-learn); without it, does nothing.
    """
    if n is None:
        yield
        return
    if not _THREADPOOLS:
        try:
            from threadpoolctl import ThreadpoolController

            _THREADPOOLS.append(ThreadpoolController())
        except Exception:  # noqa: BLE001 - no threadpoolctl: leave the BLAS alone
            _THREADPOOLS.append(None)
    controller = _THREADPOOLS[0]
    if controller is None:
        yield
        return
    with controller.limit(limits=int(n), user_api="blas"):
        yield


_WORKSPACES_LOCK = threading.Lock()


def _workspace(xp, sizes, m, B, dtype, activation, loss, slices) -> _Workspace:
    device = -1 if xp is np else xp.cuda.Device().id
    key = (threading.get_ident(), device, tuple(sizes), m, B, np.dtype(dtype).str, activation, loss)
    with _WORKSPACES_LOCK:
        ws = _WORKSPACES.get(key)
        if ws is None:
            while len(_WORKSPACES) >= _MAX_WORKSPACES:
                _WORKSPACES.popitem(last=False)
            ws = _WORKSPACES[key] = _Workspace(xp, sizes, m, B, dtype, activation, loss, slices)
        _WORKSPACES.move_to_end(key)
    return ws


class _Workspace:
    """Every buffer one epoch needs, allocated once for given shapes.

    ``Xp``, ``Yp``: (m, n), (m, C), the data in this epoch's order.
    ``A[l]``: (B, h_l), holds Z^l and then, in place, A^l (l = 1..L).
    ``D[l]``: (B, h_l), the error Δ^l. ``G[l]``: (h_{l-1}, h_l), (A^{l-1})^T Δ^l;
    ``gb[l]``: (h_l,), 1^T Δ^l. CPU only: ``mask[l]`` (ReLU's Z^l > 0), ``T[l]``
    (σ'(Z^l) for tanh/sigmoid).
    A partial last batch uses the first m_b rows of each buffer (still contiguous).
    """

    def __init__(self, xp, sizes, m, B, dtype, activation, loss, slices):
        self.xp, self.sizes, self.L = xp, tuple(sizes), len(sizes) - 1
        self.m, self.B, self.dtype = m, B, np.dtype(dtype)
        self.activation, self.loss, self.slices = activation, loss, slices
        rows = min(B, m)
        L, h = self.L, self.sizes
        self.Xp = xp.empty((m, h[0]), dtype)
        self.Yp = xp.empty((m, h[L]), dtype)
        self.A = {l: xp.empty((rows, h[l]), dtype) for l in range(1, L + 1)}
        self.D = {l: xp.empty((rows, h[l]), dtype) for l in range(1, L + 1)}
        self.ones = xp.ones(rows, dtype)
        self.G = {l: xp.empty((h[l - 1], h[l]), dtype) for l in range(1, L + 1)}
        self.gb = {l: xp.empty(h[l], dtype) for l in range(1, L + 1)}
        if xp is np:
            self.mask = (
                {l: np.empty((rows, h[l]), bool) for l in range(1, L)}
                if activation == "relu"
                else {}
            )
            self.T = (
                {l: np.empty((rows, h[l]), dtype) for l in range(1, L)}
                if activation in ("tanh", "sigmoid")
                else {}
            )
            self.scaled_ones = np.empty(rows, dtype)
        else:
            self.row_loss = xp.empty(rows, dtype)
            self.kernels = _CupyKernels.get(xp, activation)
            self.graphs = {}  # step η/B -> captured epoch (or the reason it failed)
            self.graph_W = self.graph_b = self.graph_losses = None
            self.stream = None
            self.graph_error = None

    # ------------------------------------------------------------------------ NumPy

    def epoch_cpu(self, X, Y, params: Params, order, step):
        """The epoch on NumPy: every product and elementwise operation writes into the
        workspace (``out=``); W and b of a copy of ``params`` are updated in place."""
        W = {l: np.array(params.W[l], copy=True) for l in params.layers}
        b = {l: np.array(params.b[l], copy=True) for l in params.layers}
        Xp, Yp = self.Xp, self.Yp
        _take_rows(X, order, Xp)  # 1. pre-permute once
        _take_rows(Y, order, Yp)
        np.multiply(self.ones, step, out=self.scaled_ones)  # η/B · 1, for the bias step
        losses = np.empty(len(self.slices), dtype=X.dtype)
        L, A, D, act = self.L, self.A, self.D, self.activation
        mask, T, G, gb, s1 = self.mask, self.T, self.G, self.gb, self.scaled_ones
        output = _OUTPUT_CPU[self.loss]
        for k, (start, stop) in enumerate(self.slices):
            mb = stop - start
            Xb, Yb = Xp[start:stop], Yp[start:stop]
            # forward: A^l = σ(A^{l-1} W^l + b^l), in place in A[l]
            A_prev = Xb
            for l in range(1, L + 1):
                Z = A[l][:mb]
                np.matmul(A_prev, W[l], out=Z)
                np.add(Z, b[l], out=Z)
                if l < L:
                    _activate_cpu(act, Z, mask.get(l), T.get(l), mb)
                A_prev = Z
            losses[k] = output(A[L][:mb], Yb, D[L][:mb])  # J, and Δ^L = A^L − Y
            # backward, updating each layer once its Δ^{l-1} has used the old W^l
            for l in range(L, 0, -1):
                Dl = D[l][:mb]
                A_prev = Xb if l == 1 else A[l - 1][:mb]
                if l > 1:
                    D_prev = D[l - 1][:mb]
                    np.matmul(Dl, W[l].T, out=D_prev)
                    _derivative_cpu(act, D_prev, A_prev, mask.get(l - 1), T.get(l - 1), mb)
                np.matmul(A_prev.T, Dl, out=G[l])  # (A^{l-1})^T Δ^l
                np.multiply(G[l], step, out=G[l])
                np.subtract(W[l], G[l], out=W[l])  # W ← W − (η/B) (A^{l-1})^T Δ^l
                np.matmul(s1[:mb], Dl, out=gb[l])  # (η/B) 1^T Δ^l  (gemv)
                np.subtract(b[l], gb[l], out=b[l])
        return Params(W, b), losses

    # ------------------------------------------------------------------------ CuPy

    def epoch_gpu(self, X, Y, params: Params, order, step, cuda_graph: bool):
        """The epoch on CuPy, eagerly or (``cuda_graph=True``) as a replayed CUDA graph.

        No host synchronisation: every call here only queues work on the device.
        """
        xp = self.xp
        if not cuda_graph:
            W = {l: params.W[l].copy() for l in params.layers}
            b = {l: params.b[l].copy() for l in params.layers}
            xp.take(X, order, axis=0, out=self.Xp)
            xp.take(Y, order, axis=0, out=self.Yp)
            losses = xp.empty(len(self.slices), dtype=X.dtype)
            self._epoch_body_gpu(W, b, losses, step)
            return Params(W, b), losses
        return self._epoch_graph(X, Y, params, order, step)

    def _epoch_body_gpu(self, W, b, losses, step):
        """Every batch of one epoch on the GPU; only queues kernels (graph-capturable)."""
        xp, K, L, A, D, G, gb = self.xp, self.kernels, self.L, self.A, self.D, self.G, self.gb
        matmul = xp.matmul
        for k, (start, stop) in enumerate(self.slices):
            mb = stop - start
            Xb, Yb = self.Xp[start:stop], self.Yp[start:stop]
            A_prev = Xb
            for l in range(1, L + 1):
                Z = A[l][:mb]
                matmul(A_prev, W[l], out=Z)
                (K.bias_act if l < L else K.bias_add)(b[l], Z)  # A^l = σ(Z^l + b^l)
                A_prev = Z
            K.output(self.loss, A[L][:mb], Yb, D[L][:mb], self.row_loss[:mb], losses, k)
            ones = self.ones[:mb]
            for l in range(L, 0, -1):
                Dl = D[l][:mb]
                A_prev = Xb if l == 1 else A[l - 1][:mb]
                if l > 1:
                    D_prev = D[l - 1][:mb]
                    matmul(Dl, W[l].T, out=D_prev)  # Δ^l (W^l)^T, with the old W^l
                    K.derivative(A_prev, D_prev)  # ⊙ σ'(Z^{l-1})
                matmul(A_prev.T, Dl, out=G[l])  # (A^{l-1})^T Δ^l
                K.sgd(G[l], step, W[l])  # W ← W − (η/B) G
                matmul(ones, Dl, out=gb[l])  # 1^T Δ^l
                K.sgd(gb[l], step, b[l])  # b ← b − (η/B) 1^T Δ^l

    def _epoch_graph(self, X, Y, params, order, step):
        """The epoch as a CUDA graph over workspace-owned W, b and losses.

        Parameters and data are copied into the workspace on the caller's stream, the
        graph runs on a side stream ordered after them by events (never by a host wait),
        and the results are copied out on the caller's stream.
        """
        xp = self.xp
        cuda = xp.cuda
        outer = cuda.get_current_stream()
        if self.graph_W is None:
            self.graph_W = {l: xp.empty_like(params.W[l]) for l in params.layers}
            self.graph_b = {l: xp.empty_like(params.b[l]) for l in params.layers}
            self.graph_losses = xp.empty(len(self.slices), dtype=self.dtype)
            self.stream = cuda.Stream(non_blocking=True)
        W, b, losses = self.graph_W, self.graph_b, self.graph_losses
        for l in params.layers:
            W[l][...] = params.W[l]
            b[l][...] = params.b[l]
        xp.take(X, order, axis=0, out=self.Xp)
        xp.take(Y, order, axis=0, out=self.Yp)
        state = self.graphs.get(step)
        if state is None:
            self.graphs.clear()  # one learning rate at a time: free older graphs' memory
            # First epoch at this step: run eagerly (this compiles every kernel and warms
            # cuBLAS up); the next one is captured.
            self.graphs[step] = "warm-up done"
            self._epoch_body_gpu(W, b, losses, step)
        else:
            if state == "warm-up done":
                state = self._capture(W, b, losses, step)
            if isinstance(state, _CapturedEpoch):
                self.stream.wait_event(outer.record())
                with self.stream:
                    state.graph.launch()
                outer.wait_event(self.stream.record())
            else:  # capture failed (the reason is in self.graph_error): stay eager
                self._epoch_body_gpu(W, b, losses, step)
        return (Params({l: W[l].copy() for l in W}, {l: b[l].copy() for l in b}), losses.copy())

    def _capture(self, W, b, losses, step):
        """Capture one epoch on the side stream into a private memory pool (so that any
        temporary a kernel allocates belongs to the graph alone); record failures."""
        xp = self.xp
        cuda = xp.cuda
        pool = cuda.MemoryPool()
        self.stream.wait_event(cuda.get_current_stream().record())
        try:
            with self.stream:  # first cuBLAS use on this stream happens outside capture
                one = self.ones[:1].reshape(1, 1)
                xp.matmul(one, one, out=xp.empty((1, 1), self.dtype))
            with cuda.using_allocator(pool.malloc), self.stream:
                self.stream.begin_capture()
                try:
                    self._epoch_body_gpu(W, b, losses, step)
                finally:
                    graph = self.stream.end_capture()
            captured = _CapturedEpoch(graph, pool)
        except Exception as err:  # noqa: BLE001 - any failure means "run eagerly"
            self.graph_error = f"{type(err).__name__}: {err}"
            self.graphs[step] = f"capture failed: {self.graph_error}"
            return self.graphs[step]
        self.graphs[step] = captured
        return captured


class _CapturedEpoch:
    """A captured epoch and the memory pool its temporaries live in (kept together)."""

    def __init__(self, graph, pool):
        self.graph, self.pool = graph, pool


def graph_status() -> dict:
    """For diagnostics: each cached GPU workspace's captured graphs (or failure reasons)."""
    out = {}
    for key, ws in _WORKSPACES.items():
        if ws.xp is not np:
            out[str(key)] = {
                str(s): (g if isinstance(g, str) else "captured") for s, g in ws.graphs.items()
            }
    return out


# ----------------------------------------------------------------------- NumPy kernels


def _take_rows(X, order, out):
    """out ← X[order] (rows). With every index in range, ``mode='clip'`` lets NumPy write
    straight into ``out`` (its default mode gathers into a temporary first, ~2.5× slower)."""
    if order.size and (order.min() < 0 or order.max() >= X.shape[0]):
        np.take(X, order, axis=0, out=out)  # negative or bad indices: NumPy's own rules
    else:
        np.take(X, order, axis=0, out=out, mode="clip")


def _activate_cpu(act, Z, mask, T, mb):
    """Z ← σ(Z) in place (Z already holds Z^l + b^l); keeps what σ' will need."""
    if act == "relu":
        M = mask[:mb]
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


def _derivative_cpu(act, D, A, mask, T, mb):
    """D ← D ⊙ σ'(Z), with σ'(Z) read off A = σ(Z) (or ReLU's kept mask)."""
    if act == "relu":
        np.multiply(D, mask[:mb], out=D)
    elif act == "tanh":  # 1 − tanh²(Z)
        S = T[:mb]
        np.multiply(A, A, out=S)
        np.subtract(1, S, out=S)
        np.multiply(D, S, out=D)
    elif act == "sigmoid":  # σ(Z) (1 − σ(Z))
        S = T[:mb]
        np.subtract(1, A, out=S)
        np.multiply(A, S, out=S)
        np.multiply(D, S, out=D)


def _softmax_cross_entropy_cpu(Z, Y, D):
    """J = (1/m) Σ_i [logsumexp(Z_i) − Y_i·Z_i] and Δ^L = softmax(Z) − Y, one pass.

    Z (m_b, C) is overwritten with softmax(Z); returns J (a NumPy scalar)."""
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


def _sigmoid_bce_cpu(Z, Y, D):
    J = get_loss("binary_cross_entropy").value(Z, Y)
    _activate_cpu("sigmoid", Z, None, None, Z.shape[0])
    np.subtract(Z, Y, out=D)
    return J


def _squared_error_cpu(Z, Y, D):
    np.subtract(Z, Y, out=D)
    return 0.5 * np.vdot(D, D) / Z.shape[0]


_OUTPUT_CPU = {
    "cross_entropy": _softmax_cross_entropy_cpu,
    "binary_cross_entropy": _sigmoid_bce_cpu,
    "squared_error": _squared_error_cpu,
}


# ------------------------------------------------------------------------ CuPy kernels

# Bias add and activation in one pass: z ← σ(z + b), b broadcast over the rows.
_FORWARD = {
    "relu": "T t = z + b; z = (t <= (T)0) ? (T)0 : t;",  # keeps NaN, like maximum
    "tanh": "z = tanh(z + b);",
    "sigmoid": "z = (T)0.5 * ((T)1 + tanh((T)0.5 * (z + b)));",
    "identity": "z = z + b;",
}
# The activation derivative read off a = σ(z): d ← d ⊙ σ'(z).
_DERIVATIVE = {
    "relu": "d = d * (a > (T)0 ? (T)1 : (T)0);",
    "tanh": "d = d * ((T)1 - a * a);",
    "sigmoid": "d = d * (a * ((T)1 - a));",
    "identity": "",
}
# One thread per row: softmax, the row's cross-entropy and Δ^L = softmax(z) − y.
_SOFTMAX_XENT = r"""
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


class _CupyKernels:
    """The fused CuPy kernels for one activation (compiled lazily, cached)."""

    _cache: dict = {}

    @classmethod
    def get(cls, cp, activation):
        key = (cp, activation)  # the namespace itself: a dead object's id can be reused
        if key not in cls._cache:
            cls._cache[key] = cls(cp, activation)
        return cls._cache[key]

    def __init__(self, cp, activation):
        self.cp = cp
        # w ← w − s g, in place: the SGD step for W (g = G) and for b (g = 1^T Δ)
        self.sgd = cp.ElementwiseKernel("T g, T s", "T w", "w = w - s * g;", "mlp_sgd_step")
        self._bias_act = cp.ElementwiseKernel(
            "T b", "T z", _FORWARD[activation], f"mlp_bias_{activation}"
        )
        self._bias_add = cp.ElementwiseKernel("T b", "T z", _FORWARD["identity"], "mlp_bias_add")
        body = _DERIVATIVE[activation]
        self._derivative = (
            cp.ElementwiseKernel("T a", "T d", body, f"mlp_d_{activation}") if body else None
        )
        self._sigmoid_delta = cp.ElementwiseKernel(
            "T y",
            "T z, T d",
            "z = (T)0.5 * ((T)1 + tanh((T)0.5 * z)); d = z - y;",
            "mlp_sigmoid_delta",
        )
        self._xent = {
            np.dtype(np.float32): cp.RawKernel(
                "#define REAL float\n#define EXP expf\n#define LOG logf\n" + _SOFTMAX_XENT,
                "softmax_xent_rows",
            ),
            np.dtype(np.float64): cp.RawKernel(
                "#define REAL double\n#define EXP exp\n#define LOG log\n" + _SOFTMAX_XENT,
                "softmax_xent_rows",
            ),
        }

    def bias_act(self, b, Z):
        self._bias_act(b, Z)

    def bias_add(self, b, Z):
        self._bias_add(b, Z)

    def derivative(self, A, D):
        if self._derivative is not None:
            self._derivative(A, D)

    def output(self, loss, Z, Y, D, row_loss, losses, k):
        """losses[k] ← J and D ← Δ^L = A^L − Y from Z = Z^L (on the device)."""
        cp = self.cp
        mb, C = Z.shape
        if loss == "cross_entropy":
            threads = 128
            self._xent[Z.dtype](
                (-(-mb // threads),), (threads,), (Z, Y, D, row_loss, np.int32(mb), np.int32(C))
            )
            losses[k] = row_loss.mean()
        elif loss == "binary_cross_entropy":
            losses[k] = get_loss(loss).value(Z, Y)  # from the logits, stable
            self._sigmoid_delta(Y, Z, D)  # Z ← σ(Z), D ← Z − Y
        else:  # squared_error: identity output
            cp.subtract(Z, Y, out=D)
            losses[k] = 0.5 * (D * D).sum() / mb
