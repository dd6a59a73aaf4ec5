"""Gradient checking (mlp_core.gradcheck): relative_error and gradient_errors refuse what
they cannot compare instead of broadcasting it. Its use as an oracle is in test_batched.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_problem

from mlp_core.core.batched import backprop
from mlp_core.core.errors import ConfigError, DataError, MlpCoreError, ShapeError
from mlp_core.core.gradcheck import gradient_errors, gradients_agree, relative_error


def test_relative_error_values():
    a = np.array([3.0, 4.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a, np.zeros(2)) == 1.0
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert relative_error(a, 2 * a) == pytest.approx(5 / 15)
    assert relative_error([1.0, 2.0], (1.0, 2.0)) == 0.0  # sequences are arrays too


def test_relative_error_refuses_a_column_against_a_flat_vector():
    """(3, 1) against (3,) would broadcast to (3, 3) and compare the wrong numbers."""
    v = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ShapeError, match=r"\(3, 1\).*\(3,\).*reshape"):
        relative_error(v.reshape(3, 1), v)


def test_relative_error_refuses_a_transpose_and_names_it():
    g = np.arange(6.0).reshape(2, 3)
    with pytest.raises(ShapeError, match=r"transposed\? b\.T has shape \(2, 3\)"):
        relative_error(g, g.T)


@pytest.mark.parametrize("bad", [["a", "b"], [[1.0], [1.0, 2.0]], {"x": 1}])
def test_relative_error_refuses_what_is_not_numbers(bad):
    with pytest.raises(DataError):
        relative_error(bad, bad)


def test_gradient_errors_refuses_transposed_reshaped_and_missing_gradients():
    X, Y, params = make_problem()
    dW, db = backprop(X, Y, params)
    assert gradients_agree(gradient_errors(X, Y, params, grads=(dW, db)))
    transposed = ({**dW, 1: dW[1].T}, db)
    with pytest.raises(ShapeError, match=r"W1 has shape \(5, 4\) but dW\[1\] has shape \(4, 5\)"):
        gradient_errors(X, Y, params, grads=transposed)
    column = (dW, {**db, 2: db[2].reshape(-1, 1)})
    with pytest.raises(ShapeError, match=r"db\[2\]"):
        gradient_errors(X, Y, params, grads=column)
    missing = ({1: dW[1]}, db)
    with pytest.raises(ShapeError, match=r"dW has no entry for layer\(s\) \[2\]"):
        gradient_errors(X, Y, params, grads=missing)
    with pytest.raises(ShapeError, match="pair"):
        gradient_errors(X, Y, params, grads=dW)


def test_gradient_errors_checks_its_data_as_backprop_does():
    X, Y, params = make_problem()
    with pytest.raises(MlpCoreError):
        gradient_errors(X, Y[:-1], params)
    X = X.copy()
    X[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        gradient_errors(X, Y, params)


@pytest.mark.parametrize("eps", [0, -1e-6, float("nan"), float("inf"), "1e-6", None, True])
def test_the_step_eps_must_be_a_finite_positive_number(eps):
    X, Y, params = make_problem()
    with pytest.raises(ConfigError, match=r"eps \(the step ε of the centred difference\)"):
        gradient_errors(X, Y, params, eps=eps)
    assert gradients_agree(gradient_errors(X, Y, params, eps=1e-5))


def test_relative_error_refuses_masked_arrays():
    a = np.arange(3.0)
    with pytest.raises(DataError, match="masked"):
        relative_error(np.ma.masked_array(a, mask=[0, 1, 0]), a)
