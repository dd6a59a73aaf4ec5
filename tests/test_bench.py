"""The benchmark (mlp_core.bench), at sizes that run in seconds: records, the table, the
JSON file, the FLOP count against a hand count, skipped contenders, the command line.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest

from mlp_core import bench, cli
from mlp_core.core.backend import gpu_available
from mlp_core.core.errors import ConfigError
from mlp_core.core.gradcheck import relative_error
from mlp_core.core.params import init_params
from mlp_core.training import run_epoch

TINY = bench.BenchSize("tiny-test", 200, (20, 16, 12, 5), 32)
CPU_CONTENDERS = ("loop", "numpy-batched", "numpy-fast", "sklearn", "torch-cpu", "gemm-numpy")


def installed(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def tiny_result():
    return bench.run_bench(
        sizes=[TINY],
        dtypes=["float32"],
        repeats=2,
        warmup=1,
        contenders=bench.CONTENDERS,
        pause=0.0,
        spell_wait=0.0,
    )


def test_epoch_flops_equals_a_hand_count():
    # h = (20, 16, 12, 5), m = 200. Per example, a multiply-add counting 2:
    forward = 2 * (20 * 16 + 16 * 12 + 12 * 5)  # Z^l = A^{l-1} W^l, l = 1, 2, 3
    weight_gradients = 2 * (20 * 16 + 16 * 12 + 12 * 5)  # (A^{l-1})^T Δ^l, l = 1, 2, 3
    hidden_errors = 2 * (16 * 12 + 12 * 5)  # Δ^l (W^l)^T, l = 3, 2 (not 1)
    assert forward == 1144 and hidden_errors == 504
    assert (
        bench.epoch_flops(200, (20, 16, 12, 5))
        == 200 * (forward + weight_gradients + hidden_errors)
        == 558_400
    )


def test_gemm_floor_does_exactly_the_counted_products(monkeypatch):
    """Summing 2·m·k·n over the products the floor lists gives epoch_flops, and the timed
    call makes each listed product (its outputs change from what the set-up left)."""
    from mlp_core.bench import contenders

    counted, outputs = [], []
    real_gemm_call = contenders.gemm_call

    def counting_gemm_call(gemm, a, b, out):
        counted.append(2 * a.shape[0] * a.shape[1] * b.shape[1])
        outputs.append((a, b, out))
        return real_gemm_call(gemm, a, b, out)

    monkeypatch.setattr(contenders, "gemm_call", counting_gemm_call)
    p = bench.make_problem(bench.BenchSize("odd", 45, (7, 9, 6, 4), 10), np.float64)
    runner = bench.setup_contender("gemm-numpy", p, use_gpu=False)
    assert sum(counted) == bench.epoch_flops(45, (7, 9, 6, 4))
    n_listed = len(counted)
    last_a, last_b, last_out = outputs[-1]  # the epoch's last product: Δ^1's G^1 = X_b^T Δ^1
    last_out.fill(np.nan)
    runner.run()
    assert len(counted) == n_listed  # the timed call lists nothing: it makes the calls
    np.testing.assert_allclose(last_out, last_a @ last_b, rtol=1e-12)


def test_run_bench_records(tiny_result):
    records = {r["contender"]: r for r in tiny_result["records"]}
    expected = {"loop", "numpy-batched", "numpy-fast", "gemm-numpy"}
    expected |= {"sklearn"} if installed("sklearn") else set()
    expected |= {"torch-cpu"} if installed("torch") else set()
    if gpu_available():  # pragma: no cover - GPU machines only
        expected |= {"cupy-batched", "cupy-fast", "cupy-fast-graph", "gemm-cupy"}
    assert expected <= set(records)
    for r in records.values():
        assert len(r["times"]) == 2 and all(t > 0 for t in r["times"])
        assert r["seconds"] > 0 and r["examples_per_s"] > 0 and r["gflops"] > 0
        assert r["gflop"] == pytest.approx(bench.epoch_flops(200, TINY.sizes) / 1e9)
        assert r["seconds"] == pytest.approx(bench.median(r["times"]) * r["scale"])
        assert r["pct_gemm"] is not None
        gpu = r["contender"] in bench.GPU_CONTENDERS  # the table's device is the record's
        assert r["device"] == ("gpu" if gpu else "cpu")
        assert r["timer"] == ("CUDA events" if gpu else "perf_counter, device synchronised")
    floor = records["gemm-numpy"]  # % GEMM is against the floor's fastest epoch
    best = floor["gflop"] / (min(floor["times"]) * floor["scale"])
    assert floor["pct_gemm"] == pytest.approx(100 * floor["gflops"] / best)
    fast = records["numpy-fast"]
    assert fast["pct_gemm"] == pytest.approx(100 * fast["gflops"] / best)
    assert records["loop"]["speedup"]["loop"] == pytest.approx(1)
    assert fast["speedup"]["numpy-batched"] == pytest.approx(
        records["numpy-batched"]["seconds"] / fast["seconds"]
    )
    assert not records["loop"]["extrapolated"]  # 200 examples: the whole epoch
    meta = tiny_result["meta"]
    for key in ("cpu", "cores", "date", "command", "versions", "blas"):
        assert key in meta
    assert meta["versions"]["numpy"] == np.__version__


def test_missing_gpu_contenders_are_skipped_with_a_reason(tiny_result):
    skipped = {s["contender"]: s["reason"] for s in tiny_result["skipped"]}
    if not gpu_available():
        for name in bench.GPU_CONTENDERS:
            assert "GPU" in skipped[name]
    if not installed("torch"):
        assert "not installed" in skipped["torch-cpu"]


def test_table_prints_every_record_and_every_skip(tiny_result):
    table = bench.format_table(tiny_result)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["size", "dtype", "contender"]
    for r in tiny_result["records"]:
        assert any(r["label"] in line and "tiny-test" in line for line in lines)
    for s in tiny_result["skipped"]:
        assert f"skipped: {s['contender']}" in table
    assert "% GEMM" in table and "medians of 2" in table


def test_json_writes_and_reloads(tiny_result, tmp_path):
    path = bench.write_json(tiny_result, tmp_path / "bench.json")
    back = json.loads(open(path).read())
    assert [r["contender"] for r in back["records"]] == [
        r["contender"] for r in tiny_result["records"]
    ]
    assert back["records"][0]["times"] == tiny_result["records"][0]["times"]
    assert back["meta"]["cpu"] == tiny_result["meta"]["cpu"]
    assert back["settings"]["repeats"] == 2


def test_not_installed_contenders_are_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.neural_network", None)
    result = bench.run_bench(
        sizes=[TINY],
        dtypes=["float64"],
        repeats=1,
        warmup=0,
        contenders=("numpy-fast", "sklearn", "torch-cpu"),
        device="cpu",
        pause=0.0,
    )
    assert [r["contender"] for r in result["records"]] == ["numpy-fast"]
    reasons = {s["contender"]: s["reason"] for s in result["skipped"]}
    assert "PyTorch is not installed" in reasons["torch-cpu"]
    assert "scikit-learn is not installed" in reasons["sklearn"]
    table = bench.format_table(result)
    assert "skipped: torch-cpu" in table and "skipped: sklearn" in table
    # no torch: the table's ×torch column says "not measured"
    assert result["records"][0]["speedup"]["torch"] is None


def test_loop_is_extrapolated_and_labelled():
    size = bench.BenchSize("sub", 96, (8, 6, 3), 16, loop_examples=32)
    result = bench.run_bench(
        sizes=[size],
        dtypes=["float64"],
        repeats=1,
        warmup=0,
        contenders=("loop", "numpy-batched"),
        device="cpu",
        pause=0.0,
    )
    loop = next(r for r in result["records"] if r["contender"] == "loop")
    assert loop["extrapolated"] and loop["scale"] == 3
    assert loop["seconds"] == pytest.approx(loop["times"][0] * 3)
    assert "32 of 96" in loop["note"]
    table = bench.format_table(result)
    assert "loop (single)*" in table and "* extrapolated" in table


def test_loop_epoch_equals_the_batched_epoch():
    """The loop contender computes the same epoch as training.run_epoch (float64)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(23, 7))
    Y = np.eye(4)[rng.integers(0, 4, 23)]
    params = init_params((7, 9, 4), seed=1)
    order = rng.permutation(23)
    loop = bench.epoch_loop(X, Y, params, order, 5, 0.1)
    ref, _ = run_epoch(X, Y, params, order, 5, 0.1)
    for l in params.layers:
        assert relative_error(loop.W[l], ref.W[l]) < 1e-12
        assert relative_error(loop.b[l], ref.b[l]) < 1e-12


def test_time_call_synchronises_before_every_clock_read():
    calls, syncs = [], []
    times = bench.time_call(
        lambda: calls.append(1), warmup=2, repeats=3, sync=lambda: syncs.append(len(calls))
    )
    assert len(times) == 3 and all(t >= 0 for t in times)
    assert len(calls) == 5
    assert syncs == [2, 3, 3, 4, 4, 5]  # before and after each timed call


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="unknown contender"):
        bench.run_bench(sizes=[TINY], contenders=("numpy-fast", "tensorflow"))
    with pytest.raises(ConfigError, match="unknown size"):
        bench.run_bench(sizes=("huge",))
    with pytest.raises(ConfigError, match="unknown dtype"):
        bench.run_bench(sizes=[TINY], dtypes=("float16",))
    with pytest.raises(ConfigError, match="unknown size ''"):
        bench.run_bench(sizes=",tiny")
    with pytest.raises(ConfigError, match="no contender given"):
        bench.run_bench(sizes=[TINY], contenders=" ")


def test_the_command_writes_the_json_it_is_asked_for(tmp_path, capsys):
    path = tmp_path / "quick.json"
    assert cli.main(["bench", "--quick", "--json", str(path)]) == 0
    text = capsys.readouterr().out
    assert "digits" in text and "NumPy fast" in text and f"wrote {path}" in text
    result = json.loads(path.read_text())
    assert result["settings"]["quick"] is True
    assert {r["size"] for r in result["records"]} == {"digits"}
    assert {r["dtype"] for r in result["records"]} == {"float32"}


def test_the_command_runs_the_sizes_dtypes_and_contenders_given(capsys):
    argv = ["--sizes", "tiny", "--dtypes", "float64", "--repeats", "1", "--warmup", "0"]
    assert cli.main(["bench", *argv, "--contenders", "numpy-batched,numpy-fast"]) == 0
    out = capsys.readouterr().out
    assert "NumPy fast" in out and "tiny" in out and "float64" in out and "loop" not in out


def test_the_command_reports_errors_in_one_line(tmp_path, capsys):
    assert cli.main(["bench", "--sizes", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown size")
    assert cli.main(["bench", "--quick", "--json", str(tmp_path / "no" / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --json: ") and "does not exist" in err


def run_fake_contenders(monkeypatch, seconds: dict, calls: list, **settings):
    """run_bench on TINY with stand-in contenders that only sleep ``seconds[name]``,
    appending their name to ``calls`` at every call; no pause, warm_below 0.01 s."""
    from mlp_core.bench import harness

    def fake_setup(name, p, use_gpu, loop_examples=None):
        def run():
            calls.append(name)
            if seconds[name]:
                time.sleep(seconds[name])

        return harness.Runner(name, "cpu", run)

    monkeypatch.setattr(harness, "setup_contender", fake_setup)
    return bench.run_bench(
        sizes=[TINY],
        dtypes=["float32"],
        warmup=1,
        pause=0.0,
        contenders=list(seconds),
        warm_below=0.01,
        **settings,
    )


def test_a_short_call_is_timed_right_after_an_untimed_one_of_its_own(monkeypatch):
    """warm_below: a contender faster than it runs twice per timed round (the first call
    untimed, kept as cold_times), one slower than it once; in the warm-up round both run
    twice (nothing is known of them yet)."""
    calls = []
    result = run_fake_contenders(
        monkeypatch, {"numpy-fast": 0.0, "sklearn": 0.03}, calls, repeats=3, round_seconds=0.0
    )
    records = {r["contender"]: r for r in result["records"]}
    assert calls.count("numpy-fast") == 2 + 3 * 2
    assert calls.count("sklearn") == 2 + 3
    assert len(records["numpy-fast"]["cold_times"]) == 3
    assert records["numpy-fast"]["cold_seconds"] is not None
    assert records["sklearn"]["cold_times"] == [] and records["sklearn"]["cold_seconds"] is None
    assert result["settings"]["warm_below"] == 0.01
    assert "timed right after an untimed one" in bench.format_table(result)


def test_a_short_call_is_timed_over_back_to_back_calls_filling_the_round(monkeypatch):
    """round_seconds: after its untimed call, a short contender's timed round is as many
    calls back to back as fill the round, its time their mean; a long one's is one call."""
    calls = []
    result = run_fake_contenders(
        monkeypatch, {"numpy-fast": 0.002, "sklearn": 0.03}, calls, repeats=2, round_seconds=0.02
    )
    records = {r["contender"]: r for r in result["records"]}
    fast_epochs = records["numpy-fast"]["epochs_per_round"]
    assert len(fast_epochs) == 2 and all(4 <= k <= 10 for k in fast_epochs)  # ~0.02 / 0.002
    # per round, the warm-up's too: one untimed call, then the round's calls
    warm_up_round = calls.count("numpy-fast") - 3 - sum(fast_epochs)
    assert 4 <= warm_up_round <= 10
    assert all(0.002 <= t < 0.005 for t in records["numpy-fast"]["times"])  # a mean, per call
    assert records["sklearn"]["epochs_per_round"] == [1, 1]
    assert calls.count("sklearn") == 2 + 2
    assert result["settings"]["round_seconds"] == 0.02
    assert "back-to-back calls filling 0.02 s" in bench.format_table(result)


def test_epochs_per_round_fills_the_round_within_its_bounds():
    from mlp_core.bench.timing import epochs_per_round

    assert epochs_per_round(0.2, 0.002) == 100
    assert epochs_per_round(0.2, 0.3) == 1
    assert epochs_per_round(0.2, 0.0) == 1000  # capped
    assert epochs_per_round(0.0, 0.002) == 1


def test_every_round_is_followed_by_a_host_speed_probe(tiny_result):
    """A probe of the host's speed before the first round and after every contender's
    round (warm-up included), what they say in ``host_speed``, and the table's line."""
    speed = tiny_result["host_speed"]
    taken = speed["probes_taken"]
    ran = [r["contender"] for r in tiny_result["records"]]
    assert taken[0] == dict(
        size="tiny-test", dtype="float32", round=1, after=None, gflops=taken[0]["gflops"]
    )
    again = speed["rounds_timed_again"]
    assert len(taken) == 1 + 3 * len(ran) + 2 * again  # 1 warm-up + 2 timed rounds each
    assert sorted({p["after"] for p in taken[1:]} - {"wait"}) == sorted(ran)
    assert all(p["gflops"] > 0 for p in taken) and speed["n"] == bench.timing.PROBE_N
    assert speed["gflops_max"] <= max(p["gflops"] for p in taken)
    assert "host speed: a 512² float32 product ran at" in bench.format_table(tiny_result)


def scripted_probes(monkeypatch, rates):
    """The host-speed probe returns ``rates`` in turn (GFLOP/s), then its last one."""
    from mlp_core.bench import harness

    rates = list(rates)
    monkeypatch.setattr(
        harness, "host_gflops", lambda: rates.pop(0) if len(rates) > 1 else rates[0]
    )


def test_a_round_after_which_the_host_was_slow_is_timed_again(monkeypatch):
    """One probe a third slower (a slow spell of the host) after the warm-up round's first
    contender: that round is timed again, after a fresh probe; the slow probe does not
    count, and the run is steady."""
    scripted_probes(monkeypatch, [200.0, 150.0] + [200.0] * 20)
    calls = []
    result = run_fake_contenders(
        monkeypatch,
        {"numpy-fast": 0.0, "sklearn": 0.0},
        calls,
        repeats=2,
        round_seconds=0.0,
        spell_wait=0.0,
    )
    speed = result["host_speed"]
    assert speed["rounds_timed_again"] == 1 and speed["steady"]
    assert speed["gflops_min"] == 200.0 and len(speed["probes_taken"]) == 1 + 3 * 2 + 2
    assert calls.count("numpy-fast") == 3 * 2 + 2  # its warm-up round twice (untimed + timed)
    assert calls.count("sklearn") == 3 * 2
    assert "1 rounds timed again after a slow probe" in bench.format_table(result)


def test_a_spell_that_outlasts_the_retries_leaves_the_run_unsteady(monkeypatch):
    """The negative control: a host slow after its first probe is still slow after every
    retry; the rounds are kept after two retries each and the run says it was unsteady."""
    scripted_probes(monkeypatch, [200.0, 150.0])
    calls = []
    result = run_fake_contenders(
        monkeypatch, {"numpy-fast": 0.0}, calls, repeats=2, round_seconds=0.0, spell_wait=0.0
    )
    speed = result["host_speed"]
    assert speed["rounds_timed_again"] == 2 * 3  # two retries in each of the 3 rounds
    assert not speed["steady"] and speed["max_over_min"] == pytest.approx(200 / 150)
    assert result["records"][0]["rounds_timed_again"] == 2 * 2  # of its 2 timed rounds
    assert "changed speed during the run" in bench.format_table(result)


def test_the_probe_s_rate_is_the_flops_over_its_fastest_call(monkeypatch):
    """host_gflops times each product with the clock and keeps the fastest: a machine
    whose products take twice as long reads half as fast, and the two probes together are
    not steady (the negative control: a probe that did not time the products would)."""
    from mlp_core.bench import timing

    def clock_ticking(seconds_per_call):
        reads = iter(range(10**6))
        return lambda: next(reads) * seconds_per_call

    monkeypatch.setattr(timing.time, "perf_counter", clock_ticking(1e-3))
    fast = timing.host_gflops(n=64, calls=3)
    monkeypatch.setattr(timing.time, "perf_counter", clock_ticking(2e-3))
    slow = timing.host_gflops(n=64, calls=3)
    assert fast == pytest.approx(2 * 64**3 / 1e-3 / 1e9) and slow == pytest.approx(fast / 2)
    assert not timing.steadiness([fast, slow])["steady"]


def test_steadiness_is_the_slowest_probe_against_the_fastest():
    from mlp_core.bench import timing
    from mlp_core.bench.report import host_speed_note

    held = timing.steadiness([200.0, 190.0, 180.0])
    assert held["max_over_min"] == pytest.approx(200 / 180) and held["steady"]
    assert timing.steadiness([115.0, 100.0])["steady"]  # at the bound: still steady
    spell = timing.steadiness([205.0, 150.0, 204.0])  # a third slower for a while
    assert not spell["steady"] and spell["gflops_min"] == 150.0
    assert host_speed_note(dict(held, n=512)).endswith("steady.")
    assert "changed speed during the run" in host_speed_note(dict(spell, n=512))
    for bad in ([], [100.0, 0.0]):
        with pytest.raises(ConfigError, match="positive probe rates"):
            timing.steadiness(bad)
