"""One training epoch, rearranged for speed.

The book's formulas live in :mod:`mlp_core.core.batched`, and
:func:`mlp_core.training.run_epoch` is the readable epoch built from them. This module is
the *same computation rearranged for speed*: same batches in the same order, same forward
pass, same Δ^l, same step θ ← θ − η (m_b / B) ∂J/∂θ (partial last batch included);
``tests/test_fast.py`` proves that the two agree (float64 to 1e-12, float32 to 1e-5)
for every activation and loss on the CPU. The tests also compile every CUDA kernel
with NVRTC for compute_90 (``tests/test_cuda_kernels.py``) and run the GPU epoch's
code, CUDA-graph capture and replay included, with those kernels built as host C++
against the reference;
:func:`mlp_core.training.train` uses this path by default on NumPy only, until the GPU
tests (``pytest -m gpu``) have passed on a device. Read ``batched.py`` to learn the
algorithm; read this to see where the time goes and what can be done about it.

The epoch is written once (:func:`epoch_body`) against a small interface
(:class:`~mlp_core.fast.kernels.Kernels`) with two kernel sets behind it:
:mod:`~mlp_core.fast.numpy_kernels` and :mod:`~mlp_core.fast.cupy_kernels`.

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
batch losses stay on the device; a host-side order is copied asynchronously from pinned
memory); and with ``cuda_graph=True`` the whole epoch, after one eager warm-up epoch, is
captured once as a CUDA graph and then replayed with a single launch, whatever the
learning rate (the step η/B is a device scalar that the graph reads).

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
from . import graph as _graph
from .cupy_kernels import CupyKernels
from .graph import GraphState, Phase
from .kernels import Kernels
from .numpy_kernels import NumpyKernels

FAST_ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
FAST_LOSSES = ("cross_entropy", "binary_cross_entropy", "squared_error")

# Workspaces (preallocated buffers, and captured CUDA graphs) for the last few shapes.
_MAX_WORKSPACES = 2
_WORKSPACES: collections.OrderedDict[tuple, _Workspace] = collections.OrderedDict()
_WORKSPACES_LOCK = threading.Lock()


def clear_workspaces() -> None:
    """Free every cached buffer and CUDA graph of the fast path."""
    with _WORKSPACES_LOCK:
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

    The same contract as :func:`mlp_core.training.run_epoch` (batches of B rows of
    ``X[order]``, the last one partial and its step scaled by m_b/B; one mean loss J per
    batch, left on the device), computed with the rearrangements listed in the module
    docstring. ``params`` is not modified: a copy is updated in place and returned.

    ``cuda_graph=True`` (CuPy only) runs the first epoch of these shapes, dtype and batch
    size eagerly, captures the second as a CUDA graph and replays it from then on, for any
    learning rate; it falls back to the eager epoch if capture fails
    (:func:`graph_status` says why).

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
    # the fast kernels exist for float32 and float64 only (a rule of this engine, not of
    # the book's formulas, which is why it is not in core.validate)
    if not (X.dtype == Y.dtype == params.dtype) or X.dtype not in (np.float32, np.float64):
        raise ConfigError(
            f"the fast path needs X, Y and the parameters in one dtype, float32 or float64; "
            f"got X {X.dtype}, Y {Y.dtype}, parameters {params.dtype}. Cast them, e.g. "
            f"X.astype(params.dtype)."
        )
    slices = batch_slices(X.shape[0], batch_size)
    xp = get_xp(X)
    if is_gpu_array(X) != is_gpu_array(params.W[1]):
        raise ConfigError(
            "X and the parameters must be on the same device "
            "(move one with mlp_core.to_device / params.to)."
        )
    if tuple(np.shape(order)) != (X.shape[0],):
        raise ConfigError(
            f"order must hold one row index per example, shape "
            f"({X.shape[0]},); got {tuple(np.shape(order))}"
        )
    ws = _workspace(xp, params.sizes, X.shape[0], int(batch_size), X.dtype, act, loss_name, slices)
    if xp is not np:
        return ws.epoch(X, Y, params, order, lr, cuda_graph=cuda_graph)
    with _blas_threads(blas_threads):
        return ws.epoch(X, Y, params, order, lr)


def epoch_body(K: Kernels, ws: _Workspace, W: dict, b: dict, losses, step) -> None:
    """Every batch of one epoch, on any device: the forward pass in place, the loss and
    Δ^L, then one walk down the layers that forms Δ^{l-1} with the old W^l and updates
    W^l and b^l in place. Only calls ``K``'s kernels (so on CuPy it only queues work and
    can be captured as a CUDA graph). ``ws.Xp``, ``ws.Yp`` hold the data in this epoch's
    order; ``losses[k]`` receives batch k's J; ``step`` is η/B on the device."""
    L, A, D, G, gb = ws.L, ws.A, ws.D, ws.G, ws.gb
    for k, (start, stop) in enumerate(ws.slices):
        mb = stop - start
        Xb, Yb = ws.Xp[start:stop], ws.Yp[start:stop]
        A_prev = Xb
        for l in range(1, L + 1):  # A^l = σ(A^{l-1} W^l + b^l), in place in A[l]
            Z = A[l][:mb]
            K.matmul(A_prev, W[l], Z)
            if l < L:
                K.bias_act(l, b[l], Z)
            else:
                K.bias_add(b[l], Z)
            A_prev = Z
        K.output(A[L][:mb], Yb, D[L][:mb], losses[k : k + 1])  # J, and Δ^L = A^L − Y
        for l in range(L, 0, -1):
            Dl = D[l][:mb]
            A_prev = Xb if l == 1 else A[l - 1][:mb]
            if l > 1:
                D_prev = D[l - 1][:mb]
                K.matmul(Dl, W[l].T, D_prev)  # Δ^l (W^l)^T, with the old W^l
                K.derivative(l - 1, A_prev, D_prev)  # ⊙ σ'(Z^{l-1})
            K.matmul(A_prev.T, Dl, G[l])  # (A^{l-1})^T Δ^l
            K.sgd(W[l], G[l], step)  # W ← W − (η/B) (A^{l-1})^T Δ^l
            K.bias_grad(Dl, gb[l])  # 1^T Δ^l
            K.sgd(b[l], gb[l], step)  # b ← b − (η/B) 1^T Δ^l


def supports(activation, loss, dtype=None) -> bool:
    """True when the fast path has kernels for this activation, loss and dtype: the
    built-in activations and losses, looked up by name *and* identity (a user's own
    ``Activation("relu", ...)`` with a different σ must not be silently replaced by the
    built-in ReLU kernel), in float32 or float64 (``dtype=None`` skips the dtype)."""
    if dtype is not None and np.dtype(dtype) not in FAST_DTYPES:
        return False
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


def graph_status() -> dict:
    """For diagnostics: each cached GPU workspace's graph phase ('cold', 'warm',
    'captured' or 'failed: <reason>')."""
    out = {}
    for key, ws in list(_WORKSPACES.items()):
        if ws.xp is not np:
            st = ws.graph
            out[str(key)] = st.phase.value + (f": {st.error}" if st.error else "")
    return out


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
    """Every buffer one epoch needs, allocated once for given shapes, and its kernels.

    ``Xp``, ``Yp``: (m, n), (m, C), the data in this epoch's order.
    ``A[l]``: (B, h_l), holds Z^l and then, in place, A^l (l = 1..L).
    ``D[l]``: (B, h_l), the error Δ^l. ``G[l]``: (h_{l-1}, h_l), (A^{l-1})^T Δ^l;
    ``gb[l]``: (h_l,), 1^T Δ^l. ``step``: the scalar η/B, on the device.
    A partial last batch uses the first m_b rows of each buffer (still contiguous).
    CUDA graph (CuPy): ``graph`` (a :class:`GraphState`), the parameters and losses it
    reads and writes (``gW``, ``gb_``, ``glosses``) and its side ``stream``.
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
        self.G = {l: xp.empty((h[l - 1], h[l]), dtype) for l in range(1, L + 1)}
        self.gb = {l: xp.empty(h[l], dtype) for l in range(1, L + 1)}
        self.step = xp.empty((), dtype)
        if xp is np:
            self.kernels = NumpyKernels(h, rows, dtype, activation, loss)
        else:
            self.kernels = CupyKernels(xp, h, rows, dtype, activation, loss)
        self.graph = GraphState()
        self.gW = self.gb_ = self.glosses = self.stream = None
        self._pinned = self._pinned_memory = self._pinned_free = None

    def epoch(self, X, Y, params: Params, order, lr, cuda_graph: bool = False):
        """One epoch from ``params`` (not modified); returns ``(params, losses)``.

        On CuPy nothing here waits for the device: every call only queues work."""
        xp, K = self.xp, self.kernels
        order = self._device_order(order)
        self.step.fill(lr / self.B)  # (η m_b / B) · (1 / m_b): the same for every batch
        K.take_rows(X, order, self.Xp)  # 1. pre-permute once
        K.take_rows(Y, order, self.Yp)
        if cuda_graph and xp is not np:
            return self._epoch_graph(params)
        W = {l: params.W[l].copy() for l in params.layers}
        b = {l: params.b[l].copy() for l in params.layers}
        losses = xp.empty(len(self.slices), dtype=self.dtype)
        epoch_body(K, self, W, b, losses, self.step)
        return Params(W, b), losses

    def _device_order(self, order):
        """The order as the device's kernels read it. On CuPy, a host (NumPy) order is
        staged in pinned memory and copied asynchronously on the current stream (a
        pageable copy would be synchronous and make the host wait every epoch)."""
        xp = self.xp
        if xp is np or is_gpu_array(order):
            return order
        host = np.asarray(order)
        if (
            self._pinned is None
            or self._pinned.shape != host.shape
            or self._pinned.dtype != host.dtype
        ):
            self._pinned_memory = xp.cuda.alloc_pinned_memory(max(1, host.nbytes))
            self._pinned = np.frombuffer(self._pinned_memory, host.dtype, host.size)
        elif self._pinned_free is not None:
            self._pinned_free.synchronize()  # the last epoch's copy out of it is done
        np.copyto(self._pinned, host)
        device = xp.asarray(self._pinned, blocking=False)
        self._pinned_free = xp.cuda.get_current_stream().record()
        return device

    def _epoch_graph(self, params: Params):
        """The epoch as a CUDA graph over workspace-owned W, b and losses (module
        :mod:`~mlp_core.fast.graph`): the parameters are copied in, the graph warms up,
        is captured or replayed, and the results are copied out, all on the device."""
        xp = self.xp
        if self.gW is None:
            self.gW = {l: xp.empty_like(params.W[l]) for l in params.layers}
            self.gb_ = {l: xp.empty_like(params.b[l]) for l in params.layers}
            self.glosses = xp.empty(len(self.slices), dtype=self.dtype)
            self.stream = xp.cuda.Stream(non_blocking=True)
            self._one = xp.empty((1, 1), self.dtype)
        W, b, losses = self.gW, self.gb_, self.glosses
        for l in params.layers:
            xp.copyto(W[l], params.W[l])
            xp.copyto(b[l], params.b[l])

        def body():
            epoch_body(self.kernels, self, W, b, losses, self.step)

        def cublas_warm_up():  # the first cuBLAS call on the side stream, outside capture
            one = self.kernels.ones[:1].reshape(1, 1)
            xp.matmul(one, one, out=self._one)

        phase = self.graph.phase
        if phase is Phase.COLD:  # compiles every kernel, warms cuBLAS up
            body()
            self.graph = GraphState(Phase.WARM)
        elif phase is Phase.WARM:
            self.graph = _graph.capture(xp, self.stream, body, cublas_warm_up)
            if self.graph.phase is Phase.CAPTURED:
                _graph.replay(xp, self.stream, self.graph)  # capture ran nothing
            else:
                body()
        elif phase is Phase.CAPTURED:
            _graph.replay(xp, self.stream, self.graph)
        else:  # FAILED: stay eager (graph_status() says why)
            body()
        return Params({l: W[l].copy() for l in W}, {l: b[l].copy() for l in b}), losses.copy()
