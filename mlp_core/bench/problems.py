"""The benchmark's problems: the sizes, their data and parameters, and an epoch's FLOPs.

FLOPs (:func:`epoch_flops`): only the matrix products count, a multiply-add being two
FLOPs. Per example, forward 2 Σ_l h_{l-1} h_l; backward 4 Σ_l h_{l-1} h_l (the weight
gradient (A^{l-1})^T Δ^l and the error Δ^l (W^l)^T for every layer) less 2 h_0 h_1: the
error at the input, Δ^1 (W^1)^T = dJ/dA^0, is needed by nobody and computed by no
contender, so it is not counted. Bias adds, activations, softmax, the loss and the
parameter updates are O(m Σ h_l) or O(Σ h_{l-1} h_l) per batch and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core import backend
from ..core.data import load_digits, one_hot
from ..core.errors import ConfigError
from ..core.params import Params, init_params


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


def epoch_flops(m: int, sizes) -> int:
    """FLOPs of the matrix products of one epoch over m examples (see module docstring):
    m (6 Σ_l h_{l-1} h_l − 2 h_0 h_1)."""
    pairs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return int(m) * (6 * pairs - 2 * sizes[0] * sizes[1])


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
