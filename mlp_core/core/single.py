"""Backpropagation for one example, with column vectors: the book's left column.

A literal transcription of the one-example equations (chapters 2 and 3). It is the
reference the batched code is tested against, and the "slow loop" of chapter 4: training
with it means one call per example.

Shapes: x is (n, 1); z[l], a[l] and delta[l] are (h_l, 1); y is (C, 1).
"""

from __future__ import annotations

from .activations import get_hidden_activation
from .losses import get_loss, output_activation
from .params import Params
from .validate import check_batch, check_example


def forward_single(x, params: Params, activation="relu", loss="cross_entropy", check=True):
    """z^l = (W^l)^T a^{l-1} + b^l, a^l = σ(z^l), with a^0 = x (eq. ``eq-forward-single``).

    x: (n, 1). Returns dicts ``z`` (l = 1..L) and ``a`` (l = 0..L), each (h_l, 1). The last
    layer uses the loss's output activation (softmax over the C entries of the column).
    ``check=False`` skips the checks of x and the parameters (for a caller that did them).
    """
    if check:
        check_example(x, params)
    sigma = get_hidden_activation(activation).sigma
    W, b, L = params.W, params.b, params.L
    a, z = {0: x}, {}
    for l in range(1, L + 1):
        z[l] = W[l].T @ a[l - 1] + b[l].reshape(-1, 1)
        a[l] = sigma(z[l]) if l < L else output_activation(loss, z[l], axis=0)
    return z, a


def loss_single(x, y, params: Params, activation="relu", loss="cross_entropy", check=True):
    """The loss ℓ of one example (a Python float).

    Parameters
    ----------
    x : array, shape (n, 1)
    y : array, shape (C, 1)
    params : Params
    activation, loss : str or object
    check : bool
        Validate x, y and the parameters first (shapes, dtypes, finite, y fits the loss).
    """
    if check:
        check_example(x, params, y, get_loss(loss).targets)
    z, _ = forward_single(x, params, activation, loss, check=False)
    return float(get_loss(loss).value(z[params.L].T, y.T))


def backprop_single(x, y, params: Params, activation="relu", loss="cross_entropy", check=True):
    """The gradients of one example's loss ℓ (eqs. ``eq-output-error-single`` to
    ``eq-weight-grad-single``).

    δ^L = a^L − y (``eq-output-error-single``);
    δ^l = (W^{l+1} δ^{l+1}) ⊙ σ'(z^l) (``eq-hidden-error-single``);
    ∂ℓ/∂b^l = δ^l (``eq-bias-grad-single``);
    ∂ℓ/∂W^l = a^{l-1} (δ^l)^T, an (h_{l-1}, 1)(1, h_l) outer product (``eq-weight-grad-single``).

    Returns ``dW`` (dict of (h_{l-1}, h_l)) and ``db`` (dict of (h_l,), stored flat like b).
    ``check=False`` skips the checks of x, y and the parameters (for a caller that did them).
    """
    if check:
        check_example(x, params, y, get_loss(loss).targets)
    sigma_prime = get_hidden_activation(activation).sigma_prime
    z, a = forward_single(x, params, activation, loss, check=False)
    W, L = params.W, params.L
    delta = {L: a[L] - y}
    for l in range(L - 1, 0, -1):
        delta[l] = (W[l + 1] @ delta[l + 1]) * sigma_prime(z[l])
    dW = {l: a[l - 1] @ delta[l].T for l in range(1, L + 1)}
    db = {l: delta[l][:, 0] for l in range(1, L + 1)}
    return dW, db


def gradients_loop(X, Y, params: Params, activation="relu", loss="cross_entropy"):
    """The gradients of the mean loss J = (1/m) Σ_i ℓ_i by looping over the examples.

    Row i of X and of Y becomes the column x, y of :func:`backprop_single`; the
    per-example gradients are averaged. This is what the batched code must equal
    (chapter 10, eq. ``eq-batch-mean``), and it is slow: m small matrix-vector products
    per layer instead of one matrix-matrix product.

    Parameters
    ----------
    X : array, shape (m, n)
    Y : array, shape (m, C)
        Checked once, as :func:`mlp_core.batched.backprop` checks them; the loop then
        runs unchecked.
    params : Params
        W[l] (h_{l-1}, h_l), b[l] (h_l,), l = 1..L.
    activation, loss : str or object

    Returns
    -------
    dW, db : dict
        ∂J/∂W^l of shape (h_{l-1}, h_l) and ∂J/∂b^l of shape (h_l,), l = 1..L.
    """
    check_batch(X, params, Y, targets=get_loss(loss).targets)
    m = X.shape[0]
    dW = {l: 0 * params.W[l] for l in params.layers}
    db = {l: 0 * params.b[l] for l in params.layers}
    for i in range(m):
        x, y = X[i].reshape(-1, 1), Y[i].reshape(-1, 1)
        dW_i, db_i = backprop_single(x, y, params, activation, loss, check=False)
        for l in params.layers:
            dW[l] += dW_i[l]
            db[l] += db_i[l]
    return {l: g / m for l, g in dW.items()}, {l: g / m for l, g in db.items()}
