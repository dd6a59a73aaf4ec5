"""One training epoch, rearranged for speed (:mod:`mlp_core.fast`): what is rearranged and
why is chapter 12's subject, what the GPU adds (fused kernels, no host waits, the epoch as
one CUDA graph) chapter 13's.
"""

from __future__ import annotations

import functools
import threading
import weakref

import numpy as np

from ..core.activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, get_hidden_activation
from ..core.backend import get_xp, is_gpu_array
from ..core.batching import batch_slices
from ..core.errors import ConfigError
from ..core.losses import LOSSES, get_loss
from ..core.params import Params
from ..core.validate import FLOAT_DTYPES, check_same_dtype
from . import graph as _graph
from .cupy_kernels import CupyKernels
from .graph import GraphState, Phase
from .kernels import Kernels
from .numpy_kernels import NumpyKernels

# Workspaces (preallocated buffers, and captured CUDA graphs) kept for the last few shapes.
_MAX_WORKSPACES = 2


def clear_workspaces() -> None:
    """Free every cached buffer and CUDA graph of the fast path."""
    _cached_workspace.cache_clear()


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
):
    """:func:`mlp_core.training.run_epoch`, computed in the buffers and with the kernels of a
    cached :class:`_Workspace`: returns ``(params, batch_losses)``. ``params`` is not
    modified: a copy is updated in place and returned.

    ``cuda_graph=True`` (CuPy only) runs the first epoch of these shapes, dtype and batch
    size eagerly, captures the second as a CUDA graph and replays it from then on, for any
    learning rate; it falls back to the eager epoch if capture fails
    (:func:`graph_status` says why).

    Only the built-in activations and losses have fast kernels (:func:`supports`); the
    arrays must share one dtype, float32 or float64.
    """
    if not supports(activation, loss):
        raise ConfigError(
            f"the fast path has kernels only for the built-in activations "
            f"{', '.join(HIDDEN_ACTIVATIONS)} and losses {', '.join(LOSSES)}; for "
            f"{activation!r} / {loss!r} use train(..., fast=False), the book's formulas."
        )
    act, loss_name = get_hidden_activation(activation).name, get_loss(loss).name
    if not (X.dtype == Y.dtype == params.dtype) or X.dtype not in FLOAT_DTYPES:
        raise ConfigError(
            f"the fast path needs X, Y and the parameters in one dtype, float32 or float64; "
            f"got X {X.dtype}, Y {Y.dtype}, parameters {params.dtype}. Cast them, e.g. "
            f"X.astype(params.dtype)."
        )
    batch_slices(X.shape[0], batch_size)  # refuses a batch size that is not a whole number ≥ 1
    check_same_dtype(X, params)  # the dtypes are equal: this checks the devices
    if tuple(np.shape(order)) != (X.shape[0],):
        raise ConfigError(
            f"order must hold one row index per example, shape "
            f"({X.shape[0]},); got {tuple(np.shape(order))}"
        )
    ws = _workspace(get_xp(X), params.sizes, X.shape[0], int(batch_size), X.dtype, act, loss_name)
    return ws.epoch(X, Y, params, order, lr, cuda_graph=cuda_graph)


def epoch_body(K: Kernels, ws: _Workspace, W: dict, b: dict, losses, step) -> None:
    """Every batch of one epoch, on any device: the forward pass in place, the loss and
    Δ^L, then one walk down the layers that forms Δ^{l-1} with the old W^l and updates
    W^l and b^l in place. Only calls ``K``'s kernels (so on CuPy it only queues work and
    can be captured as a CUDA graph). ``ws.Xp``, ``ws.Yp`` hold the data in this epoch's
    order; ``losses[k]`` receives batch k's J; ``step`` is η/B, a 0-d array on the device."""
    L = ws.L
    for k, (Yb, A, D) in enumerate(ws.batches()):
        for l in range(1, L + 1):  # A^l = σ(A^{l-1} W^l + b^l), in place in A[l]
            K.layer(l, A[l - 1], W[l], b[l], A[l], l == L)
        K.output(A[L], Yb, D[L], losses[k : k + 1])  # J, and Δ^L = A^L − Y
        for l in range(L, 0, -1):
            if l > 1:  # Δ^{l-1} = (Δ^l (W^l)^T) ⊙ σ'(Z^{l-1}), with the old W^l
                K.error(l, D[l], W[l], A[l - 1], D[l - 1])
            K.step(W[l], b[l], A[l - 1], D[l], step)  # W, b ← W, b − (η/B) ∂(m_b J)


def supports(activation, loss, dtype=None) -> bool:
    """True when the fast path has kernels for this activation, loss and dtype: every
    built-in hidden activation and loss (each kernel set has one kernel per entry of the
    core's tables), looked up by name *and* identity (a user's own
    ``Activation("relu", ...)`` with a different σ must not be silently replaced by the
    built-in ReLU kernel), in float32 or float64 (``dtype=None`` skips the dtype)."""
    if dtype is not None and np.dtype(dtype) not in FLOAT_DTYPES:
        return False
    try:
        act, los = get_hidden_activation(activation), get_loss(loss)
    except ConfigError:
        return False
    return ACTIVATIONS.get(act.name) is act and LOSSES.get(los.name) is los


def graph_status() -> dict:
    """For diagnostics: each cached GPU workspace's graph phase ('cold', 'warm',
    'captured' or 'failed: <reason>')."""
    out = {}
    for ws in _Workspace.live:
        if ws.xp is not np:
            st = ws.graph
            out[str(ws.key)] = st.phase.value + (f": {st.error}" if st.error else "")
    return out


def _workspace(xp, sizes, m, B, dtype, activation, loss) -> _Workspace:
    """The cached workspace for these shapes on this thread and device (a thread must not
    share buffers with another running the same shapes)."""
    device = -1 if xp is np else xp.cuda.Device().id
    key = (threading.get_ident(), device, tuple(sizes), m, B, np.dtype(dtype).str, activation, loss)
    return _cached_workspace(xp, key)


@functools.lru_cache(maxsize=_MAX_WORKSPACES)
def _cached_workspace(xp, key) -> _Workspace:
    ws = _Workspace(xp, *key[2:])
    ws.key = key
    return ws


class _Workspace:
    """Every buffer one epoch needs, allocated once for given shapes, and its kernels.

    ``Xp``, ``Yp``: (m, n), (m, C), the data in this epoch's order.
    ``A[l]``: (B, h_l), holds Z^l and then, in place, A^l (l = 1..L).
    ``D[l]``: (B, h_l), the error Δ^l. ``step``: η/B, a 0-d array on the device.
    A partial last batch uses the first m_b rows of each buffer (still contiguous).
    :meth:`batches` lists, per batch, its rows of ``Xp`` and ``Yp`` and the views of ``A``
    (``A[0]`` the batch's rows of ``Xp``) and ``D`` it works in; they are made once.
    ``own_W``, ``own_b``, ``own_losses``: the parameters and losses that the recorded calls
    (NumPy) and a CUDA graph (CuPy) read and write. CUDA graph: ``graph`` (a
    :class:`GraphState`) and its side ``stream``.
    ``live`` holds every workspace still referenced (for :func:`graph_status`).
    """

    live = weakref.WeakSet()

    def __init__(self, xp, sizes, m, B, dtype, activation, loss):
        self.xp, self.key, self.sizes, self.L = xp, None, tuple(sizes), len(sizes) - 1
        self.m, self.B, self.dtype = m, B, np.dtype(dtype)
        self.activation, self.loss = activation, loss
        self.slices = batch_slices(m, B)
        rows = min(B, m)
        L, h = self.L, self.sizes
        self.Xp = xp.empty((m, h[0]), dtype)
        self.Yp = xp.empty((m, h[L]), dtype)
        self.A = {l: xp.empty((rows, h[l]), dtype) for l in range(1, L + 1)}
        self.D = {l: xp.empty((rows, h[l]), dtype) for l in range(1, L + 1)}
        self.step = xp.empty((), dtype)
        if xp is np:
            self.kernels = NumpyKernels(h, self.slices, dtype, activation, loss)
        else:
            self.kernels = CupyKernels(xp, h, rows, dtype, activation, loss)
        self._batches = None
        self.graph = GraphState()
        self.own_W = self.own_b = self.own_losses = self.stream = None
        self._pinned = self._pinned_memory = self._pinned_free = None
        _Workspace.live.add(self)

    def batches(self) -> list:
        """``(Yb, A, D)`` per batch: its rows of ``Yp`` and the lists of m_b-row views
        ``A = [X_b, A^1, ..., A^L]`` (X_b its rows of ``Xp``), ``D = [None, Δ^1, ..., Δ^L]``."""
        if self._batches is None:
            L, views = self.L, {}
            out = []
            for start, stop in self.slices:
                mb = stop - start
                if mb not in views:
                    views[mb] = (
                        [self.A[l][:mb] for l in range(1, L + 1)],
                        [None] + [self.D[l][:mb] for l in range(1, L + 1)],
                    )
                A, D = views[mb]
                Xb, Yb = self.Xp[start:stop], self.Yp[start:stop]
                out.append((Yb, [Xb, *A], D))
            self._batches = out
        return self._batches

    def epoch(self, X, Y, params: Params, order, lr, cuda_graph: bool = False):
        """One epoch from ``params`` (not modified); returns ``(params, losses)``.

        On NumPy the calls recorded for this workspace are replayed (:meth:`_epoch_replay`);
        on CuPy nothing here waits for the device: every call only queues work."""
        xp, K = self.xp, self.kernels
        order = self._device_order(order)
        # the step (η m_b / B) · (1 / m_b) = η/B, the same for every batch, in a 0-d array
        # that the recorded calls (NumPy) and a captured graph (CuPy) read when they run
        self.step.fill(lr / self.B)
        K.take_rows(X, order, self.Xp)  # once per epoch: each batch is then a contiguous view
        K.take_rows(Y, order, self.Yp)
        if xp is np:
            return self._epoch_replay(params)
        if cuda_graph:
            return self._epoch_graph(params)
        W = {l: params.W[l].copy() for l in params.layers}
        b = {l: params.b[l].copy() for l in params.layers}
        losses = xp.empty(len(self.slices), dtype=self.dtype)
        epoch_body(K, self, W, b, losses, self.step)
        return Params(W, b), losses

    def _own_parameters(self, params: Params):
        """The workspace's own W, b and losses (allocated once), holding ``params``: what
        recorded calls and a captured graph read and write."""
        xp = self.xp
        if self.own_W is None:  # C-ordered, as the kernels' transposed views assume
            self.own_W = {l: xp.empty(params.W[l].shape, self.dtype) for l in params.layers}
            self.own_b = {l: xp.empty(params.b[l].shape, self.dtype) for l in params.layers}
            self.own_losses = xp.empty(len(self.slices), dtype=self.dtype)
        for l in params.layers:
            xp.copyto(self.own_W[l], params.W[l])
            xp.copyto(self.own_b[l], params.b[l])
        return self.own_W, self.own_b, self.own_losses

    def _copy_out(self):
        """``(params, losses)``: copies of the workspace's own W, b and losses, which the
        next epoch overwrites."""
        W, b = self.own_W, self.own_b
        params = Params({l: W[l].copy() for l in W}, {l: b[l].copy() for l in b})
        return params, self.own_losses.copy()

    def _epoch_replay(self, params: Params):
        """The epoch on NumPy: the first one records its calls (``epoch_body`` with
        :class:`NumpyKernels`, which record), every one replays them."""
        W, b, losses = self._own_parameters(params)
        K = self.kernels
        if not K.calls:
            K.record(lambda: epoch_body(K, self, W, b, losses, self.step))
        K.replay()
        return self._copy_out()

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
        """The epoch as a CUDA graph over the workspace's own W, b and losses (module
        :mod:`~mlp_core.fast.graph`): the parameters are copied in, the graph warms up,
        is captured or replayed, and the results are copied out, all on the device."""
        xp = self.xp
        W, b, losses = self._own_parameters(params)
        if self.stream is None:
            self.stream = xp.cuda.Stream(non_blocking=True)
            self._one = xp.empty((1, 1), self.dtype)

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
        return self._copy_out()
