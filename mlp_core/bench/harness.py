"""``python -m mlp_core bench``: how fast is a training epoch, and against what?

Side by side, in one run, on the same network, the same data and the same batch order
(one permutation from ``np.random.default_rng(seed)``, used by every contender):

=================  ==========================================================================
contender          what one timed call does
=================  ==========================================================================
loop               the book's one-example loop (:func:`single.gradients_loop` per batch, then
                   the SGD step); on the larger sizes only the first k examples are timed and
                   the time is scaled by m/k ("extrapolated")
numpy-batched      :func:`train.run_epoch`, the book's batched formulas, on NumPy
numpy-fast         :func:`fast.run_epoch_fast`, the same epoch rearranged for speed
cupy-batched       :func:`train.run_epoch` on CuPy (data on the GPU all epoch)
cupy-fast          :func:`fast.run_epoch_fast` on CuPy (fused kernels, no host sync)
cupy-fast-graph    the same, captured once as a CUDA graph and replayed
sklearn            ``MLPClassifier(solver='sgd', momentum=0, alpha=0).partial_fit``, one epoch
torch-cpu          ``nn.Sequential`` of Linear+ReLU, ``CrossEntropyLoss``, ``optim.SGD``
torch-cuda         the same with the data and the model on the GPU (eager)
gemm-numpy         only the matrix products of one epoch, at the same shapes, with ``out=``:
gemm-cupy          the floor; "% GEMM" is a contender's FLOP rate over this one's
=================  ==========================================================================

Timing (:func:`time_call`, :func:`run_bench`): warm-up epochs first, then several
repeats, the contenders interleaved round-robin in each repeat (each repeat starting
with the next contender) so that drift of the machine hits all alike; the device is
synchronised before every clock read; medians are reported.

FLOPs (:func:`epoch_flops`): only the matrix products count, a multiply-add being two
FLOPs. Per example, forward 2 Σ_l h_{l-1} h_l; backward 4 Σ_l h_{l-1} h_l (the weight
gradient (A^{l-1})^T Δ^l and the error Δ^l (W^l)^T for every layer) less 2 h_0 h_1: the
error at the input, Δ^1 (W^1)^T = dJ/dA^0, is needed by nobody and computed by no
contender, so it is not counted. Bias adds, activations, softmax, the loss and the
parameter updates are O(m Σ h_l) or O(Σ h_{l-1} h_l) per batch and are not counted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import fast
from .._version import __version__
from ..core import backend
from ..core.batched import backprop
from ..core.batching import batch_slices
from ..core.data import load_digits, one_hot
from ..core.errors import ConfigError, MlpCoreError
from ..core.params import Params, init_params
from ..core.single import gradients_loop
from ..fast import graph_status, run_epoch_fast
from ..training import run_epoch, sgd_step

__all__ = [
    "BenchSize",
    "CONTENDERS",
    "DEFAULT_SIZES",
    "DTYPES",
    "GPU_CONTENDERS",
    "LABELS",
    "LEARNING_RATE",
    "Problem",
    "Runner",
    "SEED",
    "SIZES",
    "Skip",
    "add_parser",
    "blas_info",
    "command_line",
    "copy_bandwidth",
    "cpu_cores",
    "cpu_model",
    "crossover_batch",
    "epoch_batched",
    "epoch_flops",
    "epoch_gemm_floor",
    "epoch_loop",
    "epoch_sklearn",
    "epoch_sklearn_first",
    "epoch_torch",
    "format_table",
    "gemm_rate",
    "load_recorded",
    "loop_vs_batched",
    "machine_info",
    "main",
    "make_problem",
    "matmul_intensity",
    "median",
    "recorded_label",
    "recorded_table",
    "roofline",
    "run_bench",
    "run_from_args",
    "setup_contender",
    "speed_vs_batch",
    "synthetic_data",
    "time_call",
    "timing_with_and_without_sync",
    "write_json",
]

CONTENDERS = (
    "loop",
    "numpy-batched",
    "numpy-fast",
    "cupy-batched",
    "cupy-fast",
    "cupy-fast-graph",
    "sklearn",
    "torch-cpu",
    "torch-cuda",
    "gemm-numpy",
    "gemm-cupy",
)
GPU_CONTENDERS = ("cupy-batched", "cupy-fast", "cupy-fast-graph", "torch-cuda", "gemm-cupy")
LABELS = {
    "loop": "loop (single)",
    "numpy-batched": "NumPy batched (book)",
    "numpy-fast": "NumPy fast",
    "cupy-batched": "CuPy batched (book)",
    "cupy-fast": "CuPy fast",
    "cupy-fast-graph": "CuPy fast + graph",
    "sklearn": "scikit-learn",
    "torch-cpu": "PyTorch CPU",
    "torch-cuda": "PyTorch CUDA",
    "gemm-numpy": "GEMMs only (NumPy)",
    "gemm-cupy": "GEMMs only (cuBLAS)",
}


@dataclass(frozen=True)
class BenchSize:
    """One benchmark problem: m examples, widths h = (n, ..., C), batch B.

    ``loop_examples``: how many examples the one-example loop times (None: all m), the
    epoch time being extrapolated ×m/k. ``gpu_only``: only the GPU contenders run.
    """

    name: str
    m: int
    sizes: tuple
    batch: int
    data: str = "synthetic"  # or "digits"
    loop_examples: int | None = None
    gpu_only: bool = False

    def describe(self) -> str:
        return f"{self.name}: m={self.m}, h={'-'.join(map(str, self.sizes))}, B={self.batch}"


SIZES = {
    "tiny": BenchSize("tiny", 200, (20, 16, 12, 5), 32),
    "digits": BenchSize("digits", 1797, (64, 128, 64, 10), 64, data="digits"),
    "60000x784": BenchSize("60000x784", 60000, (784, 256, 128, 10), 256, loop_examples=2048),
    "16384x1024": BenchSize("16384x1024", 16384, (1024, 2048, 2048, 10), 1024, loop_examples=256),
    "4096-wide": BenchSize(
        "4096-wide", 32768, (4096, 4096, 4096, 10), 4096, loop_examples=32, gpu_only=True
    ),
}
DEFAULT_SIZES = ("digits", "60000x784", "16384x1024", "4096-wide")
DTYPES = ("float32", "float64")
LEARNING_RATE = 0.01
SEED = 0


# ----------------------------------------------------------------------------- timing


def median(values) -> float:
    """The median of a list of numbers (the statistic every table here reports)."""
    return float(statistics.median(values))


def time_call(fn, xp=None, warmup: int = 1, repeats: int = 5, sync=None) -> list:
    """Seconds taken by ``fn()``, ``repeats`` times after ``warmup`` untimed calls.

    The device is synchronised before each clock read (:func:`backend.synchronize` for
    ``xp``, or the ``sync`` callable given), so queued GPU work is counted where it runs.
    """
    sync = sync or (lambda: backend.synchronize(xp))
    for _ in range(warmup):
        fn()
    return [_clock(fn, sync) for _ in range(repeats)]


def _clock(fn, sync) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def epoch_flops(m: int, sizes) -> int:
    """FLOPs of the matrix products of one epoch over m examples (see module docstring):
    m (6 Σ_l h_{l-1} h_l − 2 h_0 h_1)."""
    pairs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return int(m) * (6 * pairs - 2 * sizes[0] * sizes[1])


# ----------------------------------------------------------------------------- problems


@dataclass
class Problem:
    """Host copies of one benchmark problem: X (m, n), one-hot Y (m, C), labels (m,),
    initial parameters, the batch order (one permutation for every epoch) and η."""

    size: BenchSize
    dtype: np.dtype
    X: np.ndarray
    Y: np.ndarray
    labels: np.ndarray
    params: Params
    order: np.ndarray
    lr: float = LEARNING_RATE
    _device: dict = field(default_factory=dict)

    @property
    def m(self) -> int:
        return self.X.shape[0]

    def on_gpu(self):
        """(X, Y, params, order) on the GPU, copied once and shared by the GPU contenders."""
        if not self._device:
            self._device.update(
                X=backend.to_device(self.X, "gpu"),
                Y=backend.to_device(self.Y, "gpu"),
                params=self.params.to("gpu"),
                order=backend.to_device(self.order, "gpu"),
            )
        d = self._device
        return d["X"], d["Y"], d["params"], d["order"]


def synthetic_data(m: int, sizes, dtype, rng: np.random.Generator):
    """Standard-normal X (m, n) and random labels in 0..C-1 for widths (n, ..., C): the
    benchmark's synthetic data (speed does not depend on what the numbers mean)."""
    X = rng.standard_normal((m, sizes[0]), dtype=np.float32).astype(dtype)
    return X, rng.integers(0, sizes[-1], size=m)


def make_problem(size: BenchSize, dtype, seed: int = SEED, lr: float = LEARNING_RATE) -> Problem:
    """The data (the bundled digits, or standard-normal synthetic X with random labels)
    and He-initialised parameters, in ``dtype``."""

    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    C = size.sizes[-1]
    if size.data == "digits":
        ds = load_digits(dtype)
        X, labels = ds.X[: size.m], ds.labels[: size.m]
        if X.shape[1] != size.sizes[0] or ds.C != C:
            raise ConfigError(f"size {size.name}: the digits are 64 → 10, not {size.sizes}")
    else:
        X, labels = synthetic_data(size.m, size.sizes, dtype, rng)
    X = np.ascontiguousarray(X)
    Y = one_hot(labels, C, dtype=dtype)
    params = init_params(size.sizes, seed=seed, dtype=dtype, device="cpu")
    order = np.random.default_rng(seed).permutation(X.shape[0])
    return Problem(size, dtype, X, Y, labels, params, order, lr)


# ----------------------------------------------------------------- the contenders (one epoch)


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
    averaged), then the SGD step scaled by m_b/B, as in :func:`train.run_epoch`."""

    k = X.shape[0] if examples is None else min(int(examples), X.shape[0])
    for start in range(0, k, batch_size):
        stop = min(start + batch_size, k)
        idx = order[start:stop]
        dW, db = gradients_loop(X[idx], Y[idx], params, activation, loss)
        params = sgd_step(params, dW, db, lr * (stop - start) / batch_size)
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
    :func:`train.run_epoch`, or with ``fast=True`` :func:`fast.run_epoch_fast`."""
    if fast:
        params, _ = run_epoch_fast(
            X, Y, params, order, batch_size, lr, activation, loss, cuda_graph=cuda_graph
        )
    else:
        params, _ = run_epoch(X, Y, params, order, batch_size, lr, activation, loss)
    return params


def epoch_sklearn(clf, X_ordered, labels_ordered):
    """One epoch of scikit-learn's MLP: ``partial_fit`` over the rows already in the
    epoch's order (``shuffle=False``, so its own batches are ours). Each call also
    re-validates X and re-encodes the labels: that is part of its cost."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X_ordered, labels_ordered)
    return clf


def epoch_torch(model, optimizer, loss_fn, X, labels, order, batch_size: int):
    """One epoch of PyTorch: gather X[order] on the device, then per batch zero the
    gradients, forward, mean cross-entropy, backward, SGD step. No host sync."""
    Xp, yp = X[order], labels[order]
    m = Xp.shape[0]
    for start in range(0, m, batch_size):
        optimizer.zero_grad(set_to_none=True)
        out = model(Xp[start : start + batch_size])
        loss_fn(out, yp[start : start + batch_size]).backward()
        optimizer.step()
    return model


def epoch_gemm_floor(xp, X, W: dict, Z: dict, D: dict, G: dict, slices):
    """Only the matrix products of one epoch at the same shapes, into preallocated
    buffers, with the same calls the fast path makes (``xp.matmul(a, b, out=)``; BLAS on
    NumPy, cuBLAS on CuPy): per batch and layer Z^l = A^{l-1} W^l, G^l = (A^{l-1})^T Δ^l
    and, for l ≥ 2, Δ^{l-1} = Δ^l (W^l)^T. No bias, activation, loss or update."""
    L = len(W)

    def gemm(a, b, out):
        xp.matmul(a, b, out=out)

    for start, stop in slices:
        mb = stop - start
        A_prev = X[start:stop]
        for l in range(1, L + 1):
            gemm(A_prev, W[l], Z[l][:mb])
            A_prev = Z[l][:mb]
        for l in range(L, 0, -1):
            A_prev = X[start:stop] if l == 1 else Z[l - 1][:mb]
            gemm(A_prev.T, D[l][:mb], G[l])
            if l > 1:
                gemm(D[l][:mb], W[l].T, D[l - 1][:mb])


# --------------------------------------------------------------------- contender set-up


class Skip(Exception):
    """A contender that cannot run here; the message says why."""


@dataclass
class Runner:
    """A contender ready to time: ``run()`` does one epoch (or the timed subsample),
    ``sync()`` waits for its device, ``scale`` turns a timed call into an epoch."""

    name: str
    device: str
    run: callable
    sync: callable
    scale: float = 1.0
    note: str = ""


def _no_sync():
    return None


def _cupy_sync():
    backend.synchronize(backend._cupy())


def _setup_loop(p: Problem, loop_examples=None):
    k = p.size.loop_examples if loop_examples is None else loop_examples
    k = p.m if k is None else min(int(k), p.m)
    state = {"params": p.params}

    def run():
        state["params"] = epoch_loop(
            p.X, p.Y, state["params"], p.order, p.size.batch, p.lr, examples=k
        )

    note = f"extrapolated ×{p.m / k:.4g} from {k} of {p.m} examples" if k < p.m else ""
    return Runner("loop", "cpu", run, _no_sync, p.m / k, note)


def _setup_batched(p: Problem, name: str, gpu: bool, fast: bool, graph: bool = False):
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

        states = [v for d in graph_status().values() for v in d.values()]
        if "captured" not in states:
            raise Skip(f"CUDA graph capture failed: {states}")
        note = "whole epoch replayed as one CUDA graph"
    return Runner(name, "gpu" if gpu else "cpu", run, _cupy_sync if gpu else _no_sync, note=note)


def _setup_sklearn(p: Problem):
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
    epoch_sklearn_first(clf, Xo[: min(B, p.m)], yo[: min(B, p.m)], sizes[-1])
    if clf.coefs_[0].dtype != p.dtype:
        raise Skip(
            f"scikit-learn {sklearn.__version__} computes in {clf.coefs_[0].dtype}, not {p.dtype}"
        )
    if len(clf.coefs_) == len(sizes) - 1 and clf.coefs_[-1].shape[1] == sizes[-1]:
        for l in p.params.layers:
            clf.coefs_[l - 1][...] = p.params.W[l]
            clf.intercepts_[l - 1][...] = p.params.b[l]
    return Runner(
        "sklearn",
        "cpu",
        lambda: epoch_sklearn(clf, Xo, yo),
        _no_sync,
        note=f"scikit-learn {sklearn.__version__}, partial_fit",
    )


def epoch_sklearn_first(clf, X, labels, C):
    """The untimed first ``partial_fit`` that builds scikit-learn's network."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X, labels, classes=np.arange(C))


def _setup_torch(p: Problem, cuda: bool):
    try:
        import torch
    except ImportError as err:
        raise Skip(f"PyTorch is not installed ({err})") from None
    if cuda and not torch.cuda.is_available():
        raise Skip(f"PyTorch {torch.__version__} sees no CUDA device")
    torch.set_num_threads(cpu_cores())
    device = torch.device("cuda" if cuda else "cpu")
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
    sync = torch.cuda.synchronize if cuda else _no_sync
    tf32 = ""
    if cuda:
        tf32 = f"; TF32 {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}"
    return Runner(
        "torch-cuda" if cuda else "torch-cpu",
        "gpu" if cuda else "cpu",
        lambda: epoch_torch(model, optimizer, loss_fn, X, labels, order, p.size.batch),
        sync,
        note=f"torch {torch.__version__}, {torch.get_num_threads()} threads" + tf32,
    )


def _setup_gemm(p: Problem, gpu: bool):

    xp = backend._cupy() if gpu else np
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
    return Runner(
        "gemm-cupy" if gpu else "gemm-numpy",
        "gpu" if gpu else "cpu",
        lambda: epoch_gemm_floor(xp, X, W, Z, D, G, slices),
        _cupy_sync if gpu else _no_sync,
    )


def setup_contender(name: str, p: Problem, use_gpu: bool, loop_examples=None) -> Runner:
    """A :class:`Runner` for contender ``name`` on problem ``p``, or :class:`Skip`."""
    if name in GPU_CONTENDERS and not use_gpu:
        raise Skip("no usable GPU" if not backend.gpu_available() else "GPU not selected")
    if p.size.gpu_only and name not in GPU_CONTENDERS:
        raise Skip(f"{p.size.name} is a GPU-only size; CPU contenders are not run there")
    if name == "loop":
        return _setup_loop(p, loop_examples)
    if name == "numpy-batched":
        return _setup_batched(p, name, gpu=False, fast=False)
    if name == "numpy-fast":
        return _setup_batched(p, name, gpu=False, fast=True)
    if name == "cupy-batched":
        return _setup_batched(p, name, gpu=True, fast=False)
    if name == "cupy-fast":
        return _setup_batched(p, name, gpu=True, fast=True)
    if name == "cupy-fast-graph":
        return _setup_batched(p, name, gpu=True, fast=True, graph=True)
    if name == "sklearn":
        return _setup_sklearn(p)
    if name in ("torch-cpu", "torch-cuda"):
        return _setup_torch(p, cuda=name == "torch-cuda")
    if name in ("gemm-numpy", "gemm-cupy"):
        return _setup_gemm(p, gpu=name == "gemm-cupy")
    raise ConfigError(f"unknown contender {name!r}; valid: {', '.join(CONTENDERS)}")


# ----------------------------------------------------------------------------- the run


def run_bench(
    sizes=DEFAULT_SIZES,
    dtypes=DTYPES,
    repeats: int = 5,
    warmup: int = 1,
    contenders=CONTENDERS,
    quick: bool = False,
    device: str | None = "auto",
    loop_examples=None,
    lr: float = LEARNING_RATE,
    pause: float = 0.02,
    progress=None,
) -> dict:
    """Time every contender on every size and dtype; returns ``{"meta", "records",
    "skipped"}`` (what :func:`write_json` writes and :func:`format_table` prints).

    ``sizes``: names from :data:`SIZES` or :class:`BenchSize` objects. ``quick``: the
    digits in float32 only, 3 repeats (for a first look and for tests).
    ``device``: 'auto' (the GPU contenders run where a GPU can be used), 'cpu' or 'gpu'.
    ``pause``: seconds of idle between two timed calls (lets BLAS/OpenMP threads of the
    previous contender go to sleep; never inside a timing).
    ``progress``: a callable taking one line of text, or None.
    """
    if quick:
        sizes, dtypes, repeats, warmup = ("digits",), ("float32",), 3, 1
    sizes = [SIZES[s] if isinstance(s, str) else s for s in _names(sizes, SIZES, "size")]
    dtypes = [np.dtype(d) for d in _names(dtypes, DTYPES, "dtype")]
    contenders = _names(contenders, CONTENDERS, "contender")
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats must be ≥ 1 and warmup ≥ 0; got {repeats}, {warmup}")
    if loop_examples is not None and int(loop_examples) < 1:
        raise ConfigError(
            f"loop_examples (the examples the one-example loop is timed on) "
            f"must be ≥ 1; got {loop_examples}"
        )
    use_gpu = backend.resolve_device(device) == "gpu" if device != "cpu" else False
    say = progress or (lambda line: None)
    records, skipped = [], []
    for size in sizes:
        if size.gpu_only and not use_gpu:
            skipped.append(
                dict(
                    size=size.name,
                    dtype="*",
                    contender="*",
                    reason="GPU-only size and no GPU in use",
                )
            )
            continue
        for dtype in dtypes:
            say(f"{size.describe()}, {dtype.name}: preparing")
            p = make_problem(size, dtype, lr=lr)
            runners = []
            for name in contenders:
                try:
                    runners.append(setup_contender(name, p, use_gpu, loop_examples))
                except Skip as why:
                    skipped.append(
                        dict(size=size.name, dtype=dtype.name, contender=name, reason=str(why))
                    )
            times = {r.name: [] for r in runners}
            failed = {}
            for rnd in range(warmup + repeats):
                k = rnd % len(runners) if runners else 0
                for r in runners[k:] + runners[:k]:  # round-robin, a new leader each time
                    if r.name in failed:
                        continue
                    time.sleep(pause)
                    try:
                        t = _clock(r.run, r.sync)
                    except Exception as err:  # noqa: BLE001 - report, go on with the rest
                        failed[r.name] = f"failed: {type(err).__name__}: {err}"
                        continue
                    if rnd >= warmup:
                        times[r.name].append(t)
                say(
                    f"{size.name} {dtype.name}: round {rnd + 1}/{warmup + repeats}"
                    + (" (warm-up)" if rnd < warmup else "")
                )
            for name, reason in failed.items():
                skipped.append(
                    dict(size=size.name, dtype=dtype.name, contender=name, reason=reason)
                )
            block = [_record(p, r, times[r.name]) for r in runners if r.name not in failed]
            _add_ratios(block)
            records.extend(block)
            del runners, p
            _free_memory()
    return {
        "meta": machine_info(use_gpu),
        "records": records,
        "skipped": skipped,
        "settings": dict(
            sizes=[s.name for s in sizes],
            dtypes=[d.name for d in dtypes],
            repeats=repeats,
            warmup=warmup,
            contenders=list(contenders),
            lr=lr,
            seed=SEED,
            quick=quick,
        ),
    }


def _names(values, valid, what):
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    out = []
    for v in values:
        if isinstance(v, BenchSize):
            out.append(v)
            continue
        v = str(v).strip()
        if v not in valid:
            raise ConfigError(f"unknown {what} {v!r}; valid: {', '.join(valid)}")
        out.append(v)
    if not out:
        raise ConfigError(f"no {what} given; valid: {', '.join(valid)}")
    return out


def _record(p: Problem, r: Runner, times: list) -> dict:
    size = p.size
    seconds = median(times) * r.scale
    flops = epoch_flops(p.m, size.sizes)
    return dict(
        size=size.name,
        m=p.m,
        sizes=list(size.sizes),
        batch=size.batch,
        dtype=p.dtype.name,
        contender=r.name,
        label=LABELS[r.name],
        device=r.device,
        times=times,
        scale=r.scale,
        extrapolated=r.scale != 1.0,
        seconds=seconds,
        examples_per_s=p.m / seconds,
        gflop=flops / 1e9,
        gflops=flops / seconds / 1e9,
        note=r.note,
    )


def _add_ratios(block: list) -> None:
    """Per record: % of the GEMM floor of its device, and speed-ups (time ratios)."""
    by = {r["contender"]: r for r in block}
    for r in block:
        gpu = r["device"] == "gpu"
        floor = by.get("gemm-cupy" if gpu else "gemm-numpy")
        r["pct_gemm"] = 100 * r["gflops"] / floor["gflops"] if floor else None
        refs = {
            "loop": "loop",
            "numpy-batched": "numpy-batched",
            "sklearn": "sklearn",
            "torch": "torch-cuda" if gpu else "torch-cpu",
        }
        r["speedup"] = {
            k: (by[v]["seconds"] / r["seconds"] if v in by else None) for k, v in refs.items()
        }


def _free_memory():

    fast.clear_workspaces()
    cp = backend._cupy()
    if cp is not None:
        cp.get_default_memory_pool().free_all_blocks()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- the machine


def cpu_cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> list:
    """The BLAS/OpenMP libraries loaded in this process (threadpoolctl), or NumPy's
    build configuration where threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_info

        return [
            {
                k: v
                for k, v in lib.items()
                if k
                in (
                    "user_api",
                    "internal_api",
                    "version",
                    "num_threads",
                    "architecture",
                    "threading_layer",
                )
            }
            | {"library": os.path.basename(lib.get("filepath", ""))}
            for lib in threadpool_info()
        ]
    except Exception:  # noqa: BLE001
        try:
            cfg = np.show_config(mode="dicts")
            return [cfg.get("Build Dependencies", {}).get("blas", {})]
        except Exception:  # noqa: BLE001
            return []


def _version(module: str):
    try:
        mod = __import__(module)
        return getattr(mod, "__version__", "?")
    except Exception:  # noqa: BLE001
        return None


def command_line(argv=None) -> str:
    """The command as a reader would type it: ``python -m mlp_core bench ...`` rather than
    the path of the package's ``__main__.py`` on the machine that ran it."""
    argv = list(sys.argv if argv is None else argv)
    if argv and os.path.basename(argv[0]) == "__main__.py":
        argv[0] = "-m mlp_core"
    return " ".join(["python"] + argv)


def machine_info(use_gpu: bool = False) -> dict:
    """What the numbers were measured on: CPU, cores, GPU, BLAS, versions, date, command."""

    info = dict(
        cpu=cpu_model(),
        cores=cpu_cores(),
        logical_cpus=os.cpu_count(),
        platform=platform.platform(),
        python=platform.python_version(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=command_line(),
        load_average=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        versions=dict(
            mlp_core=__version__,
            numpy=np.__version__,
            scipy=_version("scipy"),
            sklearn=_version("sklearn"),
            torch=_version("torch"),
            cupy=_version("cupy") if use_gpu else None,
        ),
        blas=blas_info(),
        gpu=None,
    )
    cp = backend._cupy() if use_gpu else None
    if cp is not None:
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        name = props["name"]
        info["gpu"] = dict(
            name=name.decode() if isinstance(name, bytes) else str(name),
            memory_gib=round(props["totalGlobalMem"] / 2**30, 1),
            cuda_runtime=cp.cuda.runtime.runtimeGetVersion(),
            cupy_tf32=os.environ.get("CUPY_TF32", "0"),
        )
    return info


# ----------------------------------------------------------------------------- output

_COLUMNS = (
    "size",
    "dtype",
    "contender",
    "s/epoch",
    "examples/s",
    "GFLOP/s",
    "% GEMM",
    "×loop",
    "×np-book",
    "×sklearn",
    "×torch",
)


def _fmt_ratio(x):
    return "—" if x is None else (f"{x:.3g}" if x < 100 else f"{x:.0f}")


def format_table(result: dict) -> str:
    """The results as a text table: one row per (size, dtype, contender); ratios are
    speed-ups (the other's seconds per epoch over this row's), "—" where not measured."""
    rows = []
    for r in result["records"]:
        mark = "*" if r["extrapolated"] else ""
        pct = "—" if r.get("pct_gemm") is None else f"{r['pct_gemm']:.0f}%"
        s = r["speedup"]
        rows.append(
            (
                r["size"],
                r["dtype"],
                r["label"] + mark,
                f"{r['seconds']:.4g}",
                f"{r['examples_per_s']:.3g}",
                f"{r['gflops']:.3g}",
                pct,
                _fmt_ratio(s["loop"]),
                _fmt_ratio(s["numpy-batched"]),
                _fmt_ratio(s["sklearn"]),
                _fmt_ratio(s["torch"]),
            )
        )
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(_COLUMNS)]
    left = 3

    def line(cells):
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [line(_COLUMNS), line(["-" * w for w in widths])]
    prev = None
    for row in rows:
        if prev is not None and row[:2] != prev:
            out.append("")
        out.append(line(row))
        prev = row[:2]
    meta = result["meta"]
    notes = [
        "",
        f"CPU: {meta['cpu']} ({meta['cores']} cores); "
        f"GPU: {meta['gpu']['name'] if meta.get('gpu') else 'none used'}; "
        f"medians of {result['settings']['repeats']} interleaved repeats after "
        f"{result['settings']['warmup']} warm-up.",
    ]
    if any(r["extrapolated"] for r in result["records"]):
        extra = {r["note"] for r in result["records"] if r["extrapolated"]}
        notes.append("* extrapolated: " + "; ".join(sorted(extra)))
    notes.append(
        "% GEMM: this row's GFLOP/s over the GEMMs-only floor of its device, "
        "measured in the same run. ×X: X's seconds per epoch / this row's."
    )
    for s in result["skipped"]:
        notes.append(f"skipped: {s['contender']} ({s['size']}, {s['dtype']}): {s['reason']}")
    return "\n".join(out + notes)


def write_json(result: dict, path) -> str:
    """Write the results as JSON (atomically); returns the path."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ----------------------------------------------------------------------------- command line


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to a ``python -m mlp_core`` parser."""
    b = subparsers.add_parser(
        "bench",
        help="time training epochs against other libraries",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_arguments(b)
    return b


def _add_arguments(b: argparse.ArgumentParser) -> None:
    b.add_argument(
        "--sizes",
        default=",".join(DEFAULT_SIZES),
        help=f"comma-separated, from: {', '.join(SIZES)}",
    )
    b.add_argument("--dtypes", default=",".join(DTYPES), help="float32,float64")
    b.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset")
    b.add_argument("--repeats", type=int, default=5, help="timed epochs per contender")
    b.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    b.add_argument(
        "--device",
        choices=backend.DEVICES,
        default="auto",
        help="auto: GPU contenders where a GPU can be used",
    )
    b.add_argument(
        "--loop-examples",
        type=int,
        default=None,
        help="examples the one-example loop times on large sizes (default: per size)",
    )
    b.add_argument("--lr", type=float, default=LEARNING_RATE)
    b.add_argument(
        "--quick", action="store_true", help="digits, float32, 3 repeats: a first look in seconds"
    )
    b.add_argument("--json", metavar="PATH", help="also write the results as JSON here")


def run_from_args(args, out=None) -> int:
    """Run the benchmark the parsed arguments describe; print the table."""
    out = out or sys.stdout
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise ConfigError(f"--json {args.json!r}: the folder {folder!r} does not exist.")
    result = run_bench(
        sizes=args.sizes,
        dtypes=args.dtypes,
        repeats=args.repeats,
        warmup=args.warmup,
        contenders=args.contenders,
        quick=args.quick,
        device=args.device,
        loop_examples=args.loop_examples,
        lr=args.lr,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_table(result), file=out, flush=True)
    if args.json:
        print(f"wrote {write_json(result, args.json)}", file=out)
    return 0


def main(argv=None, out=None) -> int:
    """``python -m mlp_core bench [options]`` on its own: returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m mlp_core bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args, out)
    except MlpCoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# ------------------------------------------------- the book's Part III (chapters 12 and 13)
#
# Small measurements and helpers behind the figures of "Why batches are fast" and "On the
# GPU with CuPy". Each timing synchronises the device before every clock read
# (:func:`time_call`) and reports the median.


def gemm_rate(n: int = 1024, dtype=np.float32, xp=np, repeats: int = 3) -> float:
    """Measured GFLOP/s of one n×n by n×n matrix product C = A B on ``xp`` (2 n³ FLOPs,
    a multiply-add counting two): the "peak" of the roofline, eq-intensity."""
    rng = np.random.default_rng(0)
    A = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    B = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    C = xp.empty((n, n), dtype=dtype)
    t = median(time_call(lambda: xp.matmul(A, B, out=C), xp=xp, repeats=repeats))
    return 2.0 * n**3 / t / 1e9


def copy_bandwidth(nbytes: int = 2**26, dtype=np.float32, xp=np, repeats: int = 3) -> float:
    """Measured GB/s of copying an array of ``nbytes`` bytes into another (bytes read plus
    bytes written, 2·nbytes per copy): the slope of the roofline, eq-intensity. Use an
    array much larger than the caches (the default, 64 MiB) to measure main memory."""
    count = max(1, int(nbytes) // np.dtype(dtype).itemsize)
    src = xp.ones(count, dtype=dtype)
    dst = xp.empty_like(src)
    t = median(time_call(lambda: xp.copyto(dst, src), xp=xp, repeats=repeats))
    return 2.0 * count * np.dtype(dtype).itemsize / t / 1e9


def matmul_intensity(h_in: int, h_out: int, m: int, itemsize: int = 4) -> float:
    """Arithmetic intensity (FLOP/byte) of Z = A W with A (m, h_in), W (h_in, h_out),
    eq-intensity: 2 m h_in h_out FLOPs over the bytes of A and W read once and Z written
    once, itemsize (m h_in + h_in h_out + m h_out). For m = 1 this is the matrix-vector
    product of one example, about 2/itemsize (0.5 FLOP/byte in float32)."""
    flops = 2.0 * m * h_in * h_out
    nbytes = itemsize * (m * h_in + h_in * h_out + m * h_out)
    return flops / nbytes


def roofline(peak_gflops, bandwidth_gbs, intensity):
    """Attainable GFLOP/s at arithmetic intensity I (FLOP/byte): min(peak, bandwidth · I).
    Works elementwise on arrays of intensities."""
    return np.minimum(peak_gflops, np.multiply(bandwidth_gbs, intensity))


def _synthetic_problem(m: int, sizes, dtype, seed: int = 0):

    X, labels = synthetic_data(m, sizes, dtype, np.random.default_rng(seed))
    Y = one_hot(labels, sizes[-1], dtype=dtype)
    return X, Y, init_params(tuple(sizes), seed=seed, dtype=dtype, device="cpu")


def speed_vs_batch(
    m: int,
    sizes,
    batch_sizes,
    xp=np,
    dtype=np.float32,
    repeats: int = 3,
    warmup: int = 1,
    fast: bool = True,
    lr: float = LEARNING_RATE,
    seed: int = SEED,
) -> list:
    """Seconds per training epoch against the batch size B, on ``xp`` (NumPy or CuPy).

    Synthetic data X (m, n) and one-hot Y (m, C) for widths ``sizes`` = (n, ..., C) are
    moved to the device once; each timed call is one epoch of :func:`fast.run_epoch_fast`
    (``fast=True``) or of the book's :func:`train.run_epoch`, the device synchronised
    before each clock read. Returns one dict per B: ``batch_size``, ``seconds_per_epoch``
    (median), ``examples_per_s``, ``gflops`` (eq-epoch-flops over the time), ``device``.
    """
    X, Y, params = _synthetic_problem(m, sizes, dtype, seed)
    order = np.random.default_rng(seed).permutation(m)
    device = "gpu" if xp is not np else "cpu"
    if device == "gpu":
        X, Y, order = xp.asarray(X), xp.asarray(Y), xp.asarray(order)
        params = params.to("gpu")
    flops = epoch_flops(m, sizes)
    rows = []
    for B in batch_sizes:
        state = {"params": params}

        def one_epoch():
            state["params"] = epoch_batched(X, Y, state["params"], order, int(B), lr, fast=fast)

        t = median(time_call(one_epoch, xp=xp, warmup=warmup, repeats=repeats))
        rows.append(
            dict(
                batch_size=int(B),
                seconds_per_epoch=t,
                examples_per_s=m / t,
                gflops=flops / t / 1e9,
                device=device,
            )
        )
    return rows


def loop_vs_batched(
    m_values, sizes, loop_examples: int = 128, dtype=np.float64, repeats: int = 3, seed: int = SEED
) -> list:
    """The gradients of m examples, one example at a time (:func:`single.gradients_loop`)
    and in one batched call (:func:`batched.backprop`), for each m in ``m_values``.

    The loop costs the same per example whatever m is, so it is timed on
    k = min(m, ``loop_examples``) examples and its time scaled by m/k
    (``loop_extrapolated`` says when). Returns one dict per m: ``m``, ``loop_seconds``,
    ``batched_seconds``, ``speedup`` (loop / batched), ``loop_examples`` (k),
    ``loop_extrapolated``.
    """

    rows = []
    for m in m_values:
        m = int(m)
        X, Y, params = _synthetic_problem(m, sizes, dtype, seed)
        k = min(m, int(loop_examples))
        t_loop = (
            median(time_call(lambda: gradients_loop(X[:k], Y[:k], params), xp=np, repeats=repeats))
            * m
            / k
        )
        t_batch = median(time_call(lambda: backprop(X, Y, params), xp=np, repeats=repeats))
        rows.append(
            dict(
                m=m,
                loop_seconds=t_loop,
                batched_seconds=t_batch,
                speedup=t_loop / t_batch,
                loop_examples=k,
                loop_extrapolated=k < m,
            )
        )
    return rows


def timing_with_and_without_sync(xp=np, n: int = 2048, dtype=np.float32, repeats: int = 3) -> tuple:
    """(seconds_without_sync, seconds_with_sync) for one n×n matrix product on ``xp``.

    Without synchronisation the clock is read as soon as the call returns; on CuPy that is
    when the kernel has been *queued*, so only the launch is timed. With
    :func:`backend.synchronize` before the second clock read the product is finished.
    On NumPy the call returns when the work is done and the two agree. Medians.
    """
    rng = np.random.default_rng(0)
    A = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    B = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    C = xp.empty((n, n), dtype=dtype)
    xp.matmul(A, B, out=C)  # warm-up (loads the library, builds the plan)
    backend.synchronize(xp)
    without, with_sync = [], []
    for _ in range(repeats):
        backend.synchronize(xp)
        start = time.perf_counter()
        xp.matmul(A, B, out=C)
        without.append(time.perf_counter() - start)  # no sync: the launch only
        backend.synchronize(xp)  # (let the queued work finish)
        start = time.perf_counter()
        xp.matmul(A, B, out=C)
        backend.synchronize(xp)
        with_sync.append(time.perf_counter() - start)
    return median(without), median(with_sync)


def load_recorded(pattern) -> list:
    """The benchmark results stored by ``python -m mlp_core bench --json`` in the files
    matching the glob ``pattern`` (sorted by name), each with its ``path`` added; ``[]``
    when none match. A file without ``meta`` and ``records`` is an error, not skipped."""
    import glob

    results = []
    for path in sorted(glob.glob(os.fspath(pattern))):
        with open(path) as f:
            try:
                result = json.load(f)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}: not a benchmark JSON file ({err})") from None
        if not isinstance(result, dict) or "meta" not in result or "records" not in result:
            raise ConfigError(
                f"{path}: not a benchmark JSON file (it needs 'meta' and "
                "'records', as written by python -m mlp_core bench --json)"
            )
        result["path"] = path
        results.append(result)
    return results


def recorded_label(result: dict) -> str:
    """The hardware and date of a recorded result, e.g. 'AMD EPYC (2 cores), 2026-11-21'
    or, when a GPU was used, its name."""
    meta = result["meta"]
    date = str(meta.get("date", "?"))[:10]
    gpu = meta.get("gpu")
    if gpu:
        return f"{gpu['name']}, {date}"
    return f"{meta.get('cpu', '?')} ({meta.get('cores', '?')} cores), {date}"


def recorded_table(result: dict, contenders=None) -> str:
    """The text table of a recorded result (:func:`format_table`) for the given contenders
    (all by default), without the list of skipped contenders, headed by where, when and
    how it was measured."""
    keep = [r for r in result["records"] if contenders is None or r["contender"] in contenders]
    meta = result["meta"]
    head = [
        f"measured on: {recorded_label(result)}",
        f"command:     {meta.get('command', '?')}",
        f"numpy {meta['versions'].get('numpy')}, scikit-learn "
        f"{meta['versions'].get('sklearn')}, torch {meta['versions'].get('torch')}",
        "",
    ]
    body = format_table(dict(result, records=keep, skipped=[]))
    return "\n".join(head) + body


def crossover_batch(cpu_rows: list, gpu_rows: list):
    """The smallest batch size at which the GPU processes more examples per second than
    the CPU (rows as returned by :func:`speed_vs_batch`, compared at the batch sizes both
    measured), or None if it never does."""
    cpu = {r["batch_size"]: r["examples_per_s"] for r in cpu_rows}
    for r in sorted(gpu_rows, key=lambda r: r["batch_size"]):
        B = r["batch_size"]
        if B in cpu and r["examples_per_s"] > cpu[B]:
            return B
    return None
