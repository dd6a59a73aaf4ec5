"""The fast epoch (mlp_core.fast) equals the book's epoch (mlp_core.train.run_epoch).

The fast path rearranges the computation (in-place buffers, σ' read off A, the 1/m_b and
m_b/B folded into one step η/B, fused kernels on the GPU, CUDA graphs); these tests hold
it to the readable reference: float64 to 1e-12 and float32 to 1e-5 (norm-wise relative
error), for every hidden activation × loss, with a partial last batch, on every device.
"""

from __future__ import annotations

import cuda_kernels
import numpy as np
import pytest
from conftest import LOSS_NAMES, make_problem, requires_gpu

from mlp_core.core.backend import to_device, to_numpy
from mlp_core.core.errors import ConfigError
from mlp_core.core.gradcheck import relative_error
from mlp_core.fast import engine as fast
from mlp_core.training import run_epoch

TOL = {np.float64: 1e-12, np.float32: 1e-5}
ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
# all dimensions distinct; m = 23 is not a multiple of B = 5 (last batch has 3 rows)
M, B = 23, 5
SIZES = (7, 9, 6, 4)


def epochs_agree(
    X, Y, params, order, activation, loss, dtype, epochs=2, lr=0.05, batch_size=B, **fast_kw
):
    """Run ``epochs`` reference and fast epochs from the same start; compare each."""
    ref, fst = params, params
    for _ in range(epochs):
        ref, ref_losses = run_epoch(X, Y, ref, order, batch_size, lr, activation, loss)
        fst, fast_losses = fast.run_epoch_fast(
            X, Y, fst, order, batch_size, lr, activation, loss, **fast_kw
        )
        tol = TOL[dtype]
        assert np.all(np.isfinite(to_numpy(ref_losses))), "pick a smaller lr for this case"
        assert fast_losses.dtype == ref_losses.dtype
        assert fast_losses.shape == ref_losses.shape
        assert relative_error(fast_losses, ref_losses) < tol
        for l in params.layers:
            assert fst.W[l].dtype == ref.W[l].dtype and fst.W[l].shape == ref.W[l].shape
            assert relative_error(fst.W[l], ref.W[l]) < tol, f"W{l}"
            assert relative_error(fst.b[l], ref.b[l]) < tol, f"b{l}"
    return ref, fst


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_fast_epoch_equals_reference(device, dtype, activation, loss):
    X, Y, params = make_problem(M, SIZES, loss, seed=3, dtype=dtype, device=device)
    order = to_device(np.random.default_rng(5).permutation(M), device)
    epochs_agree(X, Y, params, order, activation, loss, dtype)


@pytest.mark.parametrize("batch_size", [1, 4, 23, 40])
def test_batch_sizes_including_whole_and_larger_than_m(device, batch_size):
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=1, device=device)
    order = to_device(np.random.default_rng(2).permutation(M), device)
    epochs_agree(X, Y, params, order, "relu", "cross_entropy", np.float64, batch_size=batch_size)


@pytest.mark.parametrize("sizes", [(7, 4), (7, 9, 4), (7, 9, 6, 5, 4)])
def test_depths(device, sizes):
    X, Y, params = make_problem(M, sizes, "cross_entropy", seed=4, device=device)
    order = to_device(np.random.default_rng(0).permutation(M), device)
    epochs_agree(X, Y, params, order, "relu", "cross_entropy", np.float64)


def test_params_passed_in_are_not_modified(device):
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=2, device=device)
    before = {l: to_numpy(params.W[l]).copy() for l in params.layers}
    order = to_device(np.arange(M), device)
    new, _ = fast.run_epoch_fast(X, Y, params, order, B, 0.5)
    for l in params.layers:
        np.testing.assert_array_equal(to_numpy(params.W[l]), before[l])
        assert new.W[l] is not params.W[l]
        assert not np.array_equal(to_numpy(new.W[l]), before[l])


def test_workspace_cache_is_reused_and_bounded():
    fast.clear_workspaces()
    for m in (11, 12, 13, 11):
        X, Y, params = make_problem(m, SIZES, "cross_entropy", seed=0)
        fast.run_epoch_fast(X, Y, params, np.arange(m), 4, 0.1)
    assert len(fast._WORKSPACES) <= fast._MAX_WORKSPACES
    fast.clear_workspaces()
    assert not fast._WORKSPACES


def test_order_can_be_any_permutation_and_repeats_rows():
    """A host-side order (numpy) and a bootstrap order (repeated rows) both work."""
    X, Y, params = make_problem(M, SIZES, "squared_error", seed=6)
    order = np.random.default_rng(1).integers(0, M, size=M)
    epochs_agree(X, Y, params, order, "tanh", "squared_error", np.float64)


def test_bad_batch_size_is_refused_like_the_reference():
    X, Y, params = make_problem(M, SIZES, "cross_entropy")
    with pytest.raises(ConfigError):
        fast.run_epoch_fast(X, Y, params, np.arange(M), 0, 0.1)


def test_divergence_shows_in_the_losses():
    """A learning rate that blows up gives non-finite batch losses, as the reference."""
    X, Y, params = make_problem(M, SIZES, "squared_error", seed=0)
    X = X * 1e3
    p = params
    with np.errstate(all="ignore"):
        for _ in range(5):
            p, losses = fast.run_epoch_fast(
                X, Y, p, np.arange(M), B, 10.0, "identity", "squared_error"
            )
    assert not np.all(np.isfinite(losses))


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_cuda_graph_epochs_equal_reference(dtype, activation, loss):
    """Epoch 1 runs eagerly, epoch 2 is captured and launched, epoch 3 is replayed:
    all three equal the reference (skipped without a usable GPU)."""
    device = "gpu"
    fast.clear_workspaces()
    X, Y, params = make_problem(M, SIZES, loss, seed=3, dtype=dtype, device=device)
    order = to_device(np.random.default_rng(5).permutation(M), device)
    epochs_agree(X, Y, params, order, activation, loss, dtype, epochs=3, cuda_graph=True)
    status = fast.graph_status()
    assert any("captured" in v.values() for v in status.values()), status


@requires_gpu
@pytest.mark.gpu
def test_gpu_and_cpu_fast_paths_agree():
    """The fast path on the GPU equals the fast path on the CPU (float64)."""
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=8, device="cpu")
    order = np.random.default_rng(3).permutation(M)
    cpu, _ = fast.run_epoch_fast(X, Y, params, order, B, 0.2)
    gpu, _ = fast.run_epoch_fast(
        to_device(X, "gpu"), to_device(Y, "gpu"), params.to("gpu"), to_device(order, "gpu"), B, 0.2
    )
    for l in params.layers:
        assert relative_error(gpu.W[l], cpu.W[l]) < 1e-12


# ------------------------------------------------------------- the GPU code path, on NumPy

needs_host_compiler = pytest.mark.skipif(
    cuda_kernels.host_compiler() is None,
    reason="no C++ compiler to build the CUDA kernels for the host (install g++)",
)


@pytest.fixture
def host_cupy():
    """A fresh stand-in for CuPy whose kernels are the real CUDA sources, built for the
    host (tests/cuda_kernels.py); being a new namespace, it gets kernels of its own."""
    return cuda_kernels.HostCupy()


def gpu_epochs_on_host(cp, X, Y, params, order, activation, loss, epochs=2, lr=0.05):
    """Reference epochs and the GPU epoch's code (on ``cp``) side by side, from one start;
    yields each epoch's ``(reference, gpu)`` pair of ``(params, losses)``."""
    from mlp_core.training import batch_slices

    ws = fast._Workspace(
        cp, params.sizes, X.shape[0], B, X.dtype, activation, loss, batch_slices(X.shape[0], B)
    )
    ref = gpu = (params, None)
    for _ in range(epochs):
        ref = run_epoch(X, Y, ref[0], order, B, lr, activation, loss)
        gpu = ws.epoch_gpu(X, Y, gpu[0], order, lr / B, cuda_graph=False)
        yield ref, gpu


@needs_host_compiler
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_gpu_epoch_code_with_its_cuda_kernels_built_for_the_host(
    host_cupy, dtype, activation, loss
):
    """The GPU epoch's own code (buffers, the order of its launches and their arguments)
    with its kernels' CUDA sources compiled as host C++ (the fused bias + activation, the
    derivative, the SGD step, the row-wise softmax + cross-entropy, the sigmoid output)
    equals the reference epoch. This runs everywhere; CuPy itself, and the same kernels on
    a device, are checked on a GPU by the tests above."""
    X, Y, params = make_problem(M, SIZES, loss, seed=3, dtype=dtype)
    order = np.random.default_rng(5).permutation(M)
    for (ref, ref_losses), (gpu, gpu_losses) in gpu_epochs_on_host(
        host_cupy, X, Y, params, order, activation, loss
    ):
        assert gpu_losses.dtype == ref_losses.dtype == dtype
        assert relative_error(gpu_losses, ref_losses) < TOL[dtype]
        for l in params.layers:
            assert gpu.W[l].dtype == dtype
            assert relative_error(gpu.W[l], ref.W[l]) < TOL[dtype], f"W{l}"
            assert relative_error(gpu.b[l], ref.b[l]) < TOL[dtype], f"b{l}"
    assert host_cupy.sources, "no CUDA kernel was launched"


@needs_host_compiler
@pytest.mark.parametrize(
    "activation, wrong",
    [
        ("tanh", "d = d * ((T)1 + a * a);"),  # 1 + tanh² instead of 1 − tanh²
        ("relu", "d = d * (a >= (T)0 ? (T)1 : (T)0);"),  # passes the error where ReLU is 0
    ],
)
def test_negative_control_a_wrong_cuda_derivative_is_caught(
    host_cupy, monkeypatch, activation, wrong
):
    """The comparison above can fail: the same epoch with one wrong kernel body does not
    match the reference."""
    monkeypatch.setitem(fast._DERIVATIVE, activation, wrong)
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=3)
    order = np.random.default_rng(5).permutation(M)
    (ref, _), (gpu, _) = next(
        gpu_epochs_on_host(host_cupy, X, Y, params, order, activation, "cross_entropy", epochs=1)
    )
    assert max(relative_error(gpu.W[l], ref.W[l]) for l in params.layers) > 1e-3
