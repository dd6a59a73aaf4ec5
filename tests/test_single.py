"""The one-example formulas (mlp_core.single) and the per-example loop's checks.

That the loop's gradients equal the batched ones is in test_batched.py (an oracle there).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import M, make_problem

from mlp_core.core.errors import DataError, LabelError, MlpCoreError, ShapeError
from mlp_core.core.params import Params, init_params
from mlp_core.core.single import backprop_single, forward_single, gradients_loop, loss_single


def test_single_example_refuses_a_dtype_mix():
    p = init_params((5, 4, 3), seed=0)
    x, y = np.ones((5, 1), np.float32), np.eye(3)[:, :1].astype(np.float32)
    with pytest.raises(DataError, match="float32"):
        backprop_single(x, y, p)
    with pytest.raises(DataError, match="m = 0"):
        gradients_loop(np.zeros((0, 5)), np.zeros((0, 3)), p)


# ----------------------------------------------------- the loop checks as backprop does


@pytest.mark.parametrize("rows, error", [(M + 2, ShapeError), (M - 2, ShapeError)])
def test_gradients_loop_refuses_Y_with_other_rows(rows, error):
    X, Y, params = make_problem()
    Y2 = np.zeros((rows, Y.shape[1]))
    Y2[:, 0] = 1
    with pytest.raises(error, match=r"\(m, C\)"):
        gradients_loop(X, Y2, params)


def test_gradients_loop_refuses_labels_with_the_one_hot_advice():
    X, _, params = make_problem()
    with pytest.raises(LabelError, match="one_hot"):
        gradients_loop(X, np.zeros(M), params)


@pytest.mark.parametrize("where", ["X", "Y", "W", "b"])
def test_gradients_loop_refuses_nan_and_inf(where):
    X, Y, params = make_problem()
    if where == "X":
        X = X.copy()
        X[2, 1] = np.nan
    elif where == "Y":
        Y = Y.copy()
        Y[3, 0] = np.inf
    elif where == "W":
        params.W[1][0, 0] = np.nan
    else:
        params.b[1][0] = -np.inf
    with pytest.raises(DataError, match="NaN or Inf"):
        gradients_loop(X, Y, params)


def test_gradients_loop_refuses_a_pair_instead_of_params():
    X, Y, params = make_problem()
    with pytest.raises(MlpCoreError, match="mc.Params"):
        gradients_loop(X, Y, (params.W, params.b))


def test_one_example_pass_shapes_follow_the_book():
    X, Y, params = make_problem()
    x, y = X[0].reshape(-1, 1), Y[0].reshape(-1, 1)
    z, a = forward_single(x, params)
    assert [z[l].shape for l in params.layers] == [(4, 1), (3, 1)]
    assert a[0] is x and np.isclose(a[params.L].sum(), 1.0)  # softmax over the column
    dW, db = backprop_single(x, y, params)
    assert [dW[l].shape for l in params.layers] == [(5, 4), (4, 3)]
    assert [db[l].shape for l in params.layers] == [(4,), (3,)]
    assert loss_single(x, y, params) == pytest.approx(-np.log(a[2][y.argmax(), 0]))


def test_check_false_runs_the_formulas_unchecked():
    X, Y, params = make_problem()
    x, y = X[0].reshape(-1, 1), Y[0].reshape(-1, 1)
    x_nan = x.copy()
    x_nan[1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        backprop_single(x_nan, y, params)
    dW, _ = backprop_single(x_nan, y, params, check=False)
    assert np.isnan(dW[1][1]).all()  # garbage in, garbage out: the caller's choice
    for f in (backprop_single, loss_single):
        np.testing.assert_equal(f(x, y, params, check=False), f(x, y, params))
    np.testing.assert_equal(forward_single(x, params, check=False), forward_single(x, params))


def count_size_reads(monkeypatch):
    """A counter of reads of ``Params.sizes`` (every shape check reads it)."""
    reads = []
    sizes = Params.sizes.fget
    monkeypatch.setattr(Params, "sizes", property(lambda p: reads.append(1) or sizes(p)))
    return reads


def test_gradients_loop_checks_once_not_once_per_example(monkeypatch):
    reads = count_size_reads(monkeypatch)
    per_m = {}
    for m in (M, 3 * M):
        X, Y, params = make_problem(m)
        reads.clear()
        gradients_loop(X, Y, params)
        per_m[m] = len(reads)
    assert per_m[M] == per_m[3 * M] > 0, per_m


@pytest.mark.parametrize(
    "y", [[[0.0], [0.0], [0.0]], [[2.0], [0.0], [0.0]], [[1.5], [-0.5], [0.0]]]
)
def test_one_example_targets_must_fit_the_loss(y):
    X, _, params = make_problem()
    x = X[0].reshape(-1, 1)
    for f in (backprop_single, loss_single):
        with pytest.raises(LabelError, match="probability distribution"):
            f(x, np.array(y), params)
