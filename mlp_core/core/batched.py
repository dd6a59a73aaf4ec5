"""Backpropagation for a batch of m examples, the rows of X: the book's right column.

Every column vector of the one-example equations becomes a row (X stacks the (x^{(i)})^T,
eq. ``eq-stack-rows``); stacking the m rows turns
each matrix-vector product into one matrix-matrix product. There is no Python loop over
examples here, only over the L layers.

Shapes: X = A[0] is (m, n); Z[l], A[l] and delta[l] are (m, h_l); Y is (m, C).
J = (1/m) Σ_i ℓ_i is the mean loss, and *both* gradients carry the 1/m.
"""

from __future__ import annotations

from dataclasses import dataclass

from .activations import get_hidden_activation
from .losses import get_loss, output_activation, output_error
from .params import Params
from .validate import check_batch, check_params, check_targets


@dataclass
class Cache:
    """What the forward pass keeps for backprop: Z[l] (l = 1..L) and A[l] (l = 0..L)."""

    Z: dict
    A: dict


def linear(A_prev, W, b):
    """Z^l = A^{l-1} W^l + b^l: (m, h_{l-1})(h_{l-1}, h_l) + (h_l,) broadcast over the m
    rows (eq. ``eq-forward-batch``)."""
    return A_prev @ W + b


def hidden_error(delta_next, W_next, Z, sigma_prime):
    """Δ^l = (Δ^{l+1} (W^{l+1})^T) ⊙ σ'(Z^l): (m, h_{l+1})(h_{l+1}, h_l) → (m, h_l)
    (eq. ``eq-hidden-error-batch``)."""
    return (delta_next @ W_next.T) * sigma_prime(Z)


def bias_gradient(delta):
    """∂J/∂b^l = (1/m) Σ_i Δ^l_{i,:}: the sum down each column of the (m, h_l) error
    matrix, one unit at a time over all examples (eq. ``eq-bias-grad-batch``)."""
    m = delta.shape[0]
    return delta.sum(axis=0) / m


def weight_gradient(A_prev, delta):
    """∂J/∂W^l = (1/m) (A^{l-1})^T Δ^l: (h_{l-1}, m)(m, h_l) → (h_{l-1}, h_l), the sum
    over examples of the outer products a^{l-1} (δ^l)^T (eq. ``eq-weight-grad-batch``)."""
    m = delta.shape[0]
    return (A_prev.T @ delta) / m


def forward(X, params: Params, activation="relu", loss="cross_entropy", check=True) -> Cache:
    """The forward pass for a batch: A^0 = X, Z^l = A^{l-1} W^l + b^l, A^l = σ(Z^l);
    the last layer uses the loss's output activation (softmax along each row)."""
    if check:
        check_batch(X, params)
    sigma = get_hidden_activation(activation).sigma
    W, b, L = params.W, params.b, params.L
    A, Z = {0: X}, {}
    for l in range(1, L + 1):
        Z[l] = linear(A[l - 1], W[l], b[l])
        A[l] = sigma(Z[l]) if l < L else output_activation(loss, Z[l], axis=1)
    return Cache(Z, A)


def predict(X, params: Params, activation="relu", loss="cross_entropy"):
    """A^L, the (m, C) outputs (probabilities for a classifier) for X of shape (m, n)."""
    return forward(X, params, activation, loss).A[params.L]


def mean_loss(X, Y, params: Params, activation="relu", loss="cross_entropy", cache=None):
    """J = (1/m) Σ_i ℓ_i (eq. ``eq-mean-loss``), computed stably from Z^L.

    Parameters
    ----------
    X : array, shape (m, n)
    Y : array, shape (m, C)
    params : Params
    activation, loss : str or object
    cache : Cache, optional
        A forward pass of X already done: then X and params are not checked again, and Y
        is checked against the cache's output Z^L.

    Returns
    -------
    A 0-d array on the arrays' device.
    """
    targets = get_loss(loss).targets
    if cache is None:
        check_batch(X, params, Y, targets=targets)
        cache = forward(X, params, activation, loss, check=False)
    else:
        check_params(params)
        check_targets(Y, params, cache.Z[params.L].shape[0], targets=targets)
    return cache_loss(cache, Y, loss)


def cache_loss(cache: Cache, Y, loss="cross_entropy"):
    """J = (1/m) Σ_i ℓ_i of the batch whose forward pass is ``cache``, from Z^L (stable):
    a 0-d array on the arrays' device (eq. ``eq-mean-loss``). No checks: Y is (m, C)."""
    return get_loss(loss).value(cache.Z[len(cache.Z)], Y)


def backward(Y, params: Params, cache: Cache, activation="relu"):
    """Backprop through a forward cache; returns ``(dW, dJ/db, delta)`` dicts by layer.

    Δ^L = A^L − Y; Δ^l = (Δ^{l+1} (W^{l+1})^T) ⊙ σ'(Z^l);
    ∂J/∂b^l = (1/m) Σ_i Δ^l_{i,:};  ∂J/∂W^l = (1/m) (A^{l-1})^T Δ^l.
    """
    sigma_prime = get_hidden_activation(activation).sigma_prime
    W, L, Z, A = params.W, params.L, cache.Z, cache.A
    delta = {L: output_error(A[L], Y)}
    for l in range(L - 1, 0, -1):
        delta[l] = hidden_error(delta[l + 1], W[l + 1], Z[l], sigma_prime)
    dW = {l: weight_gradient(A[l - 1], delta[l]) for l in range(1, L + 1)}
    db = {l: bias_gradient(delta[l]) for l in range(1, L + 1)}
    return dW, db, delta


def backprop(X, Y, params: Params, activation="relu", loss="cross_entropy", check=True):
    """The gradients of the mean loss J for the batch (X, Y): dicts ``dW``, ``db``.

    Parameters
    ----------
    X : array, shape (m, n)
    Y : array, shape (m, C)
        One-hot rows (or targets for squared error).
    params : Params
        W[l] (h_{l-1}, h_l), b[l] (h_l,), l = 1..L.
    activation, loss : str or object
    check : bool
        Validate shapes, dtypes and finiteness first.

    Returns
    -------
    dW, db : dict
        ∂J/∂W^l of shape (h_{l-1}, h_l) and ∂J/∂b^l of shape (h_l,), l = 1..L.
    """
    _, dW, db = loss_and_gradients(X, Y, params, activation, loss, check)
    return dW, db


def loss_and_gradients(X, Y, params: Params, activation="relu", loss="cross_entropy", check=True):
    """``(J, dW, db)`` from one forward and one backward pass (what a training step needs).

    Shapes as in :func:`backprop`; J is a 0-d array on the arrays' device.
    """
    if check:
        check_batch(X, params, Y, targets=get_loss(loss).targets)
    cache = forward(X, params, activation, loss, check=False)
    J = cache_loss(cache, Y, loss)
    dW, db, _ = backward(Y, params, cache, activation)
    return J, dW, db
