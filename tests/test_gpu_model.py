"""The GPU cost model of chapter 13 (mlp_core.bench.gpu_model): its terms by hand, the
quantisation effects NVIDIA's GEMM guide describes, and its kernel list against the calls
the fast path really makes on CuPy (run here on the host stand-in of tests/cuda_kernels)."""

from __future__ import annotations

import cuda_kernels
import numpy as np
import pytest
from conftest import make_problem

from mlp_core.bench import epoch_flops, gpu_model
from mlp_core.bench.experiments import crossover_batch
from mlp_core.fast import engine as fast

G = gpu_model.H100_SXM
K = 8192  # a long inner dimension: compute-bound, far above the floor


def test_a_product_that_fills_whole_waves_runs_at_the_peak():
    # 12 × 11 tiles of 128 × 128 = 132 tiles: one full wave on 132 SMs
    M, N = 12 * 128, 11 * 128
    assert gpu_model.gemm_seconds(M, N, K, G) == pytest.approx(2 * M * N * K / G.fp32_flops)


def test_a_small_output_leaves_most_sms_idle():
    # a 128 × 128 output is at best 4 tiles of 64 × 64: 4 of 132 SMs work
    t = gpu_model.gemm_seconds(128, 128, K, G)
    assert t == pytest.approx(2 * 128 * 128 * K / G.fp32_flops * G.sms / 4)


def test_one_row_more_costs_a_partial_wave():
    full = gpu_model.gemm_seconds(12 * 128, 11 * 128, K, G)
    more = gpu_model.gemm_seconds(12 * 128 + 1, 11 * 128, K, G)
    assert more > 1.2 * full  # not 1 + 1/1536


def test_skinny_products_are_bound_by_memory_and_tiny_ones_by_the_floor():
    t = gpu_model.gemm_seconds(1, 4096, 4096, G)
    assert t == pytest.approx(4 * (4096 + 4096 * 4096 + 4096) / G.bandwidth)
    assert gpu_model.gemm_seconds(1, 10, 10, G) == G.kernel_floor_s
    assert gpu_model.elementwise_seconds(8, G) == G.kernel_floor_s
    assert gpu_model.elementwise_seconds(4e9, G) == pytest.approx(4e9 / G.bandwidth)


def test_float64_runs_at_the_fp64_peak():
    M, N = 12 * 128, 11 * 128
    ratio = gpu_model.gemm_seconds(M, N, K, G, 8) / gpu_model.gemm_seconds(M, N, K, G, 4)
    assert ratio == pytest.approx(G.fp32_flops / G.fp64_flops)


def test_eager_small_batches_are_host_bound_and_a_graph_removes_the_host_calls():
    sizes, m = (784, 256, 128, 10), 2048
    calls = 8 * 3 + 1
    around = len(gpu_model.epoch_calls(m, sizes, 1))
    eager = gpu_model.predict_epoch(m, sizes, 1, G)
    assert eager["calls_per_batch"] == calls
    assert eager["host_s"] == pytest.approx((m * calls + around) * G.host_call_s)
    assert eager["bound"] == "host" and eager["seconds"] == pytest.approx(eager["host_s"])
    graph = gpu_model.predict_epoch(m, sizes, 1, G, graph=True)
    # the batches' calls become one launch; the calls around them stay
    assert graph["host_s"] == pytest.approx(
        len(gpu_model.epoch_calls(m, sizes, 1, graph=True)) * G.host_call_s
    )
    assert graph["device_s"] < eager["device_s"]  # only the gaps shrink: the nodes remain
    assert graph["device_s"] > m * calls * G.kernel_floor_s
    assert graph["seconds"] < eager["seconds"]


def test_a_large_wide_epoch_is_compute_bound_near_the_peak():
    sizes, m = (4096, 4096, 4096, 10), 32768
    r = gpu_model.predict_epoch(m, sizes, 4096, G)
    assert r["bound"] == "device"
    at_peak = epoch_flops(m, sizes) / G.fp32_flops
    assert at_peak < r["seconds"] < 1.2 * at_peak
    assert r["gflops"] == pytest.approx(epoch_flops(m, sizes) / r["seconds"] / 1e9)


def test_a_partial_last_batch_is_counted():
    sizes = (7, 9, 4)
    per_batch = len(gpu_model.batch_kernels(5, sizes)) * G.host_call_s
    whole = gpu_model.predict_epoch(20, sizes, 5, G)
    partial = gpu_model.predict_epoch(23, sizes, 5, G)
    assert partial["host_s"] == pytest.approx(whole["host_s"] + per_batch)


def test_crossover_is_where_the_gpu_stays_ahead():
    rows = lambda d: [dict(batch_size=B, examples_per_s=v) for B, v in d.items()]  # noqa: E731
    cpu = rows({1: 10, 4: 100, 16: 200, 64: 300})
    # ahead at B = 1 (a CPU's slow small products), behind at 4, ahead from 16 on
    assert crossover_batch(cpu, rows({1: 20, 4: 50, 16: 300, 64: 900})) == 16
    assert crossover_batch(cpu, rows({1: 20, 4: 500, 16: 300, 64: 900})) == 1
    assert crossover_batch(cpu, rows({1: 20, 4: 500, 16: 300, 64: 200})) is None


@pytest.mark.skipif(cuda_kernels.host_compiler() is None, reason="no C++ compiler (g++)")
@pytest.mark.parametrize("sizes", [(7, 9, 4), (7, 9, 6, 4)])
def test_the_model_counts_the_calls_the_fast_path_makes_on_cupy(sizes):
    """The model's kernel list per batch is the GPU epoch's: on the host stand-in of CuPy,
    an epoch of three batches makes one batch's calls more than an epoch of two."""
    counts = []
    for m in (12, 18):
        counting = _CountingCupy()
        X, Y, params = make_problem(m, sizes, "cross_entropy", seed=1)
        ws = fast._Workspace(counting, sizes, m, 6, X.dtype, "relu", "cross_entropy")
        ws.epoch(X, Y, params, np.arange(m), 0.1)
        counts.append(counting.calls)
    assert counts[1] - counts[0] == len(gpu_model.batch_kernels(6, sizes))


class _CountingCupy(cuda_kernels.HostCupy):
    """The host stand-in, counting every call that would launch work on a GPU."""

    LAUNCHING = {"matmul", "sum", "multiply", "subtract", "add", "take", "copyto"}

    def __init__(self):
        super().__init__()
        self.calls = 0
        outer = self
        Elementwise, Raw = self.ElementwiseKernel, self.RawKernel

        class ElementwiseKernel(Elementwise):
            def __call__(self, *args):
                outer.calls += 1
                return super().__call__(*args)

        class RawKernel(Raw):
            def __call__(self, *args):
                outer.calls += 1
                return super().__call__(*args)

        self.ElementwiseKernel, self.RawKernel = ElementwiseKernel, RawKernel

    def __getattr__(self, name):
        attr = super().__getattr__(name)
        if name in self.LAUNCHING:

            def call(*a, **k):
                self.calls += 1
                return attr(*a, **k)

            return call
        return attr
