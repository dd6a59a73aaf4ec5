"""Parameters W[l], b[l] for layers l = 1..L, created from a seeded NumPy generator.

``W[l]`` has shape (h_{l-1}, h_l) and ``b[l]`` has h_l entries (shape ``(h_l,)``), so that
Z^l = A^{l-1} W^l + b^l (eq. ``eq-forward-batch``). The numbers are always drawn on the
host in float64 with :func:`numpy.random.default_rng`, then cast and moved to the device:
the same seed gives the same starting point on the CPU and on the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import default_device, device_of, get_xp, to_device
from .errors import ConfigError
from .validate import check_fits_in_memory, check_float_dtype, check_seed, whole_number

INIT_SCHEMES = ("he", "xavier")


@dataclass
class Params:
    """The weights and biases of an L-layer network, keyed by layer 1..L as in the book.

    ``W[l]``: (h_{l-1}, h_l); ``b[l]``: (h_l,). ``sizes`` is h = (h_0 = n, h_1, ..., h_L = C).
    """

    W: dict
    b: dict

    @property
    def L(self) -> int:
        """Number of layers with parameters (the input is layer 0)."""
        return len(self.W)

    @property
    def sizes(self) -> tuple:
        """h = (h_0, ..., h_L), read off the weight shapes."""
        return (self.W[1].shape[0],) + tuple(self.W[l].shape[1] for l in self.layers)

    @property
    def layers(self) -> range:
        """The layer indices 1..L."""
        return range(1, self.L + 1)

    @property
    def dtype(self):
        return self.W[1].dtype

    @property
    def device(self) -> str:
        return device_of(self.W[1])

    @property
    def xp(self):
        return get_xp(self.W[1])

    def to(self, device: str | None) -> Params:
        """A copy on ``device`` ('cpu', 'gpu', 'auto', or None for ``MLP_CORE_DEVICE``).

        Always a copy: the result never shares memory with ``self``, even when the arrays
        are already on that device.
        """

        def moved(a):
            out = to_device(a, device)
            return out.copy() if out is a else out

        return Params(
            {l: moved(w) for l, w in self.W.items()}, {l: moved(v) for l, v in self.b.items()}
        )

    def astype(self, dtype) -> Params:
        """A copy with every array cast to ``dtype``."""
        return Params(
            {l: w.astype(dtype) for l, w in self.W.items()},
            {l: v.astype(dtype) for l, v in self.b.items()},
        )

    def copy(self) -> Params:
        return Params(
            {l: w.copy() for l, w in self.W.items()}, {l: v.copy() for l, v in self.b.items()}
        )

    def count(self) -> int:
        """Number of scalar parameters, Σ_l (h_{l-1} h_l + h_l)."""
        return sum(int(self.W[l].size + self.b[l].size) for l in self.layers)


def default_init(activation: str) -> str:
    """He for ReLU (keeps the variance of Z through ReLU layers), Xavier otherwise."""
    return "he" if activation == "relu" else "xavier"


def init_params(
    sizes, seed: int = 0, dtype=np.float64, device: str | None = None, scheme: str = "he"
) -> Params:
    """W[l] ~ N(0, s_l²) of shape (h_{l-1}, h_l), b[l] = 0, for l = 1..L.

    He: s_l² = 2 / h_{l-1}; Xavier (Glorot): s_l² = 2 / (h_{l-1} + h_l).

    Parameters
    ----------
    sizes : sequence of int
        h = (h_0 = n, h_1, ..., h_L = C); at least two entries, all whole numbers ≥ 1.
    seed : int
        Seeds :func:`numpy.random.default_rng` (a whole number ≥ 0).
    dtype : np.float32 or np.float64
    device : 'cpu', 'gpu', 'auto' or None
        None: the environment variable ``MLP_CORE_DEVICE`` if set, else the CPU.
    scheme : 'he' or 'xavier'
    """
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or len(sizes) < 2 or any(whole_number(h) is None or h < 1 for h in sizes):
        raise ConfigError(
            f"sizes must be at least (n, C) with positive integer widths, got {sizes}; "
            "e.g. sizes=(64, 32, 10) for 64 inputs, one hidden layer of 32 and 10 classes."
        )
    sizes = tuple(whole_number(h) for h in sizes)
    dtype = check_float_dtype(dtype)
    count = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    check_fits_in_memory(8 * count, f"sizes {sizes} give {count:,} parameters, which in float64")
    seed = check_seed(seed)
    device = default_device(device)
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"unknown init scheme {scheme!r}; valid: {', '.join(INIT_SCHEMES)}")
    rng = np.random.default_rng(seed)
    W, b = {}, {}
    for l in range(1, len(sizes)):
        fan_in, fan_out = sizes[l - 1], sizes[l]
        var = 2.0 / fan_in if scheme == "he" else 2.0 / (fan_in + fan_out)
        W[l] = rng.normal(0.0, np.sqrt(var), size=(fan_in, fan_out))
        b[l] = np.zeros(fan_out)
    return Params(W, b).astype(dtype).to(device)
