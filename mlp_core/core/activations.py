"""Activation functions σ and their derivatives σ'(Z), always of the pre-activation Z.

Each function is elementwise and works on any shape, NumPy or CuPy, float32 or float64
(the dtype of the input is kept). ``softmax`` is the exception: it normalises along an
axis, has no elementwise derivative, and is used only as the output of the
softmax + cross-entropy loss (book, eq. ``eq-output-error-single``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .backend import get_xp
from .errors import ConfigError
from .validate import check_choice


def relu(Z):
    """σ(Z) = max(Z, 0)."""
    return get_xp(Z).maximum(Z, 0)


def relu_prime(Z):
    """σ'(Z) = 1 where Z > 0, else 0 (we take 0 at the kink Z = 0)."""
    return (Z > 0).astype(Z.dtype)


def sigmoid(Z):
    """σ(Z) = 1 / (1 + e^{-Z}), computed as (1 + tanh(Z/2)) / 2, which never overflows."""
    xp = get_xp(Z)
    return 0.5 * (1 + xp.tanh(0.5 * Z))


def sigmoid_prime(Z):
    """σ'(Z) = σ(Z) (1 − σ(Z))."""
    s = sigmoid(Z)
    return s * (1 - s)


def tanh(Z):
    """σ(Z) = tanh(Z)."""
    return get_xp(Z).tanh(Z)


def tanh_prime(Z):
    """σ'(Z) = 1 − tanh²(Z)."""
    t = get_xp(Z).tanh(Z)
    return 1 - t * t


def identity(Z):
    """σ(Z) = Z (the output of a regression network)."""
    return Z


def identity_prime(Z):
    """σ'(Z) = 1."""
    return get_xp(Z).ones_like(Z)


def softmax(Z, axis=-1):
    """Softmax along ``axis``: exp(Z − max) / Σ exp(Z − max) (eq. ``eq-softmax``).

    Subtracting the maximum first changes nothing mathematically and keeps every
    exponent ≤ 0, so nothing overflows. For a batch Z is (m, C) and ``axis=-1`` (each
    row, one example, sums to 1); for one example z is (C, 1) and ``axis=0``.
    """
    xp = get_xp(Z)
    E = xp.exp(Z - Z.max(axis=axis, keepdims=True))
    return E / E.sum(axis=axis, keepdims=True)


@dataclass(frozen=True)
class Activation:
    """A named activation σ with its derivative σ' (``prime=None`` for softmax)."""

    name: str
    sigma: Callable
    sigma_prime: Callable | None


ACTIVATIONS = {
    "relu": Activation("relu", relu, relu_prime),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_prime),
    "tanh": Activation("tanh", tanh, tanh_prime),
    "identity": Activation("identity", identity, identity_prime),
    "softmax": Activation("softmax", softmax, None),
}

#: The activations with an elementwise σ', which a hidden layer needs.
HIDDEN_ACTIVATIONS = tuple(name for name, a in ACTIVATIONS.items() if a.sigma_prime is not None)


def get_activation(name: str | Activation) -> Activation:
    """Look up an activation by name; an unknown name lists the valid ones."""
    return name if isinstance(name, Activation) else check_choice(name, ACTIVATIONS, "activation")


def get_hidden_activation(name: str | Activation) -> Activation:
    """Like :func:`get_activation`, but refuses softmax (it has no elementwise σ')."""
    act = get_activation(name)
    if act.sigma_prime is None:
        raise ConfigError(
            f"{act.name!r} cannot be a hidden activation (it has no elementwise "
            f"derivative); use one of: {', '.join(HIDDEN_ACTIVATIONS)}. Softmax belongs "
            "to the output, chosen by loss='cross_entropy'."
        )
    return act
