"""Mini-batch SGD (mlp_core.train): batching, the scaled partial batch, reproducibility,
divergence, bad inputs, accuracy of the CLI's defaults, the synthetic sets, GPU parity.
"""

from __future__ import annotations

import io
import statistics

import numpy as np
import pytest
from conftest import make_problem

from mlp_core import cli, data
from mlp_core.core.activations import Activation, relu, relu_prime
from mlp_core.core.backend import gpu_available, to_numpy
from mlp_core.core.batched import backprop, predict
from mlp_core.core.batching import batch_slices
from mlp_core.core.errors import ConfigError, DataError, LabelError, ShapeError, TrainingDiverged
from mlp_core.core.params import Params, default_init, init_params
from mlp_core.fast import run_epoch_fast, supports
from mlp_core.training import History, evaluate, run_epoch, train

requires_gpu = pytest.mark.skipif(
    not gpu_available(), reason="no usable CUDA device (CuPy missing or no GPU)"
)

# m = 7 examples, h = (5, 4, 3): no two dimensions equal, so a wrong transpose cannot hide.
M, SIZES = 7, (5, 4, 3)


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


def digits_subset(ds, m=300, hidden=(32,), dtype=np.float64, seed=0):
    """The first m digits through :func:`conftest.make_problem`."""
    return make_problem(m, (ds.n, *hidden, ds.C), seed=seed, dtype=dtype, dataset=ds)


def assert_params_equal(p, q):
    for l in p.layers:
        np.testing.assert_array_equal(to_numpy(p.W[l]), to_numpy(q.W[l]))
        np.testing.assert_array_equal(to_numpy(p.b[l]), to_numpy(q.b[l]))


# ----------------------------------------------------------------------------- the steps


def _hand_written_epoch(X, Y, params, lr, B, seed, scale_last, activation):
    """Three SGD steps over the seeded order of 7 rows, batches of 3, 3 and 1; the steps
    of the full batches unscaled and the last one multiplied by ``scale_last``."""
    order = np.random.default_rng(seed).permutation(X.shape[0])
    W = {l: params.W[l].copy() for l in params.layers}
    b = {l: params.b[l].copy() for l in params.layers}
    for start, stop, scale in [(0, 3, 1.0), (3, 6, 1.0), (6, 7, scale_last)]:
        idx = order[start:stop]
        dW, db = backprop(X[idx], Y[idx], Params(W, b), activation)
        W = {l: W[l] - lr * scale * dW[l] for l in W}
        b = {l: b[l] - lr * scale * db[l] for l in b}
    return W, b


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_partial_last_batch_step_is_scaled_by_mb_over_B(activation):
    """One epoch (m = 7, B = 3) is exactly three hand-written SGD steps on the seeded
    order, the last (one example, m_b = 1) scaled by m_b / B = 1/3."""
    X, Y, params = make_problem()
    lr, B, seed = 0.5, 3, 4
    assert batch_slices(M, B) == [(0, 3), (3, 6), (6, 7)]
    trained, _ = train(
        params,
        X,
        Y,
        epochs=1,
        batch_size=B,
        lr=lr,
        seed=seed,
        activation=activation,
        progress=False,
    )

    W, b = _hand_written_epoch(X, Y, params, lr, B, seed, 1 / B, activation)
    for l in params.layers:
        np.testing.assert_allclose(trained.W[l], W[l], rtol=0, atol=1e-12)
        np.testing.assert_allclose(trained.b[l], b[l], rtol=0, atol=1e-12)

    # negative control: a full-size last step (no m_b / B) lands somewhere else
    # (with relu the last example may have no live hidden unit: then only b[L] moves)
    W1, b1 = _hand_written_epoch(X, Y, params, lr, B, seed, 1.0, activation)
    assert max(np.abs(trained.b[l] - b1[l]).max() for l in b1) > 1e-3
    if activation == "tanh":
        assert min(np.abs(trained.W[l] - W1[l]).max() for l in W1) > 1e-3


def test_full_batch_epoch_is_one_gradient_descent_step():
    """B = m: one epoch is θ ← θ − η ∂J/∂θ with the batched gradient of all m rows."""
    X, Y, params = make_problem()
    lr = 0.3
    trained, history = train(params, X, Y, epochs=1, batch_size=M, lr=lr, seed=1, progress=False)
    dW, db = backprop(X, Y, params)
    for l in params.layers:
        np.testing.assert_allclose(trained.W[l], params.W[l] - lr * dW[l], rtol=0, atol=1e-12)
        np.testing.assert_allclose(trained.b[l], params.b[l] - lr * db[l], rtol=0, atol=1e-12)
    assert history.epoch == [1]


# ----------------------------------------------------------------------------- reproducibility


def test_same_seed_same_parameters_and_history(digits):
    X, Y, params = digits_subset(digits)
    Xv, Yv, _ = digits_subset(digits)  # any held-out set will do
    kw = dict(X_val=Xv[:50], Y_val=Yv[:50], epochs=3, batch_size=16, lr=0.1, progress=False)
    p1, h1 = train(params, X, Y, seed=7, **kw)
    p2, h2 = train(params, X, Y, seed=7, **kw)
    assert_params_equal(p1, p2)
    assert h1 == h2

    p3, h3 = train(params, X, Y, seed=8, **kw)
    assert not np.array_equal(p1.W[1], p3.W[1])
    assert h1.train_loss != h3.train_loss


def test_train_does_not_modify_the_params_passed_in(digits):
    X, Y, params = digits_subset(digits)
    before = params.copy()
    trained, _ = train(params, X, Y, epochs=2, batch_size=32, lr=0.1, progress=False)
    assert_params_equal(params, before)
    assert not np.array_equal(trained.W[1], params.W[1])
    for l in params.layers:  # and the result shares no buffer with the input
        assert not np.shares_memory(trained.W[l], params.W[l])
        assert not np.shares_memory(trained.b[l], params.b[l])


# ----------------------------------------------------------------------------- history


def test_history_one_entry_per_epoch(digits):
    X, Y, params = digits_subset(digits)
    seen = []
    _, h = train(
        params,
        X[:200],
        Y[:200],
        X_val=X[200:],
        Y_val=Y[200:],
        epochs=4,
        batch_size=32,
        lr=0.1,
        progress=False,
        on_epoch=lambda epoch, hist: seen.append((epoch, len(hist.train_loss))),
    )
    assert isinstance(h, History)
    assert h.epoch == [1, 2, 3, 4]
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert len(getattr(h, name)) == 4, name
    assert all(0.0 <= a <= 1.0 for a in h.train_acc + h.val_acc)
    assert all(np.isfinite(v) and v > 0 for v in h.train_loss + h.val_loss)
    assert h.train_loss[-1] < h.train_loss[0]  # it learns
    assert seen == [(1, 1), (2, 2), (3, 3), (4, 4)]


def test_history_without_held_out_set(digits):
    X, Y, params = digits_subset(digits)
    _, h = train(params, X, Y, epochs=2, batch_size=64, lr=0.1, progress=False)
    assert len(h.train_loss) == len(h.train_acc) == 2
    assert h.val_loss == [] and h.val_acc == []


# ----------------------------------------------------------------------------- divergence


def test_huge_learning_rate_raises_training_diverged(digits):
    """The CLI's network (64, 128, 64, 10), relu, float32, on 300 digits with lr = 1000:
    the weights blow up within a few steps and the loss overflows."""
    X, Y, params = digits_subset(digits, hidden=(128, 64), dtype=np.float32)
    with pytest.raises(TrainingDiverged) as info:
        train(params, X, Y, epochs=5, batch_size=32, lr=1e3, activation="relu", progress=False)
    msg = str(info.value)
    assert "epoch 1" in msg
    assert "batch" in msg and any(ch.isdigit() for ch in msg.split("batch", 1)[1][:4])
    assert "smaller learning rate" in msg
    assert "lr=100" in msg  # a concrete suggestion


def test_divergence_on_the_last_step_of_the_last_epoch_is_reported(digits):
    """One full-batch step that sends the loss to NaN: no batch loss sees it (each is
    computed before its step), so the epoch's evaluation must."""
    X, Y, params = digits_subset(digits, dtype=np.float32)
    with pytest.raises(
        TrainingDiverged, match=r"epoch 1, after batch 1 of 1.*smaller learning rate"
    ):
        train(params, X, Y, epochs=1, batch_size=X.shape[0], lr=1e30, progress=False)


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_raises_data_error(bad):
    X, Y, params = make_problem()
    X[3, 2] = bad
    with pytest.raises(DataError, match="NaN or Inf.*row 3"):
        train(params, X, Y, progress=False)


def test_integer_X_raises_data_error():
    X, Y, params = make_problem()
    with pytest.raises(DataError, match="dtype int"):
        train(params, np.round(X).astype(np.int64), Y, progress=False)


def test_empty_X_raises_data_error():
    _, _, params = make_problem()
    with pytest.raises(DataError, match="m = 0"):
        train(params, np.empty((0, SIZES[0])), np.empty((0, SIZES[-1])), progress=False)


def test_labels_instead_of_one_hot_raise_label_error():
    X, Y, params = make_problem()
    with pytest.raises(LabelError, match="one_hot"):
        train(params, X, Y.argmax(axis=1).astype(np.float64), progress=False)


def test_flat_targets_for_one_output_raise_shape_error():
    """A (m,) target next to an (m, 1) sigmoid output would broadcast to (m, m)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(M, 5))
    y = rng.integers(0, 2, size=M).astype(np.float64)
    params = init_params((5, 4, 1), seed=0, scheme="xavier")
    with pytest.raises(ShapeError, match=rf"\({M}, {M}\).*reshape\(-1, 1\)"):
        train(params, X, y, activation="sigmoid", loss="binary_cross_entropy", progress=False)
    # and the fix works
    _, h = train(
        params,
        X,
        y.reshape(-1, 1),
        activation="sigmoid",
        loss="binary_cross_entropy",
        epochs=2,
        progress=False,
    )
    assert all(0.0 <= a <= 1.0 for a in h.train_acc)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=-3), "batch_size"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(epochs=0), "epochs"),
        (dict(epochs=1.5), "epochs"),
        (dict(lr=0.0), "learning rate"),
        (dict(lr=-0.1), "learning rate"),
        (dict(lr=float("nan")), "learning rate"),
        (dict(lr=float("inf")), "learning rate"),
        (dict(seed=2**32), "seed"),
        (dict(fast="no"), "fast must be True, False or None"),
        (dict(progress="yes"), "progress must be True, False or None"),
        (dict(on_epoch=3), "on_epoch must be a function"),
        (dict(activation="softmax"), "hidden activation"),
        (dict(loss="hinge"), "unknown loss"),
    ],
)
def test_bad_settings_are_refused_before_any_epoch(kwargs, match):
    X, Y, params = make_problem()
    ran = []
    with pytest.raises(ConfigError, match=match):
        train(params, X, Y, **{"progress": False, "epoch_fn": lambda *a: ran.append(a), **kwargs})
    assert ran == []


def test_whole_number_floats_are_accepted_for_batch_size_and_epochs():
    X, Y, params = make_problem()
    p1, h1 = train(params, X, Y, epochs=2.0, batch_size=3.0, progress=False)
    p2, h2 = train(params, X, Y, epochs=2, batch_size=3, progress=False)
    assert_params_equal(p1, p2)
    assert h1.epoch == [1, 2]


def test_held_out_set_with_wrong_features_raises_shape_error():
    X, Y, params = make_problem()
    with pytest.raises(ShapeError, match="X_val has 4 features"):
        train(params, X, Y, X_val=X[:, :4], Y_val=Y, progress=False)


def test_held_out_set_needs_both_X_val_and_Y_val():
    X, Y, params = make_problem()
    with pytest.raises(ConfigError, match="X_val and Y_val"):
        train(params, X, Y, X_val=X, progress=False)


def test_dtype_mismatch_raises_data_error():
    X, Y, params = make_problem()
    with pytest.raises(DataError, match="float32"):
        train(params, X.astype(np.float32), Y, progress=False)


# ----------------------------------------------------------------------------- accuracy


@pytest.mark.slow
def test_cli_defaults_reach_97_percent_on_the_digits(capsys):
    """The CLI's defaults (hidden 128,64, relu, batch 32, lr 0.2, 40 epochs, float32,
    test fraction 0.2), seeds 0..4, through exactly the CLI's own code path."""
    d = cli.DEFAULTS
    assert (
        d.dataset,
        d.hidden,
        d.activation,
        d.batch_size,
        d.lr,
        d.epochs,
        d.dtype,
        d.test_fraction,
    ) == ("digits", "128,64", "relu", 32, 0.2, 40, "float32", 0.2)
    accuracies = []
    for seed in range(5):
        args = cli.build_parser().parse_args(["train", "--seed", str(seed)])
        out = io.StringIO()
        accuracies.append(cli.run_train(args, out=out))
        assert "final held-out accuracy" in out.getvalue()
    with capsys.disabled():
        print(
            "\nheld-out accuracy of the CLI defaults on the digits, seeds 0..4:",
            ", ".join(f"{a:.4f}" for a in accuracies),
        )
    assert statistics.median(accuracies) >= 0.97, accuracies
    assert min(accuracies) >= 0.95, accuracies


def _synthetic_run(ds, hidden, activation, lr, batch_size, epochs, seed=0):
    X_tr, X_te, y_tr, y_te = data.train_test_split(ds.X, ds.labels, 0.25, seed=seed)
    params = init_params((ds.n, *hidden, ds.C), seed=seed, scheme=default_init(activation))
    _, h = train(
        params,
        X_tr,
        data.one_hot(y_tr, ds.C),
        X_val=X_te,
        Y_val=data.one_hot(y_te, ds.C),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        activation=activation,
        seed=seed,
        progress=False,
    )
    return h.val_acc[-1]


def test_spirals_one_hidden_layer_learns():
    acc = _synthetic_run(
        data.spirals(600, C=3, seed=0), (100,), "relu", lr=1.0, batch_size=32, epochs=100
    )
    assert acc > 0.9


def test_xor_needs_and_learns_with_a_hidden_layer():
    ds = data.xor(200, seed=0)
    assert _synthetic_run(ds, (8,), "tanh", lr=0.5, batch_size=16, epochs=50) >= 0.95
    # negative control: no hidden layer, no straight line separates XOR
    assert _synthetic_run(ds, (), "tanh", lr=0.5, batch_size=16, epochs=50) < 0.8


# ----------------------------------------------------------------------------- GPU parity


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize(
    "dtype, tol", [(np.float32, 1e-4), (np.float64, 1e-10)], ids=["float32", "float64"]
)
def test_one_epoch_on_gpu_matches_numpy(digits, dtype, tol):
    """Same initial numbers, same seeded batch order: after one epoch on the digits with
    the default sizes (64, 128, 64, 10), CuPy's parameters equal NumPy's (relative error
    ‖W_gpu − W_cpu‖ / ‖W_cpu‖ per array)."""
    sizes = (digits.n, *cli.parse_widths(cli.DEFAULTS.hidden), digits.C)
    X = digits.X.astype(dtype)
    Y = data.one_hot(digits.labels, digits.C, dtype=dtype)
    params = init_params(sizes, seed=0, dtype=dtype, device="cpu")
    kw = dict(
        epochs=1,
        batch_size=cli.DEFAULTS.batch_size,
        lr=cli.DEFAULTS.lr,
        activation="relu",
        seed=3,
        progress=False,
    )

    cpu, h_cpu = train(params, X, Y, **kw)
    gpu_params = params.to("gpu")
    assert gpu_params.device == "gpu"
    gpu, h_gpu = train(gpu_params, gpu_params.xp.asarray(X), gpu_params.xp.asarray(Y), **kw)
    assert gpu.device == "gpu"

    for l in cpu.layers:
        for name, a_cpu, a_gpu in (("W", cpu.W[l], gpu.W[l]), ("b", cpu.b[l], gpu.b[l])):
            a_gpu = to_numpy(a_gpu)
            assert a_gpu.dtype == dtype
            rel = np.linalg.norm(a_gpu - a_cpu) / np.linalg.norm(a_cpu)
            assert rel <= tol, f"{name}[{l}]: relative difference {rel:.2e} > {tol:.0e}"
    np.testing.assert_allclose(h_gpu.train_loss, h_cpu.train_loss, rtol=max(tol, 1e-12))
    # and the parameters passed in (on the GPU) were not modified
    assert_params_equal(gpu_params.to("cpu"), params)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_train_fast_path_equals_the_books_formulas(dtype, tol):
    """train() runs the fast epoch by default; with fast=False it runs the book's
    formulas (training.run_epoch) as written. Both give the same parameters and history."""
    from mlp_core.core.data import one_hot, spirals
    from mlp_core.core.gradcheck import relative_error

    ds = spirals(61, C=3, seed=3)
    X, Y = ds.X.astype(dtype), one_hot(ds.labels, 3, dtype=dtype)
    p0 = init_params((2, 9, 5, 3), seed=4, dtype=dtype)
    kw = dict(epochs=3, batch_size=8, lr=0.3, activation="tanh", seed=5, progress=False)
    p_fast, h_fast = train(p0, X, Y, fast=True, **kw)
    p_ref, h_ref = train(p0, X, Y, fast=False, **kw)
    for l in p0.layers:
        assert relative_error(p_fast.W[l], p_ref.W[l]) < tol
        assert relative_error(p_fast.b[l], p_ref.b[l]) < tol
    assert np.allclose(h_fast.train_loss, h_ref.train_loss, rtol=tol * 10)


# ----------------------------------------------------------------- the fast path


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("lr", [0.1, np.float64(0.1), np.float32(0.1)])
def test_a_numpy_scalar_learning_rate_keeps_float32(fast, lr):
    X, Y, p = make_problem(40, (2, 7, 5, 3), seed=2, dtype=np.float32)
    p2, _ = train(p, X, Y, epochs=2, batch_size=8, lr=lr, progress=False, fast=fast)
    assert all(p2.W[l].dtype == np.float32 and p2.b[l].dtype == np.float32 for l in p2.layers)


def test_train_with_an_activation_of_ones_own_uses_the_formulas():
    leaky = Activation(
        "leaky",
        lambda Z: np.where(Z > 0, Z, 0.1 * Z),
        lambda Z: np.where(Z > 0, 1.0, 0.1).astype(Z.dtype),
    )
    X, Y, p = make_problem(40, (2, 7, 5, 3), seed=2)
    assert not supports(leaky, "cross_entropy")
    p2, h = train(p, X, Y, epochs=2, batch_size=8, lr=0.1, activation=leaky, progress=False)
    assert np.isfinite(h.train_loss).all()
    with pytest.raises(ConfigError, match="fast=False"):
        train(p, X, Y, epochs=1, batch_size=8, lr=0.1, activation=leaky, progress=False, fast=True)


def test_a_look_alike_relu_is_not_replaced_by_the_builtin_kernel():
    fake = Activation("relu", lambda Z: 2 * relu(Z), lambda Z: 2 * relu_prime(Z))
    assert not supports(fake, "cross_entropy")
    assert supports("relu", "cross_entropy")


def test_fast_epoch_refuses_mixed_dtypes():
    X, Y, p = make_problem(40, (2, 7, 5, 3), seed=2, dtype=np.float32)
    with pytest.raises(ConfigError, match="one dtype"):
        run_epoch_fast(X, Y, p.astype(np.float64), np.arange(X.shape[0]), 8, 0.1)


def test_fast_epoch_leaves_the_blas_thread_count_alone():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    X, Y, p = make_problem(40, (2, 7, 5, 3), seed=2, dtype=np.float32)
    run_epoch_fast(X, Y, p, np.arange(X.shape[0]), 8, 0.1)
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert before == after


def test_squared_error_on_one_hot_targets_reports_an_accuracy():
    X, Y, p = make_problem(40, (2, 7, 5, 3), seed=2)
    _, acc = evaluate(X, Y, p, "relu", "squared_error")
    A = predict(X, p, "relu", "squared_error")
    assert acc == np.mean(A.argmax(axis=1) == Y.argmax(axis=1))  # the hits, counted by hand
    _, acc = evaluate(X, Y * 0.5 + 0.1, p, "relu", "squared_error")  # a regression
    assert np.isnan(acc)
    for targets in (Y, Y * 0.5 + 0.1):  # the training loop reports as evaluate does
        _, h = train(p, X, targets, epochs=1, lr=0.01, loss="squared_error", progress=False)
        expected = evaluate(X, targets, p, "relu", "squared_error")[1]
        assert np.isnan(h.train_acc[0]) == np.isnan(expected)


# ------------------------------------------------------- more divergence and bad input


def test_a_loss_that_grows_far_above_its_start_is_divergence():
    """lr = 1e4 on XOR: a finite loss of 813, far above the start, is divergence."""
    ds = data.xor(200, seed=0)
    X, Y, params = make_problem(200, (2, 8, 2), seed=0, dataset=ds)
    with pytest.raises(TrainingDiverged, match=r"went from .* beyond 10 ×") as info:
        train(params, X, Y, epochs=5, batch_size=32, lr=1e4, progress=False)
    assert "lr=1000" in str(info.value)


def test_a_huge_negative_loss_is_divergence_too():
    """lr = 1e4 on XOR with h = (2, 8, 2) gives, with the book's formulas, a
    cross-entropy of -1310.72 (impossible: the rounding error of logits near 1e19):
    divergence. (The fast path, which sums in another order, rounds the same logits to
    +1311, refused by size; the message's remark on negative losses needs the sign.)"""
    ds = data.xor(200, seed=0)
    params = init_params((2, 8, 2), seed=0, device="cpu")
    with pytest.raises(TrainingDiverged, match="below zero"):
        train(params, ds.X, ds.Y, epochs=5, lr=1e4, progress=False, fast=False)


def test_a_constant_huge_loss_on_the_digits_is_divergence(digits):
    """lr = 1e6 gives a constant loss of about 388,890: divergence."""
    X, Y, params = digits_subset(digits, dtype=np.float32)
    with pytest.raises(TrainingDiverged):
        train(params, X, Y, epochs=3, batch_size=32, lr=1e6, progress=False)


def test_a_good_rate_is_not_divergence(digits):
    """The negative control: the same network with lr = 0.1 trains without a refusal."""
    X, Y, params = digits_subset(digits, dtype=np.float32)
    _, h = train(params, X, Y, epochs=3, batch_size=32, lr=0.1, progress=False)
    assert h.train_loss[-1] < h.train_loss[0]


@pytest.mark.parametrize("where", ["W", "b"])
def test_nan_in_the_parameters_is_bad_input_not_a_too_large_step(where):
    X, Y, params = make_problem()
    (params.W if where == "W" else params.b)[1].flat[0] = np.nan
    with pytest.raises(DataError, match="bad input") as info:
        train(params, X, Y, epochs=1, progress=False)
    assert not isinstance(info.value, TrainingDiverged)


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble])
def test_float16_and_longdouble_train_with_the_formulas(dtype):
    """The default runs them with the formulas; fast=True refuses with advice that helps."""
    X, Y, params = make_problem(dtype=dtype)
    trained, h = train(params, X, Y, epochs=2, batch_size=3, lr=0.1, progress=False)
    assert trained.dtype == dtype and np.isfinite(h.train_loss).all()
    with pytest.raises(ConfigError, match="fast=False") as info:
        train(params, X, Y, epochs=1, batch_size=3, lr=0.1, progress=False, fast=True)
    assert "X.astype(params.dtype)" not in str(info.value)


@pytest.mark.parametrize("fast", [True, False])
def test_a_batch_larger_than_m_is_full_batch_descent(fast):
    """B > m is B = m: the step is not shrunk by m/B."""
    X, Y, params = make_problem()
    big, _ = train(params, X, Y, epochs=2, batch_size=100, lr=0.3, progress=False, fast=fast)
    full, _ = train(params, X, Y, epochs=2, batch_size=M, lr=0.3, progress=False, fast=fast)
    assert_params_equal(big, full)


@pytest.mark.parametrize("seed", [-1, 2.5, "0"])
def test_train_refuses_a_bad_seed(seed):
    X, Y, params = make_problem()
    with pytest.raises(ConfigError, match="seed"):
        train(params, X, Y, epochs=1, seed=seed, progress=False)


# ----------------------------------------------------------------- one loop, what it hands back


def test_the_loop_runs_the_epoch_function_it_is_given():
    X, Y, params = make_problem()
    kw = dict(epochs=2, batch_size=3, lr=0.3, seed=1, progress=False)
    formulas, h_formulas = train(params, X, Y, fast=False, **kw)
    given, h_given = train(params, X, Y, epoch_fn=run_epoch, **kw)
    assert_params_equal(given, formulas)
    assert h_given == h_formulas

    def no_step(X, Y, params, order, B, lr, activation, loss):
        return params, np.zeros(3)

    still, h = train(params, X, Y, epoch_fn=no_step, **kw)
    assert_params_equal(still, params)
    assert h.train_loss[0] == h.train_loss[1]
    with pytest.raises(ConfigError, match="leave fast=None"):
        train(params, X, Y, epoch_fn=run_epoch, fast=True, **kw)


@pytest.mark.parametrize("where", ["on_epoch", "inside the epoch"])
def test_an_interrupt_hands_back_the_last_finished_epoch(where):
    X, Y, params = make_problem()
    kw = dict(batch_size=3, lr=0.3, seed=2, progress=False, fast=False)
    two, h_two = train(params, X, Y, epochs=2, **kw)
    calls = []

    def epoch(*args):
        calls.append(1)
        if where == "inside the epoch" and len(calls) == 3:
            raise KeyboardInterrupt
        return run_epoch(*args)

    def after(epoch, history):
        if where == "on_epoch" and epoch == 2:
            raise KeyboardInterrupt

    kw["fast"] = None
    with pytest.raises(KeyboardInterrupt) as info:
        train(params, X, Y, epochs=5, on_epoch=after, epoch_fn=epoch, **kw)
    assert_params_equal(info.value.params, two)
    assert info.value.history == h_two


def test_divergence_hands_back_the_last_good_epoch(digits):
    X, Y, params = digits_subset(digits)
    kw = dict(batch_size=X.shape[0], lr=10, progress=False)
    with pytest.raises(TrainingDiverged, match="by epoch 3") as info:
        train(params, X, Y, epochs=8, **kw)
    good, h_good = train(params, X, Y, epochs=2, **kw)
    assert_params_equal(info.value.params, good)
    assert info.value.history == h_good


def test_evaluate_checks_its_input():
    X, Y, params = make_problem()
    with pytest.raises(LabelError, match="one_hot"):
        evaluate(X, Y.argmax(axis=1).astype(np.float64), params)
    with pytest.raises(ShapeError, match="transposed"):
        evaluate(X, Y.T, params)
    with pytest.raises(DataError, match="NaN"):
        evaluate(np.where(X > 0, np.nan, X), Y, params)
    assert evaluate(X, Y, params) == evaluate(X, Y, params, with_accuracy=True)


def test_evaluate_refuses_transposed_targets_of_a_square_batch():
    """m = C = 3: Y.T has Y's shape; its rows are no distributions (sums 2, 1, 0)."""
    X, _, params = make_problem(3, SIZES)
    Y = np.eye(3)[[0, 0, 1]]
    evaluate(X, Y, params)
    with pytest.raises(LabelError):
        evaluate(X, Y.T, params)
