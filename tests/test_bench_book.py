"""The Part III helpers of mlp_core.bench and their figures (chapters 12 and 13):
intensity and roofline against hand counts, the small measurements return sane numbers,
recorded results load and plot. The JSON written here is SYNTHETIC TEST DATA in
pytest's tmp_path (never in book/): the speeds in it are made up and mean nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from mlp_core import bench
from mlp_core.book import plots
from mlp_core.core.errors import ConfigError

SIZES = (20, 16, 12, 5)


def test_matmul_intensity_by_hand():
    # m = 1, float32: 2·784·256 FLOPs over 4·(784 + 784·256 + 256) bytes
    assert bench.matmul_intensity(784, 256, 1, 4) == pytest.approx(
        2 * 784 * 256 / (4 * (784 + 784 * 256 + 256))
    )
    assert 0.49 < bench.matmul_intensity(784, 256, 1, 4) < 0.5
    # a batch reuses every weight m times: the intensity grows with m, then levels off
    values = [bench.matmul_intensity(784, 256, m, 4) for m in (1, 16, 256, 4096, 10**6)]
    assert all(a < b for a, b in zip(values, values[1:]))
    limit = 2 * 784 * 256 / (4 * (784 + 256))  # m → ∞: W is free, A and Z remain
    assert values[-1] < limit and values[-1] == pytest.approx(limit, rel=1e-3)
    # float64 halves it
    assert bench.matmul_intensity(784, 256, 256, 8) == pytest.approx(
        bench.matmul_intensity(784, 256, 256, 4) / 2
    )


def test_roofline_is_min_of_roof_and_slope():
    assert bench.roofline(100.0, 10.0, 0.5) == 5.0
    assert bench.roofline(100.0, 10.0, 50.0) == 100.0
    out = bench.roofline(100.0, 10.0, np.array([0.1, 10.0, 1000.0]))
    np.testing.assert_allclose(out, [1.0, 100.0, 100.0])


def test_measured_rates_are_positive_and_finite():
    assert 0 < bench.gemm_rate(64, np.float64, repeats=2) < 1e6
    assert 0 < bench.copy_bandwidth(2**16, np.float32, repeats=2) < 1e6
    without, with_sync = bench.timing_with_and_without_sync(np, n=64, repeats=2)
    assert without > 0 and with_sync > 0


def test_speed_vs_batch_rows():
    rows = bench.speed_vs_batch(64, SIZES, [8, 32], repeats=1, warmup=0)
    assert [r["batch_size"] for r in rows] == [8, 32]
    for r in rows:
        assert r["device"] == "cpu" and r["seconds_per_epoch"] > 0
        assert r["examples_per_s"] == pytest.approx(64 / r["seconds_per_epoch"])
        assert r["gflops"] == pytest.approx(
            bench.epoch_flops(64, SIZES) / r["seconds_per_epoch"] / 1e9
        )
    # the reference path too
    assert len(bench.speed_vs_batch(40, SIZES, [16], repeats=1, warmup=0, fast=False)) == 1


def test_loop_vs_batched_extrapolates_only_beyond_k():
    rows = bench.loop_vs_batched([3, 20], SIZES, loop_examples=10, repeats=1)
    assert [r["m"] for r in rows] == [3, 20]
    assert [r["loop_examples"] for r in rows] == [3, 10]
    assert [r["loop_extrapolated"] for r in rows] == [False, True]
    for r in rows:
        assert r["speedup"] == pytest.approx(r["loop_seconds"] / r["batched_seconds"])


def test_crossover_batch():
    cpu = [dict(batch_size=B, examples_per_s=s) for B, s in ((1, 10), (8, 50), (64, 90))]
    gpu = [dict(batch_size=B, examples_per_s=s) for B, s in ((1, 2), (8, 60), (64, 900))]
    assert bench.crossover_batch(cpu, gpu) == 8
    assert bench.crossover_batch(cpu, [dict(batch_size=1, examples_per_s=1)]) is None


def _synthetic_result(gpu_name=None):
    """A made-up benchmark result in the format of ``bench --json`` (test data only)."""
    device = "gpu" if gpu_name else "cpu"
    prefix = "cupy" if gpu_name else "numpy"
    records = []
    for size, B, base in (("small", 64, 1.0), ("large", 1024, 10.0)):
        for k, name in enumerate((f"{prefix}-batched", f"{prefix}-fast")):
            gflops = base * (k + 1)
            records.append(
                dict(
                    size=size,
                    m=1000,
                    sizes=[8, 4, 2],
                    batch=B,
                    dtype="float32",
                    contender=name,
                    label=bench.LABELS[name],
                    device=device,
                    times=[1.0],
                    scale=1.0,
                    extrapolated=False,
                    seconds=1.0 / gflops,
                    examples_per_s=1000 * gflops,
                    gflop=1.0,
                    gflops=gflops,
                    note="",
                    pct_gemm=None,
                    speedup=dict(loop=None, **{"numpy-batched": None}, sklearn=None, torch=None),
                )
            )
    gpu = dict(name=gpu_name, memory_gib=1.0, cuda_runtime=1, cupy_tf32="0") if gpu_name else None
    meta = dict(
        cpu="Synthetic CPU",
        cores=3,
        date="2000-01-02T03:04:05+00:00",
        command="synthetic test data",
        versions=dict(numpy="x", sklearn=None, torch=None),
        gpu=gpu,
    )
    return dict(meta=meta, records=records, skipped=[], settings=dict(repeats=1, warmup=0))


def test_load_recorded_and_labels(tmp_path):
    assert bench.load_recorded(tmp_path / "bench-gpu*.json") == []
    (tmp_path / "bench-gpu-b.json").write_text(json.dumps(_synthetic_result("Fake GPU B")))
    (tmp_path / "bench-gpu-a.json").write_text(json.dumps(_synthetic_result("Fake GPU A")))
    (tmp_path / "bench-cpu.json").write_text(json.dumps(_synthetic_result()))
    found = bench.load_recorded(tmp_path / "bench-gpu*.json")
    assert [r["path"].rsplit("/", 1)[-1] for r in found] == ["bench-gpu-a.json", "bench-gpu-b.json"]
    assert bench.recorded_label(found[0]) == "Fake GPU A, 2000-01-02"
    cpu = bench.load_recorded(tmp_path / "bench-cpu.json")[0]
    assert bench.recorded_label(cpu) == "Synthetic CPU (3 cores), 2000-01-02"
    table = bench.recorded_table(cpu, contenders=("numpy-fast",))
    assert "Synthetic CPU (3 cores), 2000-01-02" in table and "synthetic test data" in table
    assert "NumPy fast" in table and "NumPy batched" not in table


def test_load_recorded_rejects_other_json(tmp_path):
    (tmp_path / "bench-gpu-x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ConfigError, match="not a benchmark JSON"):
        bench.load_recorded(tmp_path / "bench-gpu*.json")
    (tmp_path / "bench-gpu-x.json").write_text("{oops")
    with pytest.raises(ConfigError, match="not a benchmark JSON"):
        bench.load_recorded(tmp_path / "bench-gpu*.json")


def test_recorded_vs_live_plots_recorded_lines(tmp_path):
    (tmp_path / "bench-gpu-a.json").write_text(json.dumps(_synthetic_result("Fake GPU A")))
    recorded = bench.load_recorded(tmp_path / "bench-gpu*.json")
    live = [("CPU (live)", [dict(batch_size=B, examples_per_s=100.0 * B) for B in (1, 8)])]
    fig = plots.recorded_vs_live(live, recorded)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax = fig.axes[1]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "CuPy fast: Fake GPU A, 2000-01-02" in labels
    line = ax.get_lines()[labels.index("CuPy fast: Fake GPU A, 2000-01-02")]
    np.testing.assert_allclose(line.get_xdata(), [64, 1024])
    np.testing.assert_allclose(line.get_ydata(), [2.0, 20.0])
    # no recorded results: the live panel alone
    assert len(plots.recorded_vs_live(live, []).axes) == 1


def test_roofline_draws_measured_points_apart_from_the_model():
    measured = [dict(m=m, intensity=0.5 * m, gflops=3.0 * m) for m in (1, 4, 16)]
    fig = plots.roofline_chart(
        100.0, 10.0, [("m = 1", 0.5)], measured=measured, roofs={"L2": 40.0}, formula_peak=120.0
    )
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "measured Z = A W, m = 1…16" in labels
    assert "m = 1 (model: on the roof)" in labels
    assert "roof from L2 (40 GB/s)" in labels
    line = fig.axes[0].get_lines()[labels.index("measured Z = A W, m = 1…16")]
    np.testing.assert_allclose(line.get_ydata(), [3.0, 12.0, 48.0])


def test_recorded_spread_shows_min_quartiles_and_max():
    result = _synthetic_result()
    r = result["records"][0]
    r["times"] = [1.0, 2.0, 3.0, 4.0, 10.0]
    r.pop("spread", None)
    fig = plots.recorded_spread(result, dtype="float32")
    assert "Synthetic CPU (3 cores), 2000-01-02" in fig._suptitle.get_text()
    xs = [tuple(line.get_xdata()) for line in fig.axes[0].get_lines()]
    assert (1.0, 10.0) in xs and (2.0, 4.0) in xs  # min–max and the quartiles


def test_allreduce_chart_marks_oversubscribed_ranks():
    def block(P, over=False):
        rows = [dict(P=P, network="n", B=64, compute_s=0.01 / P, allreduce_s=0.001 * (P - 1))]
        return dict(P=P, rows=rows, oversubscribed=over)

    fig = plots.allreduce_chart(dict(per_P=[block(1), block(2), block(3, True)]))
    speedup = fig.axes[1].get_lines()[0]
    np.testing.assert_allclose(speedup.get_ydata(), [1.0, 0.01 / 0.006, 0.01 / (0.01 / 3 + 0.002)])
    assert fig.axes[0].patches or fig.axes[0].collections  # the grey band and the markers


def test_other_figures():
    rows = [
        dict(m=m, loop_seconds=m * 1e-4, batched_seconds=1e-4 + m * 1e-6, loop_extrapolated=m > 10)
        for m in (1, 10, 100)
    ]
    assert len(plots.loop_vs_batched_chart(rows).axes) == 2
    live = [("CPU", [dict(batch_size=B, examples_per_s=100.0 * B) for B in (1, 8)])]
    model = [("GPU", [dict(batch_size=B, examples_per_s=50.0 * B) for B in (1, 8)])]
    fig = plots.recorded_vs_live(live, predicted=model)
    assert "GPU (model, not measured)" in [line.get_label() for line in fig.axes[0].get_lines()]


def test_cpu_peak_by_hand():
    # 2 cores × 2 FMA units × 8 float32 lanes (256 bits) × 2 FLOPs × 2.6 GHz
    assert bench.cpu_peak_gflops(2, 2.6, 256, 2) == pytest.approx(2 * 2 * 8 * 2 * 2.6)
    assert bench.cpu_peak_gflops(2, 2.6, 256, 2, itemsize=8) == pytest.approx(2 * 2 * 4 * 2 * 2.6)
    # AVX-512 doubles the lanes only where the FMA units are 512 bits wide
    assert bench.fma_datapath_bits("AuthenticAMD", 0x19, 512) == 256  # Zen 4
    assert bench.fma_datapath_bits("GenuineIntel", 6, 512) == 512
    assert bench.fma_datapath_bits("AuthenticAMD", 0x1A, 512) == 512  # Zen 5
    facts = bench.cpu_vector_facts()
    if facts:  # Linux
        assert facts["datapath_bits"] <= facts["simd_bits"] and facts["clock_ghz"] >= 0


def test_matmul_rates_rows():
    rows = bench.matmul_rates(12, 8, [1, 3], repeats=1)
    assert [r["m"] for r in rows] == [1, 3]
    for r in rows:
        assert r["gflops"] == pytest.approx(2 * r["m"] * 12 * 8 / r["seconds"] / 1e9)
        assert r["intensity"] == bench.matmul_intensity(12, 8, r["m"], 4)


def test_copy_roofs_measure_memory_and_the_caches_it_can_read():
    roofs = bench.copy_roofs(repeats=1)
    assert "memory" in roofs and roofs["memory"]["gbs"] > 0
    assert set(roofs) <= {"L2", "L3", "memory"}
