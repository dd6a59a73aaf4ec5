"""Regression tests for defects found in review: each fails on the old code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlp_core import bench
from mlp_core.core.activations import Activation, relu, relu_prime
from mlp_core.core.data import one_hot, spirals
from mlp_core.core.errors import ConfigError, DataError, ShapeError
from mlp_core.core.io import save_params
from mlp_core.core.params import Params, init_params
from mlp_core.core.single import backprop_single, gradients_loop
from mlp_core.core.validate import check_params
from mlp_core.fast import run_epoch_fast, supports
from mlp_core.training import evaluate, train

ROOT = Path(__file__).resolve().parents[1]


def problem(dtype=np.float32, m=40):
    ds = spirals(m, C=3, seed=1)
    return (
        ds.X.astype(dtype),
        one_hot(ds.labels, 3, dtype=dtype),
        init_params((2, 7, 5, 3), seed=2, dtype=dtype),
    )


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("lr", [0.1, np.float64(0.1), np.float32(0.1)])
def test_a_numpy_scalar_learning_rate_keeps_float32(fast, lr):
    X, Y, p = problem(np.float32)
    p2, _ = train(p, X, Y, epochs=2, batch_size=8, lr=lr, progress=False, fast=fast)
    assert all(p2.W[l].dtype == np.float32 and p2.b[l].dtype == np.float32 for l in p2.layers)


def test_train_with_an_activation_of_ones_own_uses_the_formulas():
    leaky = Activation(
        "leaky",
        lambda Z: np.where(Z > 0, Z, 0.1 * Z),
        lambda Z: np.where(Z > 0, 1.0, 0.1).astype(Z.dtype),
    )
    X, Y, p = problem(np.float64)
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
    X, Y, p = problem(np.float32)
    with pytest.raises(ConfigError, match="one dtype"):
        run_epoch_fast(X, Y, p.astype(np.float64), np.arange(X.shape[0]), 8, 0.1)


def test_fast_epoch_leaves_the_blas_thread_count_alone():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    X, Y, p = problem(np.float32)
    run_epoch_fast(X, Y, p, np.arange(X.shape[0]), 8, 0.1)
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert before == after


def test_saved_parameters_are_readable_by_others_as_umask_allows(tmp_path):
    p = init_params((5, 4, 3), seed=0)
    path = save_params(tmp_path / "model.npz", p.W, p.b, {})
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_params_to_cpu_is_a_copy():
    p = init_params((5, 4, 3), seed=0)
    q = p.to("cpu")
    q.W[1][0, 0] += 1.0
    assert p.W[1][0, 0] != q.W[1][0, 0]


def test_an_empty_network_is_refused_with_a_shape_error():
    with pytest.raises(ShapeError, match="W is empty"):
        check_params(Params({}, {}))


def test_transposed_weight_message_gives_the_shapes():
    p = init_params((5, 4, 3), seed=0)
    bad = Params({1: p.W[1], 2: p.W[2].T.copy()}, p.b)
    with pytest.raises(ShapeError, match=r"transpose it\? W2\.T has shape \(4, 3\)"):
        check_params(bad)


def test_single_example_refuses_a_dtype_mix():
    p = init_params((5, 4, 3), seed=0)
    x, y = np.ones((5, 1), np.float32), np.eye(3)[:, :1].astype(np.float32)
    with pytest.raises(DataError, match="float32"):
        backprop_single(x, y, p)
    with pytest.raises(DataError, match="m = 0"):
        gradients_loop(np.zeros((0, 5)), np.zeros((0, 3)), p)


def test_squared_error_on_one_hot_targets_reports_an_accuracy():
    X, Y, p = problem(np.float64)
    _, acc = evaluate(X, Y, p, "relu", "squared_error")
    assert 0.0 <= acc <= 1.0
    _, acc = evaluate(X, Y * 0.5 + 0.1, p, "relu", "squared_error")  # a regression
    assert np.isnan(acc)


def test_bench_refuses_loop_examples_below_one():
    with pytest.raises(ConfigError, match="loop_examples"):
        bench.run_bench(
            sizes=("tiny",),
            dtypes=("float32",),
            repeats=1,
            warmup=0,
            contenders=("loop",),
            loop_examples=0,
        )


@pytest.mark.parametrize(
    "args, what",
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--epochs", "-1"], "--epochs"),
        (["--lr", "nan"], "--lr"),
    ],
)
def test_cli_refuses_bad_numbers_before_loading_anything(args, what):
    run = subprocess.run(
        [sys.executable, "-m", "mlp_core", "train", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 2
    assert what in run.stderr and run.stdout == ""


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


def test_recorded_command_reads_as_typed():
    assert (
        bench.command_line(["/x/y/mlp_core/__main__.py", "bench", "--quick"])
        == "python -m mlp_core bench --quick"
    )
