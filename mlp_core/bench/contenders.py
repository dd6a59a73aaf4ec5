"""The contenders: one training epoch each, set up on a benchmark problem.

=================  ==========================================================================
contender          what one timed call does
=================  ==========================================================================
loop               the book's one-example loop (:func:`single.gradients_loop` per batch, then
                   the SGD step); on the larger sizes only the first k examples are timed and
                   the time is scaled by m/k ("extrapolated")
numpy-batched      :func:`training.run_epoch`, the book's batched formulas, on NumPy
numpy-fast         :func:`fast.run_epoch_fast`, the same epoch rearranged for speed
cupy-batched       :func:`training.run_epoch` on CuPy (data on the GPU all epoch)
cupy-fast          :func:`fast.run_epoch_fast` on CuPy (fused kernels, no host sync)
cupy-fast-graph    the same, captured once as a CUDA graph and replayed
sklearn            ``MLPClassifier(solver='sgd', momentum=0, alpha=0).partial_fit``, one epoch
torch-cpu          ``nn.Sequential`` of Linear+ReLU, ``CrossEntropyLoss``, ``optim.SGD``
torch-cuda         the same with the data and the model on the GPU (eager)
torch-cuda-graph   the same epoch captured once as a ``torch.cuda.CUDAGraph`` and replayed
gemm-numpy         only the matrix products of one epoch, at the same shapes, through the GEMM
gemm-cupy          the fast path calls (on the CPU listed once and replayed, as the fast path
                   replays its epoch): the floor; "% GEMM" is a contender's FLOP rate over the
                   floor's fastest epoch
=================  ==========================================================================

Every contender walks the batches of :func:`mlp_core.core.batching.batch_slices` over the
same epoch order.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..core import backend
from ..core.batching import batch_slices, step_size
from ..core.errors import ConfigError
from ..core.params import Params
from ..core.single import gradients_loop
from ..fast import graph_status, run_epoch_fast
from ..fast.numpy_kernels import blas_gemm, gemm_call, make_calls
from ..training import run_epoch, sgd_step
from .machine import cpu_cores
from .problems import SEED, Problem
from .timing import cuda_event_timer, torch_event_timer


def epoch_loop(
    X,
    Y,
    params: Params,
    order,
    batch_size: int,
    lr: float,
    examples=None,
    activation="relu",
    loss="cross_entropy",
) -> Params:
    """One epoch (or its first ``examples`` examples) with the one-example loop: per
    batch, :func:`single.gradients_loop` (one :func:`single.backprop_single` per row,
    averaged), then the SGD step scaled by m_b/B, as in :func:`training.run_epoch`."""
    k = X.shape[0] if examples is None else min(int(examples), X.shape[0])
    for start, stop in batch_slices(k, batch_size):
        idx = order[start:stop]
        dW, db = gradients_loop(X[idx], Y[idx], params, activation, loss)
        params = sgd_step(params, dW, db, step_size(lr, stop - start, batch_size))
    return params


def epoch_batched(
    X,
    Y,
    params: Params,
    order,
    batch_size: int,
    lr: float,
    fast=False,
    cuda_graph=False,
    activation="relu",
    loss="cross_entropy",
) -> Params:
    """One epoch of the batched path, NumPy or CuPy (the arrays decide): the book's
    :func:`training.run_epoch`, or with ``fast=True`` :func:`fast.run_epoch_fast`."""
    if fast:
        params, _ = run_epoch_fast(
            X, Y, params, order, batch_size, lr, activation, loss, cuda_graph=cuda_graph
        )
    else:
        params, _ = run_epoch(X, Y, params, order, batch_size, lr, activation, loss)
    return params


def epoch_sklearn(clf, X_ordered, labels_ordered, classes=None):
    """One epoch of scikit-learn's MLP: ``partial_fit`` over the rows already in the
    epoch's order (``shuffle=False``, so its own batches are ours). Each call also
    re-validates X and re-encodes the labels: that is part of its cost. The first call
    (untimed, given the ``classes``) builds the network."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X_ordered, labels_ordered, classes=classes)
    return clf


def epoch_torch(model, optimizer, loss_fn, X, labels, order, batch_size: int):
    """One epoch of PyTorch: gather X[order] on the device, then per batch zero the
    gradients, forward, mean cross-entropy, backward, SGD step. No host sync."""
    Xp, yp = X[order], labels[order]
    for start, stop in batch_slices(Xp.shape[0], batch_size):
        optimizer.zero_grad(set_to_none=True)
        out = model(Xp[start:stop])
        loss_fn(out, yp[start:stop]).backward()
        optimizer.step()
    return model


def epoch_gemm_floor(matmul, X, W: dict, Z: dict, D: dict, G: dict, slices):
    """Only the matrix products of one epoch at the same shapes, into preallocated
    buffers, through the same GEMM routine the fast path calls (``matmul(a, b, out)``:
    cuBLAS on CuPy; on NumPy a ``matmul`` that lists SciPy's BLAS call, and the timed epoch
    makes the listed calls): per batch and layer
    Z^l = A^{l-1} W^l, G^l = (A^{l-1})^T Δ^l and, for l ≥ 2, Δ^{l-1} = Δ^l (W^l)^T. No
    bias, activation, loss or update."""
    L = len(W)
    for start, stop in slices:
        mb = stop - start
        A_prev = X[start:stop]
        for l in range(1, L + 1):
            matmul(A_prev, W[l], Z[l][:mb])
            A_prev = Z[l][:mb]
        for l in range(L, 0, -1):
            A_prev = X[start:stop] if l == 1 else Z[l - 1][:mb]
            matmul(A_prev.T, D[l][:mb], G[l])
            if l > 1:
                matmul(D[l][:mb], W[l].T, D[l - 1][:mb])


# --------------------------------------------------------------------- contender set-up


class Skip(Exception):
    """A contender that cannot run here; the message says why."""


def _no_sync():
    return None


def _cupy_sync():
    backend.synchronize(backend.gpu_xp())


@dataclass
class Runner:
    """A contender ready to time: ``run()`` does one epoch (or the timed subsample),
    ``sync()`` waits for its device, ``scale`` turns a timed call into an epoch."""

    name: str
    device: str
    run: callable
    sync: callable = _no_sync
    scale: float = 1.0
    note: str = ""
    timer: object = None  # timer(fn) -> seconds on the device's clock (CUDA events), or None


# Each set-up, ``setup(p, gpu, loop_examples)``, returns the fields of its Runner that
# differ from its device's defaults (:func:`setup_contender`), or raises Skip.


def _setup_loop(p: Problem, gpu: bool, loop_examples=None) -> dict:
    k = p.size.loop_examples if loop_examples is None else loop_examples
    k = p.m if k is None else min(int(k), p.m)
    state = {"params": p.params}

    def run():
        state["params"] = epoch_loop(
            p.X, p.Y, state["params"], p.order, p.size.batch, p.lr, examples=k
        )

    note = f"extrapolated ×{p.m / k:.4g} from {k} of {p.m} examples" if k < p.m else ""
    return dict(run=run, scale=p.m / k, note=note)


def _setup_batched(p: Problem, gpu: bool, loop_examples=None, *, fast: bool, graph=False):
    if gpu:
        X, Y, params, order = p.on_gpu()
    else:
        X, Y, params, order = p.X, p.Y, p.params, p.order
    state = {"params": params}

    def run():
        state["params"] = epoch_batched(
            X, Y, state["params"], order, p.size.batch, p.lr, fast=fast, cuda_graph=graph
        )

    note = ""
    if graph:  # epoch 1 runs eagerly, epoch 2 captures: both before any timing
        run()
        run()
        _cupy_sync()

        states = list(graph_status().values())
        if "captured" not in states:
            raise Skip(f"CUDA graph capture failed: {states}")
        note = "whole epoch replayed as one CUDA graph"
    return dict(run=run, note=note)


def _setup_sklearn(p: Problem, gpu: bool, loop_examples=None) -> dict:
    try:
        import sklearn
        from sklearn.neural_network import MLPClassifier
    except ImportError as err:
        raise Skip(f"scikit-learn is not installed ({err})") from None
    B, sizes = p.size.batch, p.size.sizes
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(sizes[1:-1]),
        activation="relu",
        solver="sgd",
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        batch_size=B,
        learning_rate="constant",
        learning_rate_init=p.lr,
        max_iter=1,
        shuffle=False,
        random_state=SEED,
        tol=0.0,
        n_iter_no_change=10**9,
        early_stopping=False,
    )
    Xo, yo = np.ascontiguousarray(p.X[p.order]), p.labels[p.order]
    # The first partial_fit initialises the network (untimed); then start from our W, b.
    epoch_sklearn(clf, Xo[: min(B, p.m)], yo[: min(B, p.m)], classes=np.arange(sizes[-1]))
    if clf.coefs_[0].dtype != p.dtype:
        raise Skip(
            f"scikit-learn {sklearn.__version__} computes in {clf.coefs_[0].dtype}, not {p.dtype}"
        )
    if len(clf.coefs_) == len(sizes) - 1 and clf.coefs_[-1].shape[1] == sizes[-1]:
        for l in p.params.layers:
            clf.coefs_[l - 1][...] = p.params.W[l]
            clf.intercepts_[l - 1][...] = p.params.b[l]
    run = partial(epoch_sklearn, clf, Xo, yo)
    return dict(run=run, note=f"scikit-learn {sklearn.__version__}, partial_fit")


def _setup_torch(p: Problem, gpu: bool, loop_examples=None, graph: bool = False) -> dict:
    try:
        import torch
    except ImportError as err:
        raise Skip(f"PyTorch is not installed ({err})") from None
    if gpu and not torch.cuda.is_available():
        raise Skip(f"PyTorch {torch.__version__} sees no CUDA device")
    torch.set_num_threads(cpu_cores())
    device = torch.device("cuda" if gpu else "cpu")
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[p.dtype]
    layers = []
    for l in p.params.layers:
        lin = torch.nn.Linear(p.size.sizes[l - 1], p.size.sizes[l])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(p.params.W[l].T)))
            lin.bias.copy_(torch.from_numpy(p.params.b[l]))
        layers.append(lin)
        if l < p.params.L:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device=device, dtype=dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    X = torch.from_numpy(p.X).to(device)
    labels = torch.from_numpy(p.labels.astype(np.int64)).to(device)
    order = torch.from_numpy(p.order.astype(np.int64)).to(device)
    note = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    if gpu:
        note += f"; TF32 {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}"

    def run():
        epoch_torch(model, optimizer, loss_fn, X, labels, order, p.size.batch)

    if graph:
        run = _torch_graph_epoch(torch, model, optimizer, loss_fn, X, labels, order, p.size.batch)
        note += "; whole epoch replayed as one CUDA graph"
    if not gpu:
        return dict(run=run, note=note)
    return dict(run=run, note=note, sync=torch.cuda.synchronize, timer=torch_event_timer(torch))


def _torch_graph_epoch(torch, model, optimizer, loss_fn, X, labels, order, batch_size):
    """PyTorch's whole-network capture (the recipe of its CUDA-graphs documentation): three
    eager epochs on a side stream, then one epoch captured with the gradients zeroed in
    place (their memory stays put), replayed by each call. Raises Skip when capture fails."""
    slices = batch_slices(X.shape[0], batch_size)

    def body():
        Xp, yp = X[order], labels[order]
        for start, stop in slices:
            optimizer.zero_grad(set_to_none=False)
            loss_fn(model(Xp[start:stop]), yp[start:stop]).backward()
            optimizer.step()

    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                body()
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            body()
        torch.cuda.synchronize()
    except Exception as err:  # noqa: BLE001 - report why, run the others
        raise Skip(f"PyTorch CUDA graph capture failed: {type(err).__name__}: {err}") from None
    return g.replay


def _setup_gemm(p: Problem, gpu: bool, loop_examples=None) -> dict:
    xp = backend.gpu_xp() if gpu else np
    sizes, B = p.size.sizes, min(p.size.batch, p.m)
    rng = np.random.default_rng(1)

    def arr(*shape):  # well-scaled random numbers: no denormals, no overflow
        return xp.asarray((rng.standard_normal(shape) / math.sqrt(shape[-1])).astype(p.dtype))

    X = xp.asarray(p.X[p.order])
    L = len(sizes) - 1
    W = {l: arr(sizes[l - 1], sizes[l]) for l in range(1, L + 1)}
    Z = {l: arr(B, sizes[l]) for l in range(1, L + 1)}
    D = {l: arr(B, sizes[l]) for l in range(1, L + 1)}
    G = {l: arr(sizes[l - 1], sizes[l]) for l in range(1, L + 1)}
    slices = batch_slices(p.m, p.size.batch)
    if gpu:

        def matmul(a, b, out):
            xp.matmul(a, b, out=out)

        return dict(run=partial(epoch_gemm_floor, matmul, X, W, Z, D, G, slices))
    # On the CPU the products are listed once, with their arguments, and the timed call
    # only makes them, as the fast path replays its recorded epoch: no Python work of its
    # own between two products, or the floor would not be a floor for the fast path.
    gemm, calls = blas_gemm(p.dtype), []
    epoch_gemm_floor(
        lambda a, b, out: calls.append(gemm_call(gemm, a, b, out)), X, W, Z, D, G, slices
    )
    return dict(run=partial(make_calls, calls))


#: Every contender: its label in the table, its device and its set-up.
TABLE = {
    "loop": ("loop (single)", "cpu", _setup_loop),
    "numpy-batched": ("NumPy batched (book)", "cpu", partial(_setup_batched, fast=False)),
    "numpy-fast": ("NumPy fast", "cpu", partial(_setup_batched, fast=True)),
    "cupy-batched": ("CuPy batched (book)", "gpu", partial(_setup_batched, fast=False)),
    "cupy-fast": ("CuPy fast", "gpu", partial(_setup_batched, fast=True)),
    "cupy-fast-graph": ("CuPy fast + graph", "gpu", partial(_setup_batched, fast=True, graph=True)),
    "sklearn": ("scikit-learn", "cpu", _setup_sklearn),
    "torch-cpu": ("PyTorch CPU", "cpu", _setup_torch),
    "torch-cuda": ("PyTorch CUDA", "gpu", _setup_torch),
    "torch-cuda-graph": ("PyTorch CUDA + graph", "gpu", partial(_setup_torch, graph=True)),
    "gemm-numpy": ("GEMMs only (NumPy)", "cpu", _setup_gemm),
    "gemm-cupy": ("GEMMs only (cuBLAS)", "gpu", _setup_gemm),
}
CONTENDERS = tuple(TABLE)
GPU_CONTENDERS = tuple(name for name, (_, device, _) in TABLE.items() if device == "gpu")
LABELS = {name: label for name, (label, _, _) in TABLE.items()}


def setup_contender(name: str, p: Problem, use_gpu: bool, loop_examples=None) -> Runner:
    """A :class:`Runner` for contender ``name`` on problem ``p``, or :class:`Skip`."""
    if name not in TABLE:
        raise ConfigError(f"unknown contender {name!r}; valid: {', '.join(CONTENDERS)}")
    _, device, setup = TABLE[name]
    gpu = device == "gpu"
    if gpu and not use_gpu:
        raise Skip("no usable GPU" if not backend.gpu_available() else "GPU not selected")
    if p.size.gpu_only and not gpu:
        raise Skip(f"{p.size.name} is a GPU-only size; CPU contenders are not run there")
    defaults = dict(sync=_cupy_sync, timer=cuda_event_timer) if gpu else {}
    return Runner(name, device, **(defaults | setup(p, gpu, loop_examples)))
