"""The fast epoch (mlp_core.fast) equals the book's epoch (mlp_core.train.run_epoch).

The fast path rearranges the computation (in-place buffers, σ' read off A, the 1/m_b and
m_b/B folded into one step η/B, fused kernels on the GPU, CUDA graphs); these tests hold
it to the readable reference: float64 to 1e-12 and float32 to 1e-5 (norm-wise relative
error), for every hidden activation × loss, with a partial last batch, on every device.
"""

from __future__ import annotations

import os

import cuda_kernels
import numpy as np
import pytest
from conftest import LOSS_NAMES, make_problem, requires_gpu

from mlp_core.core.activations import HIDDEN_ACTIVATIONS, get_hidden_activation
from mlp_core.core.backend import to_device, to_numpy
from mlp_core.core.batching import batch_slices
from mlp_core.core.errors import ConfigError, DataError
from mlp_core.core.gradcheck import relative_error
from mlp_core.core.losses import LOSSES, get_loss, output_activation
from mlp_core.core.validate import check_float_dtype
from mlp_core.fast import cpu_fused, cupy_kernels, graph, numpy_kernels
from mlp_core.fast import engine as fast
from mlp_core.training import run_epoch

# The float32 tolerances assume full float32 matrix products: TF32 (10-bit mantissa,
# relative error ~5e-4 per product) would break them, so the GPU tests pin it off.
os.environ["CUPY_TF32"] = "0"

TOL = {np.float64: 1e-12, np.float32: 1e-5}
ACTIVATIONS = HIDDEN_ACTIVATIONS
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
    seen = []
    for m in (11, 12, 13, 11, 11):
        X, Y, params = make_problem(m, SIZES, "cross_entropy", seed=0)
        fast.run_epoch_fast(X, Y, params, np.arange(m), 4, 0.1)
        seen.append(fast._workspace(np, SIZES, m, 4, X.dtype, "relu", "cross_entropy"))
    assert seen[3] is not seen[0], "m = 11 was evicted by 12 and 13 and made again"
    assert seen[4] is seen[3], "the same shapes reuse their workspace"
    assert fast._cached_workspace.cache_info().currsize == fast._MAX_WORKSPACES
    fast.clear_workspaces()
    assert fast._cached_workspace.cache_info().currsize == 0


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
    assert "captured" in status.values(), status


def gpu_cpu_tolerance(dtype, sizes, batch_size, batches, epochs=1) -> float:
    """The relative difference allowed between one computation on a GPU and on a CPU.

    Error analysis (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1): a
    dot product of length k summed in any order has a relative error below
    γ_k = k u / (1 − k u) times its condition number Σ|a_i b_i| / |Σ a_i b_i|, with u the
    unit round-off (2^-53 in float64, 2^-24 in float32). cuBLAS and OpenBLAS sum in
    different orders, so each entry of a product may differ by up to 2 γ_k, k the longest
    inner dimension (max of h_l and B). CUDA's tanh/exp/log are within 2 ulp where glibc's
    are within 1, adding ~3u per elementwise step. One SGD step chains, per layer, a
    forward product, an activation, the backward products and the update: about
    6 L such steps, each error carried forward with a gain we bound by a condition
    factor κ = 10 (random data, He initialisation, small η: no cancellation beyond that
    in these tests). Over the ``batches × epochs`` steps the errors add (they do not
    compound at these learning rates: the update is a small correction of W):

        tol = κ · 6 L · (2 γ_k + 3 u) · batches · epochs.

    For the float64 tests here (k = 9, L = 3, 5 batches, 1 epoch) that is ≈ 2e-12, which
    is why the GPU-vs-CPU comparison uses this and not the 1e-12 that holds between two
    CPU codes with the same BLAS."""
    u = float(np.finfo(dtype).eps) / 2
    k = max(max(sizes), batch_size)
    gamma = k * u / (1 - k * u)
    L = len(sizes) - 1
    return 10 * 6 * L * (2 * gamma + 3 * u) * batches * epochs


def test_the_gpu_cpu_tolerance_is_tight_enough_to_catch_a_real_bug():
    """Not a blank cheque: in float64 it is far below any error a wrong formula makes
    (> 1e-4 in the negative controls here) and above the CPU-to-CPU 1e-12."""
    tol = gpu_cpu_tolerance(np.float64, SIZES, B, len(batch_slices(M, B)))
    assert 1e-12 < tol < 1e-10


@requires_gpu
@pytest.mark.gpu
def test_data_and_parameters_on_two_devices_are_refused_as_everywhere():
    X, Y, params = make_problem(M, SIZES, "cross_entropy")
    with pytest.raises(DataError, match="X is on the gpu but the parameters are on the cpu"):
        fast.run_epoch_fast(to_device(X, "gpu"), to_device(Y, "gpu"), params, np.arange(M), B, 0.1)


@requires_gpu
@pytest.mark.gpu
def test_tf32_is_off_in_the_gpu_tests():
    cp = pytest.importorskip("cupy")
    assert os.environ.get("CUPY_TF32", "0") == "0"
    a = cp.asarray(np.full((64, 64), 1 + 2**-20, np.float32))
    # with TF32 the 2^-20 would be rounded away (10-bit mantissa); full float32 keeps it
    assert float((a @ a)[0, 0]) == pytest.approx(64 * (1 + 2**-20) ** 2, rel=1e-7)


@requires_gpu
@pytest.mark.gpu
def test_gpu_and_cpu_fast_paths_agree():
    """The fast path on the GPU equals the fast path on the CPU (float64), to the
    tolerance of the error analysis in :func:`gpu_cpu_tolerance`."""
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=8, device="cpu")
    order = np.random.default_rng(3).permutation(M)
    cpu, _ = fast.run_epoch_fast(X, Y, params, order, B, 0.2)
    gpu, _ = fast.run_epoch_fast(
        to_device(X, "gpu"), to_device(Y, "gpu"), params.to("gpu"), to_device(order, "gpu"), B, 0.2
    )
    tol = gpu_cpu_tolerance(np.float64, SIZES, B, len(batch_slices(M, B)))
    for l in params.layers:
        assert relative_error(gpu.W[l], cpu.W[l]) < tol


@requires_gpu
@pytest.mark.gpu
def test_cuda_graph_replays_under_a_schedule_and_survives_a_pool_that_frees_blocks():
    """Epochs at three learning rates: one capture, replays for every η; freeing the
    default pool's cached blocks after the capture does not disturb the replays (the
    graph's temporaries live in its private pool)."""
    cp = pytest.importorskip("cupy")
    fast.clear_workspaces()
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=3, device="gpu")
    order = to_device(np.random.default_rng(5).permutation(M), "gpu")
    ref = fst = params
    for epoch, lr in enumerate((0.05, 0.05, 0.02, 0.01)):
        ref, ref_losses = run_epoch(X, Y, ref, order, B, lr)
        fst, fast_losses = fast.run_epoch_fast(X, Y, fst, order, B, lr, cuda_graph=True)
        if epoch == 1:
            cp.get_default_memory_pool().free_all_blocks()
        assert relative_error(fast_losses, ref_losses) < 1e-12
        for l in params.layers:
            assert relative_error(fst.W[l], ref.W[l]) < 1e-12
    assert list(fast.graph_status().values()) == ["captured"]


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


def gpu_epochs_on_host(
    cp, X, Y, params, order, activation, loss, epochs=2, lr=0.05, cuda_graph=False
):
    """Reference epochs and the GPU epoch's code (on ``cp``) side by side, from one start;
    yields each epoch's ``(reference, gpu)`` pair of ``(params, losses)``. ``lr`` is one
    learning rate or one per epoch (a schedule)."""
    lrs = list(lr) if isinstance(lr, (list, tuple)) else [lr] * epochs
    ws = fast._Workspace(cp, params.sizes, X.shape[0], B, X.dtype, activation, loss)
    ref = gpu = (params, None)
    for eta in lrs:
        ref = run_epoch(X, Y, ref[0], order, B, eta, activation, loss)
        gpu = ws.epoch(X, Y, gpu[0], order, eta, cuda_graph=cuda_graph)
        yield ref, gpu


def assert_epochs_agree(pairs, dtype):
    for (ref, ref_losses), (gpu, gpu_losses) in pairs:
        assert gpu_losses.dtype == ref_losses.dtype == dtype
        assert relative_error(gpu_losses, ref_losses) < TOL[dtype]
        for l in ref.layers:
            assert gpu.W[l].dtype == dtype
            assert relative_error(gpu.W[l], ref.W[l]) < TOL[dtype], f"W{l}"
            assert relative_error(gpu.b[l], ref.b[l]) < TOL[dtype], f"b{l}"


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
    assert_epochs_agree(gpu_epochs_on_host(host_cupy, X, Y, params, order, activation, loss), dtype)
    assert host_cupy.pinned_copies == 2, "the host order was not staged in pinned memory"
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
    monkeypatch.setitem(cupy_kernels.DERIVATIVE, activation, wrong)
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=3)
    order = np.random.default_rng(5).permutation(M)
    (ref, _), (gpu, _) = next(
        gpu_epochs_on_host(host_cupy, X, Y, params, order, activation, "cross_entropy", epochs=1)
    )
    assert max(relative_error(gpu.W[l], ref.W[l]) for l in params.layers) > 1e-3


# ----------------------------------------------- the CUDA-graph sequence, on the host stand-in


@needs_host_compiler
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_warm_up_capture_replay_on_the_host_equals_eager_epochs(host_cupy, dtype, loss):
    """Epoch 1 runs eagerly (warm-up), epoch 2 is captured (nothing runs) and launched,
    epochs 3 and 4 replay it, under a learning-rate schedule: every epoch equals the
    reference, there is one capture and three launches (a new η reuses the graph), and
    the captured epoch allocates nothing."""
    X, Y, params = make_problem(M, SIZES, loss, seed=3, dtype=dtype)
    order = np.random.default_rng(5).permutation(M)
    schedule = (0.05, 0.04, 0.02, 0.01)
    pairs = list(
        gpu_epochs_on_host(
            host_cupy, X, Y, params, order, "tanh", loss, lr=schedule, cuda_graph=True
        )
    )
    assert_epochs_agree(pairs, dtype)
    assert (host_cupy.captures, host_cupy.launches) == (1, 3)
    assert host_cupy.capture_allocations == 0, "the captured epoch allocates"


@needs_host_compiler
def test_graph_state_is_a_typed_value_that_moves_cold_warm_captured(host_cupy):
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=3)
    ws = fast._Workspace(host_cupy, params.sizes, M, B, X.dtype, "relu", "cross_entropy")
    order = np.arange(M)
    phases = [ws.graph.phase]
    for _ in range(3):
        ws.epoch(X, Y, params, order, 0.1, cuda_graph=True)
        phases.append(ws.graph.phase)
    P = graph.Phase
    assert phases == [P.COLD, P.WARM, P.CAPTURED, P.CAPTURED]
    assert isinstance(ws.graph, graph.GraphState) and ws.graph.error is None


class _StaleStep(np.ndarray):
    """A view of the step buffer whose ``fill`` does nothing: the step the graph read at
    capture stays on the device, as if it had been baked into the graph."""

    def fill(self, value):
        pass


@needs_host_compiler
def test_negative_control_a_graph_that_does_not_read_the_new_step_is_caught(host_cupy):
    """If the step η/B on the device were not refreshed, the replay under a new η would
    not equal the reference: the schedule test above can fail."""
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=3)
    order = np.random.default_rng(5).permutation(M)
    ws = fast._Workspace(host_cupy, params.sizes, M, B, X.dtype, "relu", "cross_entropy")
    p, ref = params, params
    for _ in range(2):  # warm-up, then capture + launch, at η = 0.05
        p = ws.epoch(X, Y, p, order, 0.05, cuda_graph=True)[0]
        ref = run_epoch(X, Y, ref, order, B, 0.05)[0]
    assert host_cupy.captures == 1
    ws.step = ws.step.view(_StaleStep)
    p = ws.epoch(X, Y, p, order, 0.01, cuda_graph=True)[0]  # replays with η/B = 0.05/B
    ref = run_epoch(X, Y, ref, order, B, 0.01)[0]
    assert max(relative_error(p.W[l], ref.W[l]) for l in params.layers) > 1e-4


@needs_host_compiler
def test_the_raw_kernel_launch_checks_contiguity_and_dtype_at_the_call(host_cupy):
    K = cupy_kernels.CupyKernels(host_cupy, (5, 4, 3), 6, np.float64, "relu", "cross_entropy")
    Z, Y, D = (np.zeros((6, 3)) for _ in range(3))
    out = np.zeros(1)
    K.output(Z, Y, D, out)  # fine
    with pytest.raises(ValueError, match="C-contiguous float64"):
        K.output(np.zeros((3, 6)).T, Y, D, out)
    with pytest.raises(ValueError, match="Y must be"):
        K.output(Z, Y.astype(np.float32), D, out)


# ------------------------------------------------- NumPy: calls recorded once, replayed


def cpu_workspace(params, loss="cross_entropy", activation="relu"):
    return fast._Workspace(np, params.sizes, M, B, params.dtype, activation, loss)


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_recorded_calls_replay_under_a_schedule_new_data_and_new_orders(dtype, loss):
    """The first epoch records its calls, the next replay them: under a learning-rate
    schedule, with new numbers in X and a new order every epoch, each epoch still equals
    the reference, and nothing is recorded again."""
    X, Y, params = make_problem(M, SIZES, loss, seed=3, dtype=dtype)
    ws = cpu_workspace(params, loss, "tanh")
    rng = np.random.default_rng(7)
    p, ref = params, params
    for epoch, lr in enumerate((0.05, 0.04, 0.02, 0.01)):
        Xe = (X * (1 + 0.1 * epoch)).astype(dtype)
        order = rng.permutation(M)
        p, losses = ws.epoch(Xe, Y, p, order, lr)
        ref, ref_losses = run_epoch(Xe, Y, ref, order, B, lr, "tanh", loss)
        if epoch == 0:
            recorded = ws.kernels.calls
            assert len(recorded) > 0
        assert ws.kernels.calls is recorded, "an epoch recorded its calls again"
        assert relative_error(losses, ref_losses) < TOL[dtype]
        for l in params.layers:
            assert relative_error(p.W[l], ref.W[l]) < TOL[dtype], f"epoch {epoch}, W{l}"
            assert relative_error(p.b[l], ref.b[l]) < TOL[dtype], f"epoch {epoch}, b{l}"


def test_negative_control_recorded_calls_that_keep_the_old_step_are_caught():
    """If the recorded calls kept the step η/B of the epoch that recorded them, the
    replay under a new η would not equal the reference: the schedule test can fail."""
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=3)
    order = np.random.default_rng(5).permutation(M)
    ws = cpu_workspace(params)
    p = ws.epoch(X, Y, params, order, 0.05)[0]
    ref = run_epoch(X, Y, params, order, B, 0.05)[0]
    ws.step = ws.step.view(_StaleStep)  # a new η no longer reaches what the calls read
    p = ws.epoch(X, Y, p, order, 0.01)[0]
    ref = run_epoch(X, Y, ref, order, B, 0.01)[0]
    assert max(relative_error(p.W[l], ref.W[l]) for l in params.layers) > 1e-4


def test_parameters_in_fortran_order_train_as_any_other():
    """The workspace's own W are C-ordered whatever the layout of the W passed in (a
    Fortran-ordered own W would make SciPy's BLAS update a copy, not W)."""
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=3)
    fortran = type(params)(
        {l: np.asfortranarray(params.W[l]) for l in params.layers},
        {l: params.b[l].copy() for l in params.layers},
    )
    assert not fortran.W[1].flags.c_contiguous
    fast.clear_workspaces()
    order = np.random.default_rng(5).permutation(M)
    epochs_agree(X, Y, fortran, order, "relu", "cross_entropy", np.float64)


def test_an_epoch_that_fails_while_recording_leaves_nothing_to_replay(monkeypatch):
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=3)
    ws = cpu_workspace(params)
    real_output = ws.kernels.output

    def failing_output(*args):
        real_output(*args)
        raise RuntimeError("stop half-way")

    monkeypatch.setattr(ws.kernels, "output", failing_output)
    with pytest.raises(RuntimeError, match="half-way"):
        ws.epoch(X, Y, params, np.arange(M), 0.1)
    assert ws.kernels.calls == []
    monkeypatch.undo()
    p, losses = ws.epoch(X, Y, params, np.arange(M), 0.1)
    ref, ref_losses = run_epoch(X, Y, params, np.arange(M), B, 0.1)
    assert relative_error(losses, ref_losses) < 1e-12


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.longdouble])
def test_the_fast_path_takes_the_dtypes_the_library_creates(dtype):
    try:
        check_float_dtype(dtype)
        created = True
    except ConfigError:
        created = False
    assert fast.supports("relu", "cross_entropy", dtype) == created
    X, Y, params = make_problem(M, SIZES, "cross_entropy")
    X, Y, params = X.astype(dtype), Y.astype(dtype), params.astype(dtype)
    if created:
        fast.run_epoch_fast(X, Y, params, np.arange(M), B, 0.1)
    else:
        with pytest.raises(ConfigError, match="float32 or float64"):
            fast.run_epoch_fast(X, Y, params, np.arange(M), B, 0.1)


def test_each_kernel_set_has_a_kernel_for_every_entry_of_the_core_tables():
    """The fast path's set is the core's tables (supports()); each kernel set must cover
    them, so a new activation or loss in the core fails here until it has kernels."""
    hidden = set(HIDDEN_ACTIVATIONS)
    assert set(cpu_fused.FORWARD) == set(cpu_fused.DERIVATIVE) == hidden
    assert set(cupy_kernels.FORWARD) == set(cupy_kernels.DERIVATIVE) == hidden
    assert set(numpy_kernels.OUTPUT) == set(LOSSES)
    assert all(fast.supports(a, loss, np.float32) for a in hidden for loss in LOSSES)
    assert not fast.supports("relu", "cross_entropy", np.float16)


@pytest.mark.parametrize("a_t", [False, True])
@pytest.mark.parametrize("b_t", [False, True])
def test_gemm_call_makes_the_product_for_every_layout(a_t, b_t):
    """out ← a b for operands stored C-ordered or as the .T of a C-ordered array, at
    shapes (7, 5) @ (5, 3) that show a wrong transpose; the oracle is NumPy's matmul."""
    from mlp_core.fast.numpy_kernels import blas_gemm, gemm_call, make_calls

    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 7)).T if a_t else rng.standard_normal((7, 5))
    b = rng.standard_normal((3, 5)).T if b_t else rng.standard_normal((5, 3))
    out = np.full((7, 3), np.nan)
    make_calls([gemm_call(blas_gemm(np.float64), a, b, out)])
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)


def test_negative_control_gemm_call_refuses_an_output_it_would_not_write():
    """SciPy writes into a copy of an output that is not C-ordered (here Fortran-ordered),
    and the product would be lost: refused, with the fix in the message."""
    from mlp_core.fast.numpy_kernels import blas_gemm, gemm_call

    a, b = np.ones((7, 5)), np.ones((5, 3))
    with pytest.raises(ConfigError, match="C-ordered"):
        gemm_call(blas_gemm(np.float64), a, b, np.empty((7, 3), order="F"))


# ------------------------------------------------ the CPU's fused passes, one by one (Numba)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_each_fused_cpu_pass_equals_the_core_formula(dtype, activation):
    """Oracles: the core's σ and σ' (mlp_core.core.activations) on Z + b, for a (7, 5)
    batch; the derivative pass is given A = σ(Z + b) and must give D ⊙ σ'(Z + b), and
    take the bias's step b − (η/B) 1^T D with that D."""
    rng = np.random.default_rng(11)
    Z, D = (rng.standard_normal((7, 5)).astype(dtype) for _ in range(2))
    b = rng.standard_normal(5).astype(dtype)
    act, tol, minus_step = get_hidden_activation(activation), 8 * np.finfo(dtype).eps, -0.3
    out = Z.copy()
    cpu_fused.FORWARD[activation](out, b)
    np.testing.assert_allclose(out, act.sigma(Z + b), rtol=tol, atol=tol)
    assert out.dtype == dtype
    back, b_after = D.copy(), b.copy()
    cpu_fused.DERIVATIVE[activation](back, act.sigma(Z + b), b_after, np.array(minus_step, dtype))
    expected = D * act.sigma_prime(Z + b)
    np.testing.assert_allclose(back, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(b_after, b + minus_step * expected.sum(axis=0), rtol=tol)
    assert b_after.dtype == dtype


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_each_fused_cpu_output_pass_equals_the_core_loss(dtype, loss):
    """Oracles: the core loss's J (mlp_core.core.losses) and Δ^L = σ_out(Z + b) − Y, from
    the logits of a (7, 3) batch, and the bias's step b − (η/B) 1^T Δ^L: the calls the
    CPU kernels record for a batch's output."""
    rng = np.random.default_rng(12)
    Z = (3 * rng.standard_normal((7, 3))).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 7)]
    spec, tol, minus_step = get_loss(loss), 8 * np.finfo(dtype).eps, -0.3
    D, J, b_after, top = np.empty_like(Z), np.empty(1, dtype), b.copy(), np.empty(7, dtype)
    calls = numpy_kernels.OUTPUT[loss](Z.copy(), b_after, Y, D, J, np.array(minus_step, dtype), top)
    numpy_kernels.make_calls(calls)
    np.testing.assert_allclose(J[0], spec.value(Z + b, Y), rtol=tol)
    delta = output_activation(loss, Z + b) - Y
    np.testing.assert_allclose(D, delta, rtol=tol, atol=tol)
    np.testing.assert_allclose(b_after, b + minus_step * delta.sum(axis=0), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_the_fused_softmax_does_not_overflow_on_huge_logits(dtype):
    big = np.finfo(dtype).max / 2
    Z = np.array([[big, -big, big / 3], [0.0, 1.0, 2.0]], dtype)
    Y = np.array([[1, 0, 0], [0, 0, 1]], dtype)
    D, J, b = np.empty_like(Z), np.empty(1, dtype), np.zeros(3, dtype)
    calls = numpy_kernels.OUTPUT["cross_entropy"](
        Z.copy(), b, Y, D, J, np.array(0, dtype), np.empty(2, dtype)
    )
    numpy_kernels.make_calls(calls)
    assert np.all(np.isfinite(D)) and np.isfinite(J[0])
    np.testing.assert_allclose(D, output_activation("cross_entropy", Z) - Y, atol=1e-6)


def test_the_fused_relu_keeps_nan_and_masks_with_the_forward_sign():
    Z = np.array([[np.nan, -1.0, 0.0, 2.0]])
    cpu_fused.bias_relu(Z, np.zeros(4))
    np.testing.assert_array_equal(Z, [[np.nan, 0.0, 0.0, 2.0]])
    D = np.array([[5.0, 5.0, 5.0, 5.0]])
    cpu_fused.relu_back(D, Z, np.zeros(4), np.array(0.0))
    np.testing.assert_array_equal(D, [[0.0, 0.0, 0.0, 5.0]])


@pytest.mark.parametrize(
    "activation, wrong",
    [
        ("tanh", lambda D, A: np.multiply(D, 1 + A * A, out=D)),  # 1 + tanh², not 1 − tanh²
        ("relu", lambda D, A: np.multiply(D, A >= 0, out=D)),  # passes the error where ReLU is 0
        ("relu", lambda D, A: np.multiply(D, A > 0, out=D)),  # right Δ, but b is never stepped
    ],
)
def test_negative_control_a_wrong_cpu_derivative_is_caught(monkeypatch, activation, wrong):
    """The fast-equals-reference tests can fail: one wrong fused pass and they do."""

    def derivative(D, A, b, minus_step):
        wrong(D, A)

    monkeypatch.setitem(cpu_fused.DERIVATIVE, activation, derivative)
    fast.clear_workspaces()
    X, Y, params = make_problem(M, SIZES, "cross_entropy", seed=3)
    order = np.random.default_rng(5).permutation(M)
    with pytest.raises(AssertionError, match="relative_error"):
        epochs_agree(X, Y, params, order, activation, "cross_entropy", np.float64, epochs=1)
    fast.clear_workspaces()
