"""Property-based test over the public API (issue 9): random shapes, dtypes, containers and
values (NaN, Inf, empty, huge). Every call either returns a correct result or raises an
``MlpCoreError`` subclass: never another exception, and never a hang (a per-example alarm
and hypothesis's deadline).

Run with ``--hypothesis-show-statistics`` to see how many examples each property ran.
"""

from __future__ import annotations

import contextlib
import signal

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import mlp_core as mc

HANG_SECONDS = 20
SETTINGS = settings(
    max_examples=100,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)

DTYPES = [np.float64, np.float32, np.float16, np.longdouble, np.int32, np.bool_, np.complex128]
VALUES = [0.0, 1.0, -2.5, np.nan, np.inf, -np.inf, 1e300, -1e300, 1e-300]


@contextlib.contextmanager
def no_hang(seconds=HANG_SECONDS):
    """Fail, rather than block the suite, when a call takes longer than ``seconds``."""

    def alarm(signum, frame):
        raise TimeoutError(f"the call did not return within {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@st.composite
def arrays(draw, shape=None):
    """An array (or another container) of a random shape, dtype and values."""
    if shape is None:
        ndim = draw(st.integers(0, 3))
        shape = tuple(draw(st.integers(0, 5)) for _ in range(ndim))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    a = rng.normal(size=shape)
    if a.size and draw(st.booleans()):
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from(VALUES))
    with np.errstate(all="ignore"):
        a = a.astype(dtype)
    container = draw(st.sampled_from(["array", "array", "array", "list", "tuple", "none"]))
    if container == "list":
        return a.tolist()
    if container == "tuple":
        return (a,)
    if container == "none":
        return None
    return a


@st.composite
def networks(draw):
    """Parameters: a good Params of a random network, or one of the usual mistakes."""
    L = draw(st.integers(1, 3))
    sizes = tuple(draw(st.integers(1, 5)) for _ in range(L + 1))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16]))
    p = mc.init_params(sizes, seed=draw(st.integers(0, 100)), device="cpu").astype(dtype)
    kind = draw(
        st.sampled_from(
            ["good", "good", "good", "tuple", "lists", "transposed", "int", "nan", "keys0"]
        )
    )
    if kind == "tuple":
        return (p.W, p.b)
    if kind == "lists":
        return mc.Params({l: w.tolist() for l, w in p.W.items()}, p.b)
    if kind == "transposed":
        return mc.Params({**p.W, L: p.W[L].T.copy()}, p.b)
    if kind == "int":
        return p.astype(np.int32)
    if kind == "nan":
        p.W[1].flat[0] = draw(st.sampled_from([np.nan, np.inf]))
        return p
    if kind == "keys0":
        return mc.Params({l - 1: w for l, w in p.W.items()}, p.b)
    return p


@st.composite
def problems(draw):
    """(X, Y, params): often well-formed (so results are checked), often not."""
    params = draw(networks())
    good = (
        isinstance(params, mc.Params)
        and sorted(params.W) == list(range(1, len(params.W) + 1))
        and all(hasattr(w, "shape") for w in params.W.values())
        and params.W[1].dtype.kind == "f"
    )
    if good and draw(st.integers(0, 3)) > 0:  # well-formed three times in four
        n, C = params.W[1].shape[0], params.b[len(params.b)].shape[0]
        m = draw(st.integers(0, 6))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        X = rng.normal(size=(m, n)).astype(params.dtype)
        Y = np.eye(C, dtype=params.dtype)[rng.integers(0, C, size=m)]
        if m and draw(st.integers(0, 3)) == 0:  # one special value, a quarter of the time
            (X if draw(st.booleans()) else Y).flat[0] = draw(st.sampled_from(VALUES))
    else:
        X, Y = draw(arrays()), draw(arrays())
    return X, Y, params


def call(fn, *args, **kwargs):
    """``fn(*args)``: its result, or None when it raised an MlpCoreError."""
    with no_hang():
        try:
            result = fn(*args, **kwargs)
        except mc.MlpCoreError as exc:
            event(f"{fn.__name__}: refused ({type(exc).__name__})")
            return None
    event(f"{fn.__name__}: returned")
    return result


def is_good_data(X, Y, params) -> bool:
    return (
        isinstance(params, mc.Params)
        and isinstance(X, np.ndarray)
        and isinstance(Y, np.ndarray)
        and X.dtype == Y.dtype == params.dtype
    )


@given(problems(), st.sampled_from(["relu", "sigmoid", "tanh", "identity"]))
@SETTINGS
def test_backprop_and_the_loop_return_the_same_gradients_or_refuse(problem, activation):
    X, Y, params = problem
    batched = call(mc.backprop, X, Y, params, activation)
    loop = call(mc.gradients_loop, X, Y, params, activation)
    assert (batched is None) == (loop is None), "the two must refuse the same inputs"
    if batched is None:
        return
    dW, db = batched
    for l in params.layers:
        assert dW[l].shape == params.W[l].shape and db[l].shape == params.b[l].shape
        assert dW[l].dtype == params.dtype
    if params.dtype == np.float64 and all(np.isfinite(dW[l]).all() for l in params.layers):
        for l in params.layers:
            np.testing.assert_allclose(dW[l], loop[0][l], rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(db[l], loop[1][l], rtol=1e-6, atol=1e-9)


@given(problems())
@SETTINGS
def test_forward_predict_and_the_losses_return_or_refuse(problem):
    X, Y, params = problem
    A = call(mc.predict, X, params)
    if A is not None:
        assert A.shape == (X.shape[0], params.sizes[-1]) and A.dtype == params.dtype
        with np.errstate(invalid="ignore"):
            assert np.allclose(A.sum(axis=1), 1, atol=1e-2) or not np.isfinite(A).all()
    J = call(mc.mean_loss, X, Y, params)
    if J is not None:
        assert np.ndim(J) == 0
    out = call(mc.loss_and_gradients, X, Y, params)
    assert (out is None) == (J is None)


@given(problems(), st.integers(-3, 40), st.sampled_from([1, 1, 2.0, 3, 0, -1, 1.5]))
@SETTINGS
def test_train_returns_or_refuses(problem, batch_size, epochs):
    X, Y, params = problem
    out = call(mc.train, params, X, Y, epochs=epochs, batch_size=batch_size, lr=0.1, progress=False)
    if out is not None:
        trained, history = out
        assert trained.sizes == params.sizes and trained.dtype == params.dtype
        assert len(history.train_loss) == int(epochs)


@given(
    st.one_of(
        st.lists(st.integers(1, 6), min_size=2, max_size=4),
        st.lists(st.integers(-2, 6), max_size=4),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3),
        st.sampled_from([None, 5, "5,3", (5.0, 3.0)]),
    ),
    st.sampled_from([0, 1, -1, 2.5, None, "0", 2**40]),
    st.sampled_from([np.float64, np.float32, np.float16, np.int8, "bogus", None]),
)
@SETTINGS
def test_init_params_returns_or_refuses(sizes, seed, dtype):
    p = call(mc.init_params, sizes, seed=seed, dtype=dtype, device="cpu")
    if p is not None:
        assert p.sizes == tuple(int(h) for h in sizes)
        assert p.dtype in (np.float32, np.float64)


@given(arrays(), arrays())
@SETTINGS
def test_relative_error_returns_or_refuses(a, b):
    r = call(mc.relative_error, a, b)
    if r is not None:
        assert np.shape(a) == np.shape(b)
        assert np.isnan(r) or 0.0 <= r <= 1.0


@given(problems(), st.sampled_from([None, {}, {"note": "x"}, {"sizes": 3}, {"f": object()}]))
@SETTINGS
def test_save_and_load_return_the_same_parameters_or_refuse(tmp_path_factory, problem, meta):
    _, _, params = problem
    path = tmp_path_factory.mktemp("p") / "m.npz"
    written = call(mc.save_params, path, params, meta)
    if written is None:
        assert not path.exists()
        return
    loaded, stored = call(mc.load_params, written)
    for l in params.layers:
        np.testing.assert_array_equal(loaded.W[l], params.W[l])
        np.testing.assert_array_equal(loaded.b[l], params.b[l])
    assert stored["sizes"] == list(params.sizes)


@given(
    st.one_of(arrays(), st.lists(st.integers(-1, 4), max_size=6).map(np.array)),
    st.sampled_from([None, 0, 1, 3, 5, 2.0, -1, "3"]),
)
@SETTINGS
def test_one_hot_returns_or_refuses(labels, C):
    Y = call(mc.data.one_hot, labels, C)
    if Y is not None:
        assert Y.ndim == 2 and (Y.sum(axis=1) == 1).all()


@pytest.mark.parametrize("bad", [b"", b"junk", b"PK\x03\x04broken", b"\x93NUMPY"])
def test_load_params_refuses_junk_bytes(tmp_path, bad):
    p = tmp_path / "m.npz"
    p.write_bytes(bad)
    with pytest.raises(mc.ParamsFileError):
        load_params_no_hang(p)


def load_params_no_hang(p):
    with no_hang():
        return mc.load_params(p)


# ----------------------------------------------- targets, array types, one example, data, files


def refusal(f):
    """The MlpCoreError that ``f()`` raises, or None when it returns (any other exception,
    or a hang, fails the test)."""
    with no_hang():
        try:
            f()
        except mc.MlpCoreError as exc:
            return exc
    return None


def corrupt_targets(Y, loss, kind, i, scale):
    """Y with row i made into targets the loss cannot learn from."""
    Y = Y.copy()
    if loss == "binary_cross_entropy":
        Y[i, 0] = -scale if kind == "negative" else 1 + scale
    elif kind == "negative":
        Y[i] = 0
        Y[i, 0], Y[i, -1] = 1 + scale, -scale  # still sums to 1
    elif kind == "zero row":
        Y[i] = 0
    else:  # a one-hot row times a factor other than 1
        Y[i] *= 1 + scale
    return Y


@given(
    st.sampled_from(["cross_entropy", "binary_cross_entropy"]),
    st.sampled_from(["negative", "zero row", "scaled"]),
    st.integers(0, 6),
    st.sampled_from([0.5, 1.0, 2.0, 1e3]),
    st.sampled_from([np.float64, np.float32]),
)
@SETTINGS
def test_targets_that_do_not_fit_the_loss_are_refused_everywhere(loss, kind, i, scale, dtype):
    """Cross-entropy needs rows that are distributions, binary cross-entropy entries in
    [0, 1]; other targets would give wrong gradients or a loss below zero, silently."""
    rng = np.random.default_rng(i)
    params = mc.init_params((5, 4, 3), seed=i, dtype=dtype)
    X = rng.normal(size=(7, 5)).astype(dtype)
    Y = mc.data.one_hot(rng.integers(0, 3, size=7), 3, dtype=dtype)
    bad = corrupt_targets(Y, loss, kind, i, scale)
    x, y = X[i].reshape(-1, 1), bad[i].reshape(-1, 1)
    calls = {
        "backprop": lambda: mc.backprop(X, bad, params, "tanh", loss),
        "mean_loss": lambda: mc.mean_loss(X, bad, params, "tanh", loss),
        "mean_loss(cache=)": lambda: mc.mean_loss(
            X, bad, params, "tanh", loss, cache=mc.batched.forward(X, params, "tanh", loss)
        ),
        "gradients_loop": lambda: mc.gradients_loop(X, bad, params, "tanh", loss),
        "gradient_errors": lambda: mc.gradient_errors(X, bad, params, "tanh", loss),
        "loss_single": lambda: mc.single.loss_single(x, y, params, "tanh", loss),
        "backprop_single": lambda: mc.single.backprop_single(x, y, params, "tanh", loss),
    }
    for name, f in calls.items():
        err = refusal(f)
        assert isinstance(err, mc.LabelError) and "cross-entropy needs" in str(err), (name, err)
    assert refusal(lambda: mc.backprop(X, Y, params, "tanh", loss)) is None


ENTRY_POINTS = {
    "backprop": ("XY", lambda X, Y, x, y, p: mc.backprop(X, Y, p)),
    "mean_loss": ("XY", lambda X, Y, x, y, p: mc.mean_loss(X, Y, p)),
    "predict": ("X", lambda X, Y, x, y, p: mc.predict(X, p)),
    "gradients_loop": ("XY", lambda X, Y, x, y, p: mc.gradients_loop(X, Y, p)),
    "backprop_single": ("xy", lambda X, Y, x, y, p: mc.single.backprop_single(x, y, p)),
}


@given(
    st.sampled_from(["X", "Y", "W1", "W2", "b1", "x", "y"]),
    st.sampled_from(["matrix", "masked"]),
    st.sampled_from(sorted(ENTRY_POINTS)),
)
@SETTINGS
def test_matrices_and_masked_arrays_are_refused_with_the_fix(where, kind, entry):
    """np.matrix and np.ma would reach NumPy's internals (keepdims, broadcasting) or use
    the values under a mask."""
    uses, f = ENTRY_POINTS[entry]
    if where[0] not in uses + "Wb" or (kind == "matrix" and where[0] == "b"):
        return  # that entry point has no such argument; a 1-D bias cannot be a matrix
    rng = np.random.default_rng(0)
    params = mc.init_params((5, 4, 3), seed=0)
    X = rng.normal(size=(7, 5))
    Y = mc.data.one_hot(rng.integers(0, 3, size=7), 3)
    arrays = {"X": X, "Y": Y, "x": X[:1].T.copy(), "y": Y[:1].T.copy()}
    arrays.update({f"W{l}": params.W[l] for l in params.layers})
    arrays.update({f"b{l}": params.b[l] for l in params.layers})
    a = arrays[where]
    wrapped = np.asmatrix(a) if kind == "matrix" else np.ma.masked_array(a, mask=a > 0.5)
    if where[0] in "Wb":
        {"W": params.W, "b": params.b}[where[0]][int(where[1])] = wrapped
    else:
        arrays[where] = wrapped
    err = refusal(lambda: f(arrays["X"], arrays["Y"], arrays["x"], arrays["y"], params))
    assert isinstance(err, mc.DataError) and ("np.asarray" in str(err) or ".filled" in str(err))


@given(
    st.sampled_from(["x", "y", "W", "b"]),
    st.sampled_from([np.nan, np.inf, -np.inf]),
    st.integers(0, 2),
    st.sampled_from(["forward_single", "loss_single", "backprop_single"]),
)
@SETTINGS
def test_the_one_example_functions_refuse_nan_like_the_batched_ones(where, value, k, entry):
    if entry == "forward_single" and where == "y":
        return  # a forward pass takes no target
    x, y = np.random.default_rng(k).normal(size=(5, 1)), np.eye(3)[:, [k]]
    params = mc.init_params((5, 4, 3), seed=k)
    {"x": x, "y": y, "W": params.W[2], "b": params.b[1]}[where].flat[k] = value
    args = (x, params) if entry == "forward_single" else (x, y, params)
    err = refusal(lambda: getattr(mc.single, entry)(*args))
    assert isinstance(err, mc.DataError) and "NaN or Inf" in str(err), err


@given(
    st.sampled_from(["spirals", "xor"]),
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([None, "0.1", True, -0.0, 0, 2]),
    ),
    st.one_of(st.integers(-(2**33), 2**33), st.sampled_from([None, 1.5, "0", np.int64(3)])),
    st.sampled_from([np.float64, np.float32]),
)
@SETTINGS
def test_the_toy_data_sets_return_finite_points_or_refuse(name, noise, seed, dtype):
    ds = call(getattr(mc.data, name), 12, noise=noise, seed=seed, dtype=dtype)
    if ds is not None:
        assert ds.X.shape == (12, 2) and np.isfinite(ds.X).all()


@given(st.sampled_from(["xor", "spirals", "one_hot"]), st.integers(12, 18))
@SETTINGS
def test_what_cannot_fit_in_memory_is_refused_before_it_is_allocated(name, digits):
    n = 10**digits
    calls = {
        "xor": lambda: mc.data.xor(n),
        "spirals": lambda: mc.data.spirals(n),
        "one_hot": lambda: mc.data.one_hot(np.array([0, 1, 2]), C=n),
    }
    err = refusal(calls[name])
    assert isinstance(err, mc.ConfigError) and "GiB, more than half" in str(err), err


@given(
    st.one_of(
        st.sampled_from([None, 3, 2.5, b"m.npz", ["m.npz"], object()]),
        st.integers(1, 320).map(lambda k: "n" * k),
    )
)
@SETTINGS
def test_save_and_load_take_any_valid_name_and_refuse_the_rest_readably(tmp_path_factory, name):
    """Any name the file system takes is saved and loaded back (the temporary file's name
    stays short); anything else is a ParamsFileError of a readable length."""
    folder = tmp_path_factory.mktemp("names")
    params = mc.init_params((5, 4, 3), seed=0)
    valid = isinstance(name, str) and len(name) <= 255
    path = folder / name if isinstance(name, str) else name
    for f in (lambda: mc.save_params(path, params), lambda: mc.load_params(path)):
        err = refusal(f)
        assert (err is None) == valid, err
        assert err is None or (isinstance(err, mc.ParamsFileError) and len(str(err)) < 400)
    assert [p.name for p in folder.iterdir()] == ([name] if valid else [])


@given(
    problems(),
    st.sampled_from([None, True, False, "no", 1, 0.0]),
    st.sampled_from([None, "print", 3, lambda epoch, history: None]),
    st.sampled_from([None, False, "yes"]),
)
@SETTINGS
def test_train_settings_of_any_kind_train_or_are_refused_before_an_epoch(
    problem, fast, on_epoch, progress
):
    X, Y, params = problem
    ran = []
    with pytest.MonkeyPatch.context() as mp, no_hang():
        for name in ("run_epoch", "run_epoch_fast"):
            real = getattr(mc.training, name)
            mp.setattr(mc.training, name, lambda *a, real=real, **k: ran.append(1) or real(*a, **k))
        try:
            mc.train(
                params, X, Y, epochs=2, batch_size=2, lr=0.1, fast=fast, progress=progress,
                on_epoch=on_epoch,
            )  # fmt: skip
        except mc.TrainingDiverged:
            event("train: diverged")
            return
        except mc.MlpCoreError as exc:
            event(f"train: refused ({type(exc).__name__})")
            assert ran == []
            return
    event("train: returned")
    assert len(ran) == 2


@given(problems(), st.sampled_from(["cross_entropy", "squared_error", "binary_cross_entropy"]))
@SETTINGS
def test_evaluate_returns_or_refuses(problem, loss):
    X, Y, params = problem
    out = call(mc.evaluate, X, Y, params, "relu", loss)
    if out is not None:
        J, acc = out
        assert np.shape(Y) == (np.shape(X)[0], params.sizes[-1])
        assert np.isnan(acc) or 0.0 <= acc <= 1.0
