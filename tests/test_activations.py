"""Hidden activations σ, σ' and softmax (mlp_core.activations), and the name tables."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HIDDEN, LOSS_NAMES, SIZES_1, M, make_problem

from mlp_core import activations
from mlp_core.core.activations import (
    ACTIVATIONS,
    HIDDEN_ACTIVATIONS,
    get_activation,
    get_hidden_activation,
    softmax,
)
from mlp_core.core.batched import backprop, forward
from mlp_core.core.errors import ConfigError
from mlp_core.core.losses import LOSSES, get_loss
from mlp_core.core.single import backprop_single

HUGE = 1e4


def one_hot_rows(labels, C):
    Y = np.zeros((len(labels), C))
    Y[np.arange(len(labels)), labels] = 1.0
    return Y


# --------------------------------------------------------------------------- activations


@pytest.mark.parametrize("name", HIDDEN)
def test_derivative_matches_centred_differences(name):
    act = get_activation(name)
    rng = np.random.default_rng(0)
    Z = rng.normal(scale=2.0, size=(7, 5))
    Z[np.abs(Z) < 1e-3] = 0.5  # keep away from ReLU's kink
    eps = 1e-6
    numeric = (act.sigma(Z + eps) - act.sigma(Z - eps)) / (2 * eps)
    np.testing.assert_allclose(act.sigma_prime(Z), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", HIDDEN)
def test_activation_keeps_shape_and_dtype(name, dtype):
    act = get_activation(name)
    Z = np.linspace(-3, 3, 7 * 5).reshape(7, 5).astype(dtype)
    for f in (act.sigma, act.sigma_prime):
        out = f(Z)
        assert out.shape == Z.shape and out.dtype == dtype


def test_relu_derivative_at_zero_is_zero():
    assert activations.relu_prime(np.array([0.0]))[0] == 0.0


def test_sigmoid_matches_naive_and_never_overflows(dtype):
    Z = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(activations.sigmoid(Z), 1 / (1 + np.exp(-Z)), rtol=1e-12)
    Zh = np.array([-HUGE, -1e3, 0.0, 1e3, HUGE], dtype=dtype)
    with np.errstate(all="raise"):
        s = activations.sigmoid(Zh)
    assert s.dtype == dtype and np.all(np.isfinite(s))
    np.testing.assert_array_equal(s, np.array([0, 0, 0.5, 1, 1], dtype=dtype))


@pytest.mark.parametrize("shape", [(7, 5), (3, 4)])
def test_softmax_rows_sum_to_one(shape, dtype):
    rng = np.random.default_rng(1)
    Z = rng.normal(scale=3.0, size=shape).astype(dtype)
    P = softmax(Z, axis=-1)
    assert P.shape == shape and P.dtype == dtype
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6 if dtype == np.float32 else 1e-12)
    naive = np.exp(Z.astype(np.float64))
    naive /= naive.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(P, naive, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_softmax_columns_for_one_example():
    z = np.array([[1.0], [2.0], [-1.0], [0.5]])
    p = softmax(z, axis=0)
    assert p.shape == (4, 1)
    assert p.sum() == pytest.approx(1.0)
    assert int(np.argmax(p)) == 1


def test_softmax_never_overflows(dtype):
    Z = np.array(
        [
            [HUGE, -HUGE, 0.0],
            [HUGE, HUGE, -HUGE],
            [-HUGE, -HUGE, -HUGE],
            [HUGE, HUGE - 1, HUGE - 50],
            [-HUGE, 3.0, 2.0],
        ],
        dtype=dtype,
    )
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        P = softmax(Z, axis=1)
    assert P.dtype == dtype
    assert np.all(np.isfinite(P))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(P[0], [1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(P[1], [0.5, 0.5, 0], atol=1e-7)
    np.testing.assert_allclose(P[2], [1 / 3] * 3, rtol=1e-6)


def test_shifting_logits_changes_nothing():
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(7, 3))
    np.testing.assert_allclose(softmax(Z + 1000.0), softmax(Z), rtol=1e-12)


# --------------------------------------------------------------------------- name tables


def test_tables_list_the_expected_names():
    assert set(HIDDEN_ACTIVATIONS) == set(HIDDEN)
    assert set(ACTIVATIONS) == set(HIDDEN) | {"softmax"}
    assert set(LOSSES) == set(LOSS_NAMES)
    for name in ACTIVATIONS:
        assert get_activation(name).name == name
        assert get_activation(get_activation(name)) is get_activation(name)
    for name in LOSSES:
        assert get_loss(name).name == name
        assert get_loss(get_loss(name)) is get_loss(name)


@pytest.mark.parametrize("bad", ["relu6", "ReLU_", "", None, 3])
def test_unknown_activation_lists_valid_names(bad):
    with pytest.raises(ConfigError, match="valid names are") as info:
        get_activation(bad)
    for name in ACTIVATIONS:
        assert name in str(info.value)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", ["mse", "crossentropy", None])
def test_unknown_loss_lists_valid_names(bad):
    with pytest.raises(ConfigError, match="valid names are") as info:
        get_loss(bad)
    for name in LOSSES:
        assert name in str(info.value)


def test_unknown_names_are_refused_by_the_passes():
    X, Y, params = make_problem(M, SIZES_1, "cross_entropy", seed=6)
    with pytest.raises(ConfigError, match="unknown activation 'leaky'"):
        forward(X, params, activation="leaky")
    with pytest.raises(ConfigError, match="unknown loss 'hinge'"):
        backprop(X, Y, params, "relu", loss="hinge")


def test_softmax_refused_as_hidden_activation():
    with pytest.raises(ConfigError, match="cannot be a hidden activation") as info:
        get_hidden_activation("softmax")
    msg = str(info.value)
    for name in HIDDEN_ACTIVATIONS:
        assert name in msg
    assert "cross_entropy" in msg
    X, Y, params = make_problem(M, SIZES_1, "cross_entropy", seed=7)
    with pytest.raises(ConfigError, match="hidden activation"):
        forward(X, params, activation="softmax")
    with pytest.raises(ConfigError, match="hidden activation"):
        backprop(X, Y, params, activation="softmax")
    with pytest.raises(ConfigError, match="hidden activation"):
        backprop_single(X[0].reshape(-1, 1), Y[0].reshape(-1, 1), params, "softmax")
