"""Losses from logits, their gradients and the output error (mlp_core.losses)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LOSS_NAMES, SIZES_1, M, make_problem

from mlp_core.core.activations import get_activation
from mlp_core.core.batched import backprop, forward
from mlp_core.core.errors import LabelError
from mlp_core.core.gradcheck import numerical_gradient, relative_error
from mlp_core.core.losses import Loss, get_loss, squared_error, squared_error_grad_a

HUGE = 1e4


def one_hot_rows(labels, C):
    Y = np.zeros((len(labels), C))
    Y[np.arange(len(labels)), labels] = 1.0
    return Y


# --------------------------------------------------------------------------- losses


def naive_loss(name, Z, Y):
    m = Z.shape[0]
    if name == "cross_entropy":
        A = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
        return -(Y * np.log(A)).sum() / m
    if name == "binary_cross_entropy":
        A = 1 / (1 + np.exp(-Z))
        return -(Y * np.log(A) + (1 - Y) * np.log(1 - A)).sum() / m
    if name == "squared_error":
        return 0.5 * ((Z - Y) ** 2).sum() / m
    raise ValueError(name)


def targets(name, rng, m, C):
    if name == "cross_entropy":
        return one_hot_rows(rng.integers(0, C, m), C)
    if name == "binary_cross_entropy":
        return rng.integers(0, 2, size=(m, C)).astype(float)
    return rng.normal(size=(m, C))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_from_logits_equals_naive_formula(name):
    rng = np.random.default_rng(3)
    Z = rng.normal(scale=2.0, size=(7, 3))
    Y = targets(name, rng, 7, 3)
    value = get_loss(name).value(Z, Y)
    assert np.ndim(value) == 0
    assert float(value) == pytest.approx(naive_loss(name, Z, Y), rel=1e-12)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_is_the_mean_over_rows(name):
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(7, 3))
    Y = targets(name, rng, 7, 3)
    per_example = [float(get_loss(name).value(Z[i : i + 1], Y[i : i + 1])) for i in range(7)]
    assert float(get_loss(name).value(Z, Y)) == pytest.approx(np.mean(per_example), rel=1e-12)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_stays_finite_for_huge_logits(name, dtype):
    Z = np.array(
        [[HUGE, -HUGE, 0.0], [-HUGE, HUGE, HUGE], [-HUGE, -HUGE, -HUGE], [HUGE, HUGE, HUGE]],
        dtype=dtype,
    )
    if name == "cross_entropy":
        Y = one_hot_rows([1, 0, 2, 0], 3).astype(dtype)  # row 0 and 1: confidently wrong
    else:
        Y = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [0, 0, 1]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        J = get_loss(name).value(Z, Y)
    assert np.isfinite(J)
    assert J.dtype == dtype
    assert float(J) > 0
    if name == "cross_entropy":
        # rows: 2e4 (wrong by 2e4), 2e4 + log 2 (Y hits −1e4, best two at +1e4), log 3, log 3
        expected = (2 * HUGE + 2 * HUGE + np.log(2) + 2 * np.log(3)) / 4
        assert float(J) == pytest.approx(expected, rel=1e-6)


def test_confident_and_right_costs_nothing():
    Z = np.array([[HUGE, -HUGE, 0.0]])
    Y = one_hot_rows([0], 3)
    assert float(get_loss("cross_entropy").value(Z, Y)) == pytest.approx(0.0, abs=1e-12)
    Yb = np.array([[1.0, 0.0, 1.0]])
    Zb = np.array([[HUGE, -HUGE, HUGE]])
    assert float(get_loss("binary_cross_entropy").value(Zb, Yb)) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_gradients_stay_finite_for_huge_inputs(loss):
    X, Y, params = make_problem(M, SIZES_1, loss, seed=5)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        dW, db = backprop(X * HUGE, Y, params, "tanh", loss)
    for l in params.layers:
        assert np.all(np.isfinite(dW[l])) and np.all(np.isfinite(db[l]))


def test_output_activations_match_losses():
    assert get_loss("cross_entropy").output.name == "softmax"
    assert get_loss("binary_cross_entropy").output.name == "sigmoid"
    assert get_loss("squared_error").output.name == "identity"
    assert get_loss("cross_entropy").classification
    assert not get_loss("squared_error").classification


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_general_output_error_stays_finite_when_the_sigmoid_saturates(dtype):
    from mlp_core.core.activations import sigmoid, sigmoid_prime
    from mlp_core.core.losses import output_error_general

    Z = np.array([[40.0, 0.3], [-40.0, -0.2]], dtype=dtype)
    Y = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
    A = sigmoid(Z)
    general = output_error_general(A, Y, Z, "binary_cross_entropy", sigmoid_prime)
    assert np.isfinite(general).all()
    assert np.allclose(general, A - Y, atol=1e-6)


# --------------------------------------------------------------------------- targets


def test_cross_entropy_takes_one_hot_and_soft_rows():
    rng = np.random.default_rng(6)
    Y = one_hot_rows(rng.integers(0, 5, 7), 5)
    rule = get_loss("cross_entropy").targets
    rule(Y)
    rule(0.9 * Y + 0.1 / 5)  # label smoothing
    soft = rng.random((7, 5)).astype(np.float32)
    rule(soft / soft.sum(axis=1, keepdims=True))  # rows summing to 1 up to float32 rounding


@pytest.mark.parametrize(
    "row, found",
    [
        ([0.0, 0.0, 0.0], "entries summing to 0"),
        ([2.0, 0.0, 0.0], "entries summing to 2"),
        ([1.5, -0.5, 0.0], "a negative entry"),
        ([0.5, 0.6, 0.0], "entries summing to 1.1"),
    ],
)
def test_cross_entropy_refuses_rows_that_are_not_distributions(row, found):
    Y = one_hot_rows([0, 1, 2, 1], 3)
    Y[2] = row
    with pytest.raises(LabelError, match=rf"row 2 has {found}.*one_hot"):
        get_loss("cross_entropy").targets(Y)


def test_cross_entropy_with_one_output_points_to_binary_cross_entropy():
    with pytest.raises(LabelError, match="binary_cross_entropy"):
        get_loss("cross_entropy").targets(np.array([[0.0], [1.0]]))


def test_binary_cross_entropy_takes_probabilities_and_refuses_the_rest():
    rule = get_loss("binary_cross_entropy").targets
    rule(np.array([[0.0, 1.0, 0.25], [1.0, 1.0, 0.0]]))
    for bad in (-0.1, 1.5):
        with pytest.raises(LabelError, match=r"\[0, 1\].*row 1"):
            rule(np.array([[0.0, 1.0, 0.5], [1.0, bad, 0.0]]))


def test_squared_error_and_losses_of_your_own_take_any_finite_targets():
    assert get_loss("squared_error").targets is None
    mine = Loss("mine", get_activation("identity"), squared_error, squared_error_grad_a, False)
    X, _, params = make_problem(M, SIZES_1, "squared_error", seed=7)
    backprop(X, -10 * np.ones((M, SIZES_1[-1])), params, "tanh", mine)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_negative_control_targets_past_the_rule_give_a_loss_below_zero(loss):
    """Why the rule: a confident, right network scores below zero on twice its targets."""
    Z, Y = np.array([[10.0, -10.0, -10.0]]), np.array([[2.0, 0.0, 0.0]])
    assert float(get_loss(loss).value(Z, Y)) < -9


def test_negative_control_past_the_rule_A_minus_Y_is_not_the_cross_entropy_gradient():
    """−Σ_c y_c log a_c has gradient (Σ_c y_c) a − y in z: A − Y only for rows summing to 1."""
    X, Y, params = make_problem(M, SIZES_1, "cross_entropy", seed=8)
    for targets, agree in ((Y, True), (2 * Y, False)):
        analytic, _ = backprop(X, targets, params, check=False)
        p = params.copy()

        def J():
            return naive_loss("cross_entropy", forward(X, p, check=False).Z[p.L], targets)  # noqa: B023

        err = max(relative_error(analytic[l], numerical_gradient(J, p.W[l])) for l in p.layers)
        assert (err < 1e-7) == agree, err
