"""Losses from logits, their gradients and the output error (mlp_core.losses)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LOSS_NAMES, SIZES_1, M, make_problem

from mlp_core.core.batched import backprop
from mlp_core.core.losses import get_loss

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
