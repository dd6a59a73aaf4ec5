"""The batched gradients, checked three independent ways, plus negative controls.

1. Centred finite differences of the mean loss J (``mlp_core.gradcheck``).
2. The mean of the per-example gradients of the one-example code (``gradients_loop``).
3. An independent autodiff library (HIPS ``autograd``) applied to a forward pass written
   here from scratch, which shares no code with mlp_core.

Deliberately wrong gradients (a perturbation, the missing 1/m of the source notes, W in
place of W^T) must *fail* the finite-difference check. All dimensions differ (m = 7,
h = (5, 4, 3) etc.), so a wrong transpose cannot hide.
"""

from __future__ import annotations

# autograd is in the test extra: if it is missing, fail loudly rather than skip this file
import autograd  # noqa: E402
import autograd.numpy as anp  # noqa: E402
import numpy as np
import pytest
from conftest import ALL_SIZES, HIDDEN, LOSS_NAMES, SIZES_1, SIZES_2, M, make_problem
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlp_core import activations, losses
from mlp_core.core.backend import to_numpy
from mlp_core.core.batched import (
    backprop,
    backward,
    bias_gradient,
    forward,
    loss_and_gradients,
    mean_loss,
    output_error,
    weight_gradient,
)
from mlp_core.core.gradcheck import gradient_errors, gradients_agree, relative_error
from mlp_core.core.params import Params
from mlp_core.core.single import gradients_loop

GRADCHECK_TOL = 1e-7
OUTPUT_OF = {
    "cross_entropy": "softmax",
    "binary_cross_entropy": "sigmoid",
    "squared_error": "identity",
}


def max_rel(g1, g2) -> float:
    """The largest relative error over the layers of two ``(dW, db)`` pairs."""
    (dW1, db1), (dW2, db2) = g1, g2
    assert sorted(dW1) == sorted(dW2) and sorted(db1) == sorted(db2)
    return max(max(relative_error(dW1[l], dW2[l]), relative_error(db1[l], db2[l])) for l in dW1)


def assert_shapes_match_params(dW, db, params):
    for l in params.layers:
        assert dW[l].shape == params.W[l].shape, f"dW{l}"
        assert db[l].shape == params.b[l].shape, f"db{l}"


# --------------------------------------------------------------------------- finite differences


@pytest.mark.parametrize("sizes", ALL_SIZES, ids=["L2", "L3", "L4"])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_gradient_check_passes(activation, loss, sizes):
    X, Y, params = make_problem(M, sizes, loss, seed=1)
    errors = gradient_errors(X, Y, params, activation, loss)
    assert set(errors) == {f"{k}{l}" for l in params.layers for k in "Wb"}
    assert max(errors.values()) < GRADCHECK_TOL, errors
    assert gradients_agree(errors, GRADCHECK_TOL)


def test_gradient_check_accepts_explicit_grads():
    X, Y, params = make_problem(M, SIZES_2, "cross_entropy", seed=2)
    grads = backprop(X, Y, params, "tanh", "cross_entropy")
    errors = gradient_errors(X, Y, params, "tanh", "cross_entropy", grads=grads)
    assert max(errors.values()) < GRADCHECK_TOL


def test_gradient_check_leaves_params_untouched():
    X, Y, params = make_problem(M, SIZES_1, "cross_entropy", seed=3)
    before = params.copy()
    gradient_errors(X, Y, params, "sigmoid", "cross_entropy")
    for l in params.layers:
        np.testing.assert_array_equal(params.W[l], before.W[l])
        np.testing.assert_array_equal(params.b[l], before.b[l])


# --------------------------------------------------------------------------- negative controls


def test_negative_control_perturbed_gradient_fails():
    X, Y, params = make_problem(M, SIZES_2, "cross_entropy", seed=4)
    dW, db = backprop(X, Y, params, "tanh", "cross_entropy")
    rng = np.random.default_rng(0)
    bad_dW = dict(dW)
    bad_dW[2] = dW[2] + 0.1 * np.linalg.norm(dW[2]) * rng.normal(size=dW[2].shape)
    errors = gradient_errors(X, Y, params, "tanh", "cross_entropy", grads=(bad_dW, db))
    assert errors["W2"] > 1e-3, errors
    assert not gradients_agree(errors)
    # ... and only the perturbed matrix is flagged.
    assert max(v for k, v in errors.items() if k != "W2") < GRADCHECK_TOL


@pytest.mark.parametrize("m", [M, 11])
def test_negative_control_missing_one_over_m(m):
    """The source notes' dW = (A^{l-1})^T Δ^l without 1/m is the gradient of m·J, not J.

    The relative error ‖m g − g‖ / (‖m g‖ + ‖g‖) is then exactly (m − 1)/(m + 1), for
    every layer, while the biases (which the notes do divide by m) pass.
    """
    X, Y, params = make_problem(m, SIZES_2, "cross_entropy", seed=5)
    dW, db = backprop(X, Y, params, "relu", "cross_entropy")
    # The notes' formula, written out: (A^{l-1})^T Δ^l with no 1/m; it is m times ours.
    cache = forward(X, params, "relu", "cross_entropy")
    _, _, delta = backward(Y, params, cache, "relu")
    notes_dW = {l: cache.A[l - 1].T @ delta[l] for l in params.layers}
    for l in params.layers:
        np.testing.assert_allclose(notes_dW[l], m * dW[l], rtol=1e-12, atol=1e-15)

    errors = gradient_errors(X, Y, params, "relu", "cross_entropy", grads=(notes_dW, db))
    expected = (m - 1) / (m + 1)
    for l in params.layers:
        assert errors[f"W{l}"] > 1e-3
        assert errors[f"W{l}"] == pytest.approx(expected, abs=1e-7)
        assert errors[f"b{l}"] < GRADCHECK_TOL
    assert not gradients_agree(errors)


def test_negative_control_W_instead_of_W_transpose_fails_gradcheck():
    """Where W^{l+1} happens to be square the bug runs, and the gradient check catches it."""
    sizes = (5, 4, 4, 3)  # W2 is (4, 4): the only square matrix
    X, Y, params = make_problem(M, sizes, "cross_entropy", seed=7)
    act = activations.get_hidden_activation("tanh")
    cache = forward(X, params, "tanh", "cross_entropy")
    W, Z, A, L = params.W, cache.Z, cache.A, params.L
    delta = {L: output_error(A[L], Y)}
    for l in range(L - 1, 0, -1):
        W_next = W[l + 1].T if l + 1 != 2 else W[l + 1]  # the bug, in layer 1's error
        delta[l] = (delta[l + 1] @ W_next) * act.sigma_prime(Z[l])
    dW = {l: weight_gradient(A[l - 1], delta[l]) for l in params.layers}
    db = {l: bias_gradient(delta[l]) for l in params.layers}
    errors = gradient_errors(X, Y, params, "tanh", "cross_entropy", grads=(dW, db))
    assert errors["W1"] > 1e-3 and errors["b1"] > 1e-3, errors
    assert max(errors[k] for k in ("W2", "b2", "W3", "b3")) < GRADCHECK_TOL


# --------------------------------------------------------------------------- per-example loop


@pytest.mark.parametrize("sizes", ALL_SIZES, ids=["L2", "L3", "L4"])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_batched_equals_mean_of_per_example_gradients(activation, loss, sizes):
    X, Y, params = make_problem(M, sizes, loss, seed=8)
    batched = backprop(X, Y, params, activation, loss)
    loop = gradients_loop(X, Y, params, activation, loss)
    assert_shapes_match_params(*batched, params)
    assert_shapes_match_params(*loop, params)
    assert max_rel(batched, loop) < 1e-12


def test_loss_and_gradients_agrees_with_mean_loss_and_backprop():
    X, Y, params = make_problem(M, SIZES_2, "binary_cross_entropy", seed=9)
    J, dW, db = loss_and_gradients(X, Y, params, "sigmoid", "binary_cross_entropy")
    assert float(J) == pytest.approx(
        float(mean_loss(X, Y, params, "sigmoid", "binary_cross_entropy")), rel=1e-14
    )
    assert max_rel((dW, db), backprop(X, Y, params, "sigmoid", "binary_cross_entropy")) == 0


# --------------------------------------------------------------------------- autograd


def _ag_hidden(name, Z):
    if name == "relu":
        return anp.maximum(Z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + anp.exp(-Z))
    if name == "tanh":
        return anp.tanh(Z)
    if name == "identity":
        return Z
    raise ValueError(name)


def _ag_mean_loss(theta, X, Y, activation, loss):
    """J = (1/m) Σ_i L_i from scratch: Z = A @ W + b, stable log-softmax / softplus."""
    m = X.shape[0]
    A = X
    for i, (W, b) in enumerate(theta):
        Z = anp.dot(A, W) + b
        A = _ag_hidden(activation, Z) if i < len(theta) - 1 else Z
    Z = A  # the logits Z^L
    if loss == "cross_entropy":
        S = Z - anp.max(Z, axis=1, keepdims=True)
        log_softmax = S - anp.log(anp.sum(anp.exp(S), axis=1, keepdims=True))
        return -anp.sum(Y * log_softmax) / m
    if loss == "binary_cross_entropy":
        # -[y log σ(z) + (1 - y) log(1 - σ(z))] = softplus(z) - y z
        softplus = anp.logaddexp(0.0, Z)
        return anp.sum(softplus - Y * Z) / m
    if loss == "squared_error":
        return 0.5 * anp.sum((Z - Y) ** 2) / m
    raise ValueError(loss)


def autograd_gradients(X, Y, params: Params, activation, loss):
    theta = [
        (np.array(params.W[l], dtype=np.float64), np.array(params.b[l], dtype=np.float64))
        for l in params.layers
    ]
    g = autograd.grad(_ag_mean_loss)(
        theta, np.asarray(X, np.float64), np.asarray(Y, np.float64), activation, loss
    )
    dW = {l: g[l - 1][0] for l in params.layers}
    db = {l: g[l - 1][1] for l in params.layers}
    return dW, db


@pytest.mark.parametrize("sizes", ALL_SIZES, ids=["L2", "L3", "L4"])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_batched_equals_autograd(activation, loss, sizes):
    X, Y, params = make_problem(M, sizes, loss, seed=10)
    ours = backprop(X, Y, params, activation, loss)
    theirs = autograd_gradients(X, Y, params, activation, loss)
    assert max_rel(ours, theirs) < 1e-10
    # and the loss values agree too
    theta = [(params.W[l], params.b[l]) for l in params.layers]
    assert float(mean_loss(X, Y, params, activation, loss)) == pytest.approx(
        float(_ag_mean_loss(theta, X, Y, activation, loss)), rel=1e-12
    )


def test_autograd_reference_is_not_trivially_equal():
    """Sanity check of the reference itself: it sees the missing 1/m as well."""
    X, Y, params = make_problem(M, SIZES_1, "cross_entropy", seed=11)
    dW, db = autograd_gradients(X, Y, params, "relu", "cross_entropy")
    notes = ({l: M * g for l, g in backprop(X, Y, params, "relu", "cross_entropy")[0].items()}, db)
    assert max_rel((dW, db), notes) == pytest.approx((M - 1) / (M + 1), abs=1e-10)


# --------------------------------------------------------------------------- property-based


@st.composite
def random_networks(draw):
    """(m, sizes, activation, loss, seed) with m, n, every hidden width and C distinct."""
    hidden_layers = draw(st.integers(1, 3))
    dims = draw(
        st.lists(
            st.integers(2, 13), min_size=hidden_layers + 3, max_size=hidden_layers + 3, unique=True
        )
    )
    m, sizes = dims[0], tuple(dims[1:])
    activation = draw(st.sampled_from(HIDDEN))
    loss = draw(st.sampled_from(LOSS_NAMES))
    seed = draw(st.integers(0, 2**32 - 1))
    return m, sizes, activation, loss, seed


PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@PROPERTY_SETTINGS
@given(random_networks())
def test_property_batched_equals_loop_and_autograd(net):
    m, sizes, activation, loss, seed = net
    assert len({m, *sizes}) == len(sizes) + 1  # all dimensions distinct
    X, Y, params = make_problem(m, sizes, loss, seed=seed)
    ours = backprop(X, Y, params, activation, loss)
    assert_shapes_match_params(*ours, params)
    assert max_rel(ours, gradients_loop(X, Y, params, activation, loss)) < 1e-12
    assert max_rel(ours, autograd_gradients(X, Y, params, activation, loss)) < 1e-10


@PROPERTY_SETTINGS
@given(
    m=st.integers(2, 12),
    n=st.integers(2, 12),
    h=st.integers(2, 12),
    C=st.integers(2, 12),
    activation=st.sampled_from(HIDDEN),
    loss=st.sampled_from(LOSS_NAMES),
    seed=st.integers(0, 1000),
)
def test_property_distinct_dims_via_assume(m, n, h, C, activation, loss, seed):
    assume(len({m, n, h, C}) == 4)
    X, Y, params = make_problem(m, (n, h, C), loss, seed=seed)
    ours = backprop(X, Y, params, activation, loss)
    assert max_rel(ours, autograd_gradients(X, Y, params, activation, loss)) < 1e-10


# --------------------------------------------------------------------------- general δ^L


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "squared_error"])
def test_general_output_error_equals_A_minus_Y(loss):
    """δ^L = ∇_a L ⊙ σ'(z^L) collapses to A^L − Y for the matched output/loss pairs."""
    X, Y, params = make_problem(M, SIZES_2, loss, seed=12)
    cache = forward(X, params, "tanh", loss)
    L = params.L
    out = activations.get_activation(OUTPUT_OF[loss])
    assert losses.get_loss(loss).output.name == out.name
    general = losses.output_error_general(cache.A[L], Y, cache.Z[L], loss, out.sigma_prime)
    assert general.shape == (M, SIZES_2[-1])
    np.testing.assert_allclose(general, cache.A[L] - Y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(general, output_error(cache.A[L], Y), rtol=1e-12, atol=1e-12)


def test_general_output_error_is_wrong_with_a_mismatched_pair():
    """With softmax's neighbours as a control: identity derivative with BCE ≠ A − Y."""
    X, Y, params = make_problem(M, SIZES_1, "binary_cross_entropy", seed=13)
    cache = forward(X, params, "tanh", "binary_cross_entropy")
    L = params.L
    wrong = losses.output_error_general(
        cache.A[L], Y, cache.Z[L], "binary_cross_entropy", activations.identity_prime
    )
    assert relative_error(wrong, cache.A[L] - Y) > 1e-3


# --------------------------------------------------------------------------- float32


@pytest.mark.parametrize("sizes", [SIZES_1, SIZES_2], ids=["L2", "L3"])
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_float32_matches_float64_and_keeps_dtype(activation, loss, sizes):
    X32, Y32, p32 = make_problem(M, sizes, loss, seed=14, dtype=np.float32)
    X64, Y64, p64 = X32.astype(np.float64), Y32.astype(np.float64), p32.astype(np.float64)
    J32, dW32, db32 = loss_and_gradients(X32, Y32, p32, activation, loss)
    J64, dW64, db64 = loss_and_gradients(X64, Y64, p64, activation, loss)
    assert J32.dtype == np.float32
    cache = forward(X32, p32, activation, loss)
    for l in p32.layers:
        assert dW32[l].dtype == np.float32, f"dW{l} upcast to {dW32[l].dtype}"
        assert db32[l].dtype == np.float32, f"db{l} upcast to {db32[l].dtype}"
        assert cache.Z[l].dtype == np.float32 and cache.A[l].dtype == np.float32
    assert max_rel((dW32, db32), (dW64, db64)) < 1e-4
    assert float(J32) == pytest.approx(float(J64), rel=1e-5)


# --------------------------------------------------------------------------- every device


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", HIDDEN)
def test_gradients_on_device_match_numpy_float64(device, dtype, activation, loss):
    X, Y, params = make_problem(M, SIZES_2, loss, seed=15, dtype=dtype, device=device)
    assert params.device == device
    dW, db = backprop(X, Y, params, activation, loss)
    for l in params.layers:
        assert dW[l].dtype == dtype and db[l].dtype == dtype
        assert type(dW[l]) is type(params.W[l])  # stays on the device
    # reference: the same numbers in float64 NumPy
    Xr, Yr = to_numpy(X).astype(np.float64), to_numpy(Y).astype(np.float64)
    pr = params.to("cpu").astype(np.float64)
    ref = backprop(Xr, Yr, pr, activation, loss)
    host = ({l: to_numpy(g) for l, g in dW.items()}, {l: to_numpy(g) for l, g in db.items()})
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert max_rel(host, ref) < tol
