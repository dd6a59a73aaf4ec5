"""Losses, each paired with the output activation that makes δ^L = A^L − Y.

=========================  ===================  =======================================
loss                       output activation    per-example loss ℓ
=========================  ===================  =======================================
``cross_entropy``          softmax              −Σ_c y_c log a_c
``binary_cross_entropy``   sigmoid              −Σ_c [y_c log a_c + (1−y_c) log(1−a_c)]
``squared_error``          identity             ½ Σ_c (a_c − y_c)²
=========================  ===================  =======================================

For each pair the output error simplifies to δ^L = a^L − y (book, eq.
``eq-output-error-single``; for a batch Δ^L = A^L − Y, eq. ``eq-output-error-batch``).
The general form, for any elementwise σ, is δ^L = ∇_a ℓ ⊙ σ'(z^L)
(:func:`output_error_general`). Each loss also says which targets it accepts
(:attr:`Loss.targets`): any others give a wrong gradient, or a loss below zero.

Loss values are computed from the pre-activations Z^L (the "logits") with log-sum-exp
and softplus, so they never overflow and never take log(0). All values are the mean over
the m rows: J = (1/m) Σ_i ℓ_i.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .activations import Activation, get_activation
from .backend import get_xp
from .errors import LabelError
from .validate import check_choice


def logsumexp(Z, axis=-1):
    """log Σ exp(Z) along ``axis``, without overflow (shift by the maximum)."""
    xp = get_xp(Z)
    M = Z.max(axis=axis, keepdims=True)
    return (M + xp.log(xp.exp(Z - M).sum(axis=axis, keepdims=True))).squeeze(axis)


def softplus(Z):
    """log(1 + e^Z) = max(Z, 0) + log1p(e^{−|Z|}), which never overflows."""
    xp = get_xp(Z)
    return xp.maximum(Z, 0) + xp.log1p(xp.exp(-xp.abs(Z)))


def cross_entropy_from_logits(Z, Y):
    """J = (1/m) Σ_i [logsumexp(Z_i) − Σ_c Y_ic Z_ic]; Z, Y: (m, C), Y one-hot rows.

    The mean (eq. ``eq-mean-loss``) of the per-example cross-entropy −log a_y
    (eq. ``eq-cross-entropy``), written with the logits so that nothing overflows.
    """
    m = Z.shape[0]
    return (logsumexp(Z, axis=1).sum() - (Y * Z).sum()) / m


def binary_cross_entropy_from_logits(Z, Y):
    """J = (1/m) Σ_i Σ_c [softplus(Z_ic) − Y_ic Z_ic]; Z, Y: (m, C), Y in {0, 1}."""
    m = Z.shape[0]
    return (softplus(Z) - Y * Z).sum() / m


def squared_error(Z, Y):
    """J = (1/m) Σ_i ½ ‖Z_i − Y_i‖² (the output activation is the identity)."""
    m = Z.shape[0]
    delta = Z - Y
    return 0.5 * (delta * delta).sum() / m


def _clip_probability(A):
    """A kept inside (ε, 1 − ε), ε the dtype's machine epsilon: a saturated sigmoid or
    softmax rounds to exactly 0 or 1, and 1/a or 1/(1 − a) would then be infinite."""
    eps = get_xp(A).finfo(A.dtype).eps
    return A.clip(eps, 1 - eps)


def cross_entropy_grad_a(A, Y):
    """∇_a ℓ = −y / a for cross-entropy (used only to show the general δ^L form)."""
    return -Y / _clip_probability(A)


def binary_cross_entropy_grad_a(A, Y):
    """∇_a ℓ = (a − y) / (a (1 − a)) for binary cross-entropy (with a kept off 0 and 1)."""
    A = _clip_probability(A)
    return (A - Y) / (A * (1 - A))


def squared_error_grad_a(A, Y):
    """∇_a ℓ = a − y for ½ squared error."""
    return A - Y


def distribution_targets(Y, name: str = "Y") -> None:
    """Cross-entropy's targets: each row of Y (m, C) is a probability distribution over the
    C classes, entries ≥ 0 summing to 1, as a one-hot row is. Only then is
    ℓ = −Σ_c y_c log a_c ≥ 0 and δ^L = a^L − y its gradient."""
    xp = get_xp(Y)
    negative = (Y < 0).any(axis=1)
    sums = Y.sum(axis=1)
    tol = max(1e-3, 16 * float(xp.finfo(Y.dtype).eps))
    bad = negative | ~(xp.abs(sums - 1) <= tol)
    if bool(bad.any()):
        i = int(xp.argmax(bad))
        found = (
            "a negative entry" if bool(negative[i]) else f"entries summing to {float(sums[i]):g}"
        )
        hint = (
            " With one output (C = 1) the softmax is always 1: for 0/1 targets use "
            "loss='binary_cross_entropy'."
            if Y.shape[1] == 1
            else ""
        )
        raise LabelError(
            f"{name}: cross-entropy needs each row to be a probability distribution over "
            f"the classes (entries ≥ 0 summing to 1, as one-hot rows are); row {i} has "
            f"{found} ({int(bad.sum())} such row(s)). Fix: one-hot rows from "
            f"mlp_core.data.one_hot(labels, C), or normalised ones, {name} / "
            f"{name}.sum(axis=1, keepdims=True).{hint}"
        )


def probability_targets(Y, name: str = "Y") -> None:
    """Binary cross-entropy's targets: every entry of Y is a probability in [0, 1] (0/1
    labels are); outside it ℓ = −[y log a + (1 − y) log(1 − a)] has no minimum and goes
    below zero."""
    xp = get_xp(Y)
    bad = (Y < 0) | (Y > 1)
    if bool(bad.any()):
        i = int(xp.argmax(bad.any(axis=1)))
        raise LabelError(
            f"{name}: binary cross-entropy needs every entry in [0, 1] (0/1 labels, or "
            f"probabilities); {int(bad.sum())} are outside, the first in row {i}. Fix: "
            f"targets of 0 or 1 per output, or loss='squared_error' for real-valued targets."
        )


@dataclass(frozen=True)
class Loss:
    """A loss with its output activation; ``value(Z_L, Y)`` is the mean over rows.

    ``targets(Y, name)`` raises a LabelError for targets the loss cannot learn from (None:
    any finite numbers).
    """

    name: str
    output: Activation
    value: Callable
    grad_a: Callable
    classification: bool
    targets: Callable | None = None


LOSSES = {
    "cross_entropy": Loss(
        "cross_entropy",
        get_activation("softmax"),
        cross_entropy_from_logits,
        cross_entropy_grad_a,
        True,
        distribution_targets,
    ),
    "binary_cross_entropy": Loss(
        "binary_cross_entropy",
        get_activation("sigmoid"),
        binary_cross_entropy_from_logits,
        binary_cross_entropy_grad_a,
        True,
        probability_targets,
    ),
    "squared_error": Loss(
        "squared_error",
        get_activation("identity"),
        squared_error,
        squared_error_grad_a,
        False,
    ),
}


def get_loss(name: str | Loss) -> Loss:
    """Look up a loss by name; an unknown name lists the valid ones."""
    return name if isinstance(name, Loss) else check_choice(name, LOSSES, "loss")


def output_activation(loss: str | Loss, Z, axis=-1):
    """A^L = σ_out(Z^L) for the loss's output activation (softmax along ``axis``)."""
    out = get_loss(loss).output
    return out.sigma(Z, axis=axis) if out.name == "softmax" else out.sigma(Z)


def output_error(A_L, Y):
    """Δ^L = A^L − Y, (m, C) (eq. ``eq-output-error-batch``; one example: (C, 1))."""
    return A_L - Y


def output_error_general(A_L, Y, Z_L, loss: str | Loss, sigma_prime):
    """δ^L = ∇_a ℓ ⊙ σ'(Z^L), valid for any *elementwise* output activation.

    For sigmoid + binary cross-entropy and identity + squared error this equals
    A^L − Y; the book shows that cancellation in chapter 3 (eq. ``eq-output-error-general``).
    """
    return get_loss(loss).grad_a(A_L, Y) * sigma_prime(Z_L)
