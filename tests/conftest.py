"""Shared fixtures for the mlp_core tests.

* ``device``: "cpu" always, "gpu" only where a CUDA device can actually run a kernel
  (otherwise that parameter is skipped cleanly, with the reason shown by ``pytest -rs``).
* ``dtype``: float32 and float64.
* :func:`make_problem`: a small random problem (X, Y, params) whose dimensions are all
  different, so that a wrong transpose cannot hide behind a square matrix.
"""

from __future__ import annotations

import numpy
import pytest

from mlp_core.core.backend import gpu_available, to_device
from mlp_core.core.data import one_hot
from mlp_core.core.params import Params, init_params

GPU = gpu_available()
NO_GPU_REASON = "no usable CUDA device (CuPy missing or no GPU)"

# The array namespaces the suite runs on: NumPy always, CuPy where a GPU can be used.
if GPU:  # pragma: no cover - exercised only on a CUDA machine
    from mlp_core.core.backend import gpu_xp

    xp_params = [numpy, gpu_xp()]
else:
    xp_params = [numpy]

requires_gpu = pytest.mark.skipif(not GPU, reason=NO_GPU_REASON)

DEVICES = ["cpu", pytest.param("gpu", marks=[requires_gpu, pytest.mark.gpu])]

# Layer widths h = (n, h_1, ..., C) used throughout; with M = 7 examples every
# dimension of a problem differs from every other.
M = 7
SIZES_1 = (5, 4, 3)  # one hidden layer
SIZES_2 = (5, 4, 6, 3)  # two hidden layers
SIZES_3 = (5, 6, 4, 2, 3)  # three hidden layers
ALL_SIZES = (SIZES_1, SIZES_2, SIZES_3)

HIDDEN = ("relu", "sigmoid", "tanh", "identity")
LOSS_NAMES = ("cross_entropy", "binary_cross_entropy", "squared_error")


@pytest.fixture(params=DEVICES)
def device(request):
    """'cpu', or 'gpu' where a usable CUDA device exists (skipped otherwise)."""
    return request.param


@pytest.fixture(params=[numpy.float32, numpy.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(params=xp_params, ids=lambda xp: xp.__name__)
def xp(request):
    """The array namespace: numpy, plus cupy where a GPU can be used."""
    return request.param


def make_targets(rng, m: int, C: int, loss: str) -> numpy.ndarray:
    """Targets (m, C) in float64: one-hot rows, {0, 1} entries, or real numbers."""
    if loss == "cross_entropy":
        Y = numpy.zeros((m, C))
        Y[numpy.arange(m), rng.integers(0, C, size=m)] = 1.0
        return Y
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, size=(m, C)).astype(numpy.float64)
    if loss == "squared_error":
        return rng.normal(size=(m, C))
    raise ValueError(f"unknown loss {loss!r}")


def make_problem(
    m: int = M,
    sizes=SIZES_1,
    loss: str = "cross_entropy",
    seed: int = 0,
    dtype=numpy.float64,
    device: str = "cpu",
    dataset=None,
):
    """A problem ``(X, Y, params)`` on ``device`` in ``dtype``: the one factory of the suite.

    With ``dataset`` (a :class:`mlp_core.data.Dataset`, e.g. the digits), X and the
    one-hot Y are its first m rows and ``sizes`` must start with its n and end with its C.

    X is (m, n) standard normal, Y is (m, C) (one-hot rows for cross-entropy, {0, 1} for
    binary cross-entropy, real for squared error), params are He-initialised from
    ``seed`` with small non-zero biases (so that the bias terms are exercised too).
    Everything is drawn in float64 on the host, then cast and moved, so the same
    ``seed`` gives the same numbers on every device and in every dtype.
    """
    rng = numpy.random.default_rng(seed)
    n, C = sizes[0], sizes[-1]
    X = rng.normal(size=(m, n))
    Y = make_targets(rng, m, C, loss)
    if dataset is not None:
        assert (dataset.n, dataset.C) == (n, C), (dataset, sizes)
        X = dataset.X[:m].astype(numpy.float64)
        Y = one_hot(dataset.labels[:m], C)
    p = init_params(sizes, seed=seed, dtype=numpy.float64, device="cpu")
    b = {l: 0.1 * rng.normal(size=p.b[l].shape) for l in p.layers}
    params = Params(p.W, b).astype(dtype).to(device)
    X = to_device(X.astype(dtype), device)
    Y = to_device(Y.astype(dtype), device)
    return X, Y, params


@pytest.fixture
def problem():
    """The factory :func:`make_problem`, for tests that prefer a fixture."""
    return make_problem
