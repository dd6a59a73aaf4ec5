"""Parameters W[l], b[l] for layers l = 1..L, created from a seeded NumPy generator.

``W[l]`` has shape (h_{l-1}, h_l) and ``b[l]`` has h_l entries (shape ``(h_l,)``), so that
Z^l = A^{l-1} W^l + b^l (eq. ``eq-forward-batch``). The numbers are always drawn on the
host in float64 with :func:`numpy.random.default_rng`, then cast and moved to the device:
the same seed gives the same starting point on the CPU and on the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import device_of, get_xp, resolve_device, to_device
from .validate import (
    check_choice,
    check_fits_in_memory,
    check_float_dtype,
    check_layer_keys,
    check_seed,
    check_sizes,
)

#: The variance s_l² of W[l]'s entries, from the widths h_{l-1} (fan in) and h_l (fan out).
INIT_SCHEMES = {
    "he": lambda fan_in, fan_out: 2.0 / fan_in,
    "xavier": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
}


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
        try:
            return (self.W[1].shape[0],) + tuple(self.W[l].shape[1] for l in self.layers)
        except KeyError:
            check_layer_keys(self.W, self.b)  # names the keys found and those expected
            raise

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
        """A copy on ``device`` ('cpu', 'gpu', 'auto' or None, as
        :func:`~mlp_core.backend.resolve_device` reads it).

        Always a copy: the result never shares memory with ``self``, even when the arrays
        are already on that device.
        """

        def moved(a):
            out = to_device(a, device)
            return out.copy() if out is a else out

        return self._map(moved)

    def astype(self, dtype) -> Params:
        """A copy with every array cast to ``dtype``."""
        return self._map(lambda a: a.astype(dtype))

    def copy(self) -> Params:
        return self._map(lambda a: a.copy())

    def _map(self, f) -> Params:
        return Params({l: f(w) for l, w in self.W.items()}, {l: f(v) for l, v in self.b.items()})

    def count(self) -> int:
        """Number of scalar parameters, Σ_l (h_{l-1} h_l + h_l)."""
        return parameter_count(self.sizes)


def parameter_count(sizes) -> int:
    """Σ_l (h_{l-1} h_l + h_l): the scalars in W[l] and b[l] of a network of widths h."""
    return sum(h_prev * h + h for h_prev, h in zip(sizes[:-1], sizes[1:]))


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
        None: the environment variable ``MLP_CORE_DEVICE`` if set, else the CPU, where
        the data are (:func:`~mlp_core.backend.resolve_device`, the one device rule).
    scheme : 'he' or 'xavier'
    """
    sizes = check_sizes(sizes)
    dtype = check_float_dtype(dtype)
    count = parameter_count(sizes)
    check_fits_in_memory(8 * count, f"sizes {sizes} give {count:,} parameters, which in float64")
    seed = check_seed(seed)
    device = resolve_device(device)
    variance = check_choice(scheme, INIT_SCHEMES, "init scheme")
    rng = np.random.default_rng(seed)
    W, b = {}, {}
    for l in range(1, len(sizes)):
        fan_in, fan_out = sizes[l - 1], sizes[l]
        W[l] = rng.normal(0.0, np.sqrt(variance(fan_in, fan_out)), size=(fan_in, fan_out))
        b[l] = np.zeros(fan_out)
    return Params(W, b).astype(dtype).to(device)
