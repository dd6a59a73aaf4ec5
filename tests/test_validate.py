"""Every bad input is refused with an error that names the culprit and the fix.

Sizes h = (5, 4, 3) and m = 7: all different, so every mistake changes a shape.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import M, make_problem

from mlp_core.core import validate
from mlp_core.core.batched import backprop, forward, loss_and_gradients, mean_loss, predict
from mlp_core.core.errors import (
    ConfigError,
    DataError,
    LabelError,
    MlpCoreError,
    ParamsError,
    ParamsFileError,
    ShapeError,
    TrainingDiverged,
)
from mlp_core.core.params import Params, init_params
from mlp_core.core.single import backprop_single, forward_single, loss_single
from mlp_core.core.validate import check_column, check_params, check_same_dtype, check_X, check_Y

SIZES = (5, 4, 3)  # n = 5, h_1 = 4, C = 3; with m = 7 all distinct
N, H, C = SIZES


@pytest.fixture
def prob():
    return make_problem(M, SIZES, "cross_entropy", seed=0)


def replace(params, W=None, b=None):
    """A copy of ``params`` with some W[l] / b[l] swapped out."""
    newW, newb = dict(params.W), dict(params.b)
    newW.update(W or {})
    newb.update(b or {})
    return Params(newW, newb)


# --------------------------------------------------------------------------- the error classes


@pytest.mark.parametrize(
    "cls",
    [
        ShapeError,
        DataError,
        LabelError,
        ConfigError,
        ParamsFileError,
        TrainingDiverged,
        ParamsError,
    ],
)
def test_every_error_is_an_mlp_core_error_and_a_value_error(cls):
    assert issubclass(cls, MlpCoreError) and issubclass(cls, ValueError)
    assert issubclass(LabelError, DataError)


# --------------------------------------------------------------------------- W and b


def test_transposed_hidden_weight(prob):
    X, Y, params = prob
    bad = replace(params, W={2: params.W[2].T})  # (3, 4) instead of (4, 3)
    with pytest.raises(ShapeError, match=r"W2 has shape \(3, 4\).*transpose"):
        forward(X, bad)
    with pytest.raises(ShapeError, match="transpose"):
        backprop(X, Y, bad)


def test_transposed_first_weight(prob):
    """W1 stored as (h_1, n), the 'rows are units' convention of some texts."""
    X, Y, params = prob
    bad = replace(params, W={1: params.W[1].T})  # (4, 5) instead of (5, 4)
    with pytest.raises(ShapeError, match=r"W1.*transposed.*W1\.T") as info:
        forward(X, bad)
    assert "(5, 4)" in str(info.value)


def test_wrongly_shaped_weight_not_transposed(prob):
    X, Y, params = prob
    bad = replace(params, W={2: np.zeros((6, 3))}, b={})
    with pytest.raises(ShapeError, match=r"W2 has shape \(6, 3\)") as info:
        forward(X, bad)
    msg = str(info.value)
    assert "transpose" not in msg
    assert "layer 1 has 4 units, so W2 needs 4 rows" in msg


def test_weight_that_is_not_a_matrix(prob):
    X, Y, params = prob
    bad = replace(params, W={2: params.W[2].ravel()})
    with pytest.raises(ShapeError, match=r"W2 must be a matrix \(h_1, h_2\)"):
        forward(X, bad)


@pytest.mark.parametrize("shape", [(H, 1), (1, H)])
def test_bias_as_column_or_row(prob, shape):
    X, Y, params = prob
    bad = replace(params, b={1: params.b[1].reshape(shape)})
    with pytest.raises(ShapeError, match=re.escape(f"b1 has shape {shape}")) as info:
        forward(X, bad)
    assert f"b1 = b1.reshape({H})" in str(info.value)
    assert f"({H},)" in str(info.value)


def test_bias_of_wrong_length(prob):
    X, Y, params = prob
    bad = replace(params, b={2: np.zeros(6)})
    with pytest.raises(ShapeError, match=r"b2 has shape \(6,\).*must have shape \(3,\)") as info:
        forward(X, bad)
    assert "one entry per unit of layer 2" in str(info.value)


def test_layers_keyed_from_zero(prob):
    X, Y, params = prob
    bad = Params({l - 1: w for l, w in params.W.items()}, {l - 1: v for l, v in params.b.items()})
    with pytest.raises(ShapeError, match=r"keyed by the layers 1\.\.L") as info:
        forward(X, bad)
    msg = str(info.value)
    assert "[0, 1]" in msg and "Layer 0 is the input" in msg


def test_mixed_parameter_dtypes(prob):
    X, Y, params = prob
    bad = replace(params, b={2: params.b[2].astype(np.float32)})
    with pytest.raises(ShapeError, match="one dtype"):
        check_params(bad)


# --------------------------------------------------------------------------- X


def test_X_with_wrong_number_of_features(prob):
    X, Y, params = prob
    X6 = np.zeros((M, 6))
    with pytest.raises(ShapeError, match=r"X has 6 features.*n = 5") as info:
        forward(X6, params)
    assert "X.T" not in str(info.value)
    assert "W1 has 5 rows" in str(info.value)


def test_X_transposed_suggests_X_T(prob):
    X, Y, params = prob
    with pytest.raises(ShapeError, match=r"transposed.*X\.T"):
        forward(X.T, params)  # (5, 7)
    with pytest.raises(ShapeError, match=r"X\.T"):
        backprop(X.T, Y, params)


def test_one_dimensional_x(prob):
    X, Y, params = prob
    with pytest.raises(ShapeError, match=r"reshape\(1, -1\)") as info:
        predict(X[0], params)
    assert "(m, n)" in str(info.value)


def test_three_dimensional_X(prob):
    X, Y, params = prob
    with pytest.raises(ShapeError, match=r"one example per row"):
        forward(X.reshape(M, N, 1), params)


@pytest.mark.parametrize("int_dtype", [np.int64, np.uint8, bool])
def test_integer_X(prob, int_dtype):
    X, Y, params = prob
    with pytest.raises(DataError, match=r"astype\(np\.float(32|64)\)"):
        forward((X > 0).astype(int_dtype), params)


def test_empty_X(prob):
    X, Y, params = prob
    with pytest.raises(DataError, match=r"m = 0"):
        forward(np.zeros((0, N)), params)
    with pytest.raises(DataError, match="m = 0"):
        backprop(np.zeros((0, N)), np.zeros((0, C)), params)


def test_X_float64_with_float32_params(prob):
    X, Y, params = prob
    p32 = params.astype(np.float32)
    with pytest.raises(DataError, match=r"X is float64 but the parameters are float32") as info:
        forward(X, p32)
    assert "astype" in str(info.value)
    with pytest.raises(DataError, match="float64"):
        backprop(X, Y, p32)


def test_Y_float64_with_float32_params(prob):
    X, Y, params = prob
    p32 = params.astype(np.float32)
    with pytest.raises(DataError, match=r"Y is float64 but the parameters are float32"):
        backprop(X.astype(np.float32), Y, p32)


def test_check_X_direct():
    check_X(np.zeros((M, N)), N)  # fine: no error
    with pytest.raises(ShapeError, match=r"^inputs has 4 features"):
        check_X(np.zeros((M, 4)), N, name="inputs")


# --------------------------------------------------------------------------- Y


def test_Y_as_labels_where_one_hot_expected(prob):
    X, Y, params = prob
    labels = Y.argmax(axis=1)
    with pytest.raises(LabelError, match="one_hot") as info:
        backprop(X, labels.astype(np.float64), params)
    msg = str(info.value)
    assert f"({M},)" in msg and f"({M}, {C})" in msg
    with pytest.raises(LabelError, match="one_hot"):
        mean_loss(X, labels.astype(np.float64), params)
    with pytest.raises(LabelError):
        loss_and_gradients(X, labels, params)


def test_Y_of_shape_m_with_single_output_warns_of_broadcast():
    X, Y, params = make_problem(M, (5, 4, 1), "squared_error", seed=1)
    with pytest.raises(ShapeError, match=rf"\({M}, {M}\)") as info:
        backprop(X, Y.ravel(), params, "tanh", "squared_error")
    msg = str(info.value)
    assert "broadcast" in msg and "reshape(-1, 1)" in msg
    # it is really a shape problem, not a label problem
    assert not isinstance(info.value, LabelError)
    # and the fix works
    backprop(X, Y.ravel().reshape(-1, 1), params, "tanh", "squared_error")


def test_Y_transposed(prob):
    X, Y, params = prob
    with pytest.raises(ShapeError, match=r"Y\.T") as info:
        backprop(X, Y.T, params)
    assert f"({M}, {C})" in str(info.value)


def test_Y_with_wrong_number_of_classes(prob):
    X, Y, params = prob
    with pytest.raises(ShapeError, match=r"C = 3") as info:
        backprop(X, np.zeros((M, 6)), params)
    assert "Y.T" not in str(info.value)


def test_Y_integer_one_hot(prob):
    X, Y, params = prob
    with pytest.raises(DataError, match="floating-point"):
        check_Y(Y.astype(np.int64), M, C)


def test_Y_with_wrong_number_of_rows(prob):
    X, Y, params = prob
    with pytest.raises(ShapeError, match=r"\(m, C\) = \(7, 3\)"):
        backprop(X, Y[:5], params)


# --------------------------------------------------------------------------- one example


@pytest.mark.parametrize("shape", [(N,), (1, N)])
def test_single_example_not_a_column(prob, shape):
    X, Y, params = prob
    x = X[0].reshape(shape)
    with pytest.raises(ShapeError, match=r"x must be a column vector of shape \(5, 1\)") as info:
        forward_single(x, params)
    assert "x.reshape(-1, 1)" in str(info.value)


def test_single_example_of_wrong_length(prob):
    X, Y, params = prob
    with pytest.raises(ShapeError, match="x must have 5 entries"):
        forward_single(np.zeros((4, 1)), params)


def test_single_target_not_a_column(prob):
    X, Y, params = prob
    x = X[0].reshape(-1, 1)
    with pytest.raises(ShapeError, match=r"y must be a column vector of shape \(3, 1\)"):
        backprop_single(x, Y[0], params)
    with pytest.raises(ShapeError, match=r"y\.reshape\(-1, 1\)"):
        loss_single(x, Y[0].reshape(1, -1), params)


def test_check_column_direct():
    check_column(np.zeros((4, 1)), 4, "a")  # fine
    with pytest.raises(
        ShapeError,
        match=r"^delta must be a column vector of shape \(4, 1\); "
        r"got \(4,\): use delta\.reshape\(-1, 1\)\.$",
    ):
        check_column(np.zeros(4), 4, "delta")
    with pytest.raises(ShapeError, match=r"got \(\): z must have 4 entries"):
        check_column(3.0, 4, "z")


def test_check_same_dtype_direct(prob):
    X, Y, params = prob
    check_same_dtype(X, params)  # fine
    with pytest.raises(DataError, match=r"^A is float32"):
        check_same_dtype(X.astype(np.float32), params, name="A")


def test_good_inputs_pass_every_check(prob):
    X, Y, params = prob
    check_params(params)
    check_X(X, N)
    check_Y(Y, M, C)
    check_same_dtype(X, params)
    check_column(X[0].reshape(-1, 1), N, "x")
    dW, db = backprop(X, Y, params)
    assert dW[1].shape == (N, H) and db[2].shape == (C,)


# ------------------------------------------------- check_X and check_finite (from test_data)
def _check_X(X, n=None, name="X"):
    """What training asks of a data matrix: the shape and dtype rules, then finiteness."""
    validate.check_X(X, n, name)
    validate.check_finite(X, name)


def test_check_X_accepts_good_data():
    _check_X(np.zeros((M, N), dtype=np.float32), n=N)


def test_check_X_refuses_1d_with_reshape_hint():
    with pytest.raises(ShapeError, match=r"reshape\(1, -1\)") as e:
        _check_X(np.zeros(N))
    assert str(e.value).startswith("X ")
    with pytest.raises(ShapeError, match="x must"):
        _check_X(np.zeros(N), name="x")
    with pytest.raises(ShapeError, match="3-D"):
        _check_X(np.zeros((M, 2, 2)))


def test_check_X_refuses_integer_dtype():
    with pytest.raises(DataError, match=r"astype\(np.float64\)") as e:
        _check_X(np.zeros((M, N), dtype=np.uint8))
    assert "X has integer dtype uint8" in str(e.value)


def test_check_X_refuses_nan_and_inf_naming_count_and_row():
    X = np.zeros((M, N))
    X[3, 1] = np.nan
    X[5, 0] = np.inf
    with pytest.raises(DataError, match="2 NaN or Inf") as e:
        _check_X(X)
    assert "row 3" in str(e.value)


def test_check_X_refuses_empty():
    with pytest.raises(DataError, match="m = 0"):
        _check_X(np.zeros((0, N)))


def test_check_X_refuses_wrong_n_and_suggests_transpose():
    with pytest.raises(ShapeError, match=f"expects n = h_0 = {N}") as e:
        _check_X(np.zeros((M, C)), n=N)
    assert ".T" not in str(e.value)
    with pytest.raises(ShapeError, match=r"X\.T"):
        _check_X(np.zeros((N, M)), n=N)


def test_check_X_refuses_non_array():
    with pytest.raises(DataError, match="np.asarray"):
        _check_X([[0.0] * N] * M)


def test_an_empty_network_is_refused_with_a_shape_error():
    with pytest.raises(ShapeError, match="W is empty"):
        check_params(Params({}, {}))


def test_transposed_weight_message_gives_the_shapes():
    p = init_params((5, 4, 3), seed=0)
    bad = Params({1: p.W[1], 2: p.W[2].T.copy()}, p.b)
    with pytest.raises(ShapeError, match=r"transpose it\? W2\.T has shape \(4, 3\)"):
        check_params(bad)


# ------------------------------------------------- containers, NaN/Inf, dtypes, seeds


def test_a_pair_instead_of_params_says_what_a_params_is(prob):
    X, Y, params = prob
    for bad in ((params.W, params.b), [params.W, params.b], params.W, None, "params"):
        with pytest.raises(ParamsError, match=r"mc\.init_params.*mc\.Params"):
            backprop(X, Y, bad)


def test_params_of_lists_are_refused_with_the_fix(prob):
    X, Y, params = prob
    lists = Params(
        {l: w.tolist() for l, w in params.W.items()}, {l: v.tolist() for l, v in params.b.items()}
    )
    with pytest.raises(ParamsError, match=r"W1 must be a NumPy or CuPy array .*list.*np\.asarray"):
        predict(X, lists)


def test_integer_parameters_are_refused(prob):
    X, Y, params = prob
    ints = params.astype(np.int32)
    with pytest.raises(DataError, match="floating point"):
        backprop(X, Y, ints)


@pytest.mark.parametrize("where", ["X", "Y", "W2", "b1"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused_by_every_pass(prob, where, value):
    X, Y, params = prob
    X, Y, params = X.copy(), Y.copy(), params.copy()
    {"X": X, "Y": Y, "W2": params.W[2], "b1": params.b[1]}[where].flat[1] = value
    calls = [lambda: backprop(X, Y, params), lambda: mean_loss(X, Y, params)]
    if where != "Y":
        calls += [lambda: predict(X, params), lambda: forward(X, params)]
    for call in calls:
        with pytest.raises(DataError, match="NaN or Inf"):
            call()


def test_is_one_hot():
    assert validate.is_one_hot(np.eye(3)[[0, 2, 1, 1]])
    assert not validate.is_one_hot(np.eye(3)[[0, 2]] * 0.5)
    assert not validate.is_one_hot(np.array([[1.0, 1.0, 0.0]]))
    assert not validate.is_one_hot(np.zeros((0, 3)))
    assert not validate.is_one_hot(np.array([0.0, 1.0]))


@pytest.mark.parametrize(
    "value, expected",
    [
        (3, 3),
        (3.0, 3),
        (np.int64(3), 3),
        (np.float32(2), 2),
        (2.5, None),
        (True, None),
        ("3", None),
        (float("nan"), None),
        (float("inf"), None),
        (None, None),
    ],
)
def test_whole_number(value, expected):
    assert validate.whole_number(value) == expected


def test_check_whole_and_check_seed():
    assert validate.check_whole(4.0, "epochs") == 4
    with pytest.raises(ConfigError, match="epochs must be a whole number ≥ 1"):
        validate.check_whole(0, "epochs")
    assert validate.check_seed(3.0) == 3 and validate.check_seed(None) is None
    with pytest.raises(ConfigError, match="seed"):
        validate.check_seed(-1)


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, np.int32, "bogus", object])
def test_check_float_dtype_refuses_with_a_reason(dtype):
    with pytest.raises(ConfigError, match="np.float32 or np.float64"):
        validate.check_float_dtype(dtype)


@pytest.mark.parametrize(
    "value, bounds, ok",
    [
        (0.5, dict(above=0, below=1), True),
        (1, dict(above=0, below=1), False),
        (0, dict(above=0), False),
        (0, dict(at_least=0), True),
        (-0.0, dict(at_least=0), True),
        (np.float32(2), dict(above=0), True),
        (float("nan"), {}, False),
        (float("inf"), dict(above=0), False),
        (True, {}, False),
        ("0.5", {}, False),
        (None, {}, False),
        (7, dict(at_least=0, below=7), False),
    ],
)
def test_check_real(value, bounds, ok):
    if ok:
        got = validate.check_real(value, "v", **bounds)
        assert type(got) is float and got == value and not np.signbit(got)
    else:
        with pytest.raises(ConfigError, match=r"^v must be a finite number.*got"):
            validate.check_real(value, "v", **bounds)


def test_the_number_rules_say_their_bounds():
    with pytest.raises(
        ConfigError, match=r"lr \(the learning rate η\) .* > 0, got 0; e\.g\. lr=0\.1"
    ):
        validate.check_lr(0)
    with pytest.raises(ConfigError, match="> 0 and < 1, got 1"):
        validate.check_fraction(1, "test_fraction")
    with pytest.raises(ConfigError, match="≥ 0 and < 5, got 5"):
        validate.check_real(5, "noise", at_least=0, below=5)


@pytest.mark.parametrize(
    "sizes, expected",
    [((5, 4, 3), (5, 4, 3)), ([5.0, np.int64(4)], (5, 4)), (np.array([3, 2]), (3, 2))],
)
def test_check_sizes_accepts_sequences_of_whole_widths(sizes, expected):
    got = validate.check_sizes(sizes)
    assert got == expected and all(type(h) is int for h in got)


@pytest.mark.parametrize(
    "sizes, match",
    [
        ((5,), "at least two"),
        (5, "at least two"),
        ("5,3", "at least two"),
        ({5, 3}, "at least two"),
        ({5: 3}, r"is a dict.*mc\.Params"),
        ((5, 0, 3), r"sizes\[1\] must be a whole number ≥ 1, got 0"),
        ((5, 2.5), r"sizes\[1\] must be a whole number"),
    ],
)
def test_check_sizes_refuses_with_the_reason(sizes, match):
    with pytest.raises(ConfigError, match=match):
        validate.check_sizes(sizes)


@pytest.mark.parametrize("kind", ["matrix", "masked"])
def test_check_plain_refuses_matrices_and_masked_arrays_only(kind):
    a = np.zeros((2, 3))
    validate.check_plain(a, "A")
    bad = np.asmatrix(a) if kind == "matrix" else np.ma.masked_array(a)
    fix = r"A = np\.asarray\(A\)" if kind == "matrix" else r"A = A\.filled\(0\.0\)"
    with pytest.raises(DataError, match=fix):
        validate.check_plain(bad, "A")


@pytest.mark.parametrize(
    "bad", ["labels", "transposed", "rows", "int", "nan", "not a distribution", "float32"]
)
def test_mean_loss_checks_Y_against_a_cache(prob, bad):
    X, Y, params = prob
    cache = forward(X, params)
    Yb = {
        "labels": Y.argmax(axis=1).astype(float),
        "transposed": np.eye(M)[:C],
        "rows": Y[:-1],
        "int": Y.astype(int),
        "nan": np.where(Y == 1, np.nan, 0.0),
        "not a distribution": 2 * Y,
        "float32": Y.astype(np.float32),
    }[bad]
    with pytest.raises(MlpCoreError):
        mean_loss(X, Yb, params, cache=cache)
    assert float(mean_loss(X, Y, params, cache=cache)) == float(mean_loss(X, Y, params))
