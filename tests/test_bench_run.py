"""The benchmark's run and command line, made honest: spread and flags, the load read
before the run, the JSON proven writable first (with a fallback), refused arguments,
MLP_CORE_DEVICE, and contenders walking the library's batches."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

import numpy as np
import pytest

from mlp_core import bench, cli
from mlp_core.bench import contenders, harness
from mlp_core.core.errors import ConfigError, ParamsFileError
from mlp_core.core.gradcheck import relative_error
from mlp_core.core.params import init_params

TINY = bench.BenchSize("tiny-run", 53, (9, 7, 4), 16)  # 53 = 3·16 + 5: a short last batch
FAST = ("numpy-batched", "numpy-fast", "gemm-numpy")


def run_tiny(**kw):
    kw.setdefault("contenders", FAST)
    return bench.run_bench(sizes=[TINY], dtypes=["float64"], repeats=4, pause=0.0, **kw)


def test_spread_quartiles_and_the_flag():
    s = bench.spread([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s["min"], s["q1"], s["median"], s["q3"], s["max"]) == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert s["max_over_min"] == 5.0 and s["unstable"]
    steady = bench.spread([1.0, 1.1, 1.9])
    assert not steady["unstable"]  # 1.9 < 2
    assert bench.spread([0.5])["q1"] == 0.5


def test_every_record_has_its_spread_and_the_table_flags_a_bimodal_contender():
    result = run_tiny()
    for r in result["records"]:
        sp = r["spread"]
        assert sp["min"] <= sp["q1"] <= sp["median"] <= sp["q3"] <= sp["max"]
        assert sp["median"] == pytest.approx(r["seconds"])
        assert r["timer"].startswith("perf_counter")
    # make one contender bimodal (as the recorded PyTorch CPU times were) and re-report
    rec = next(r for r in result["records"] if r["contender"] == "numpy-fast")
    rec["spread"] = bench.spread([0.024, 0.025, 0.106, 0.104])
    table = bench.format_table(result)
    fast_line = next(line for line in table.splitlines() if line.split()[2:4] == ["NumPy", "fast"])
    assert "4.4!" in fast_line
    assert "'!' marks a contender above 2" in table


def test_an_extrapolated_records_spread_is_recomputed_from_its_times_alike():
    """The run scales a subsample's spread to an epoch; a recording without a stored
    spread gets it back from its times and scale, the same numbers."""
    result = run_tiny(contenders=("loop",), loop_examples=20)
    (r,) = result["records"]
    assert r["scale"] == pytest.approx(53 / 20)
    assert r["spread"]["median"] == pytest.approx(r["seconds"])
    assert bench.record_spread(dict(r, spread=None)) == r["spread"]


def test_each_ratio_is_taken_against_the_contender_of_its_rows_device():
    """PyTorch and the GEMM floor run on both devices: a CPU row's ×torch and % GEMM are
    against the CPU ones, in the numbers and in the '!' of an unstable reference."""
    result = run_tiny(contenders=("numpy-fast",))
    (base,) = result["records"]

    def record(name, device, seconds, times):
        return dict(
            base, contender=name, label=bench.LABELS[name], device=device, seconds=seconds,
            gflop=1.0, gflops=1 / seconds, spread=bench.spread(times),
        )  # fmt: skip

    block = [
        record("torch-cpu", "cpu", 2.0, [2.0, 2.1]),
        record("numpy-fast", "cpu", 1.0, [1.0, 1.1]),
        record("gemm-numpy", "cpu", 0.6, [0.5, 0.6, 1.1]),  # % GEMM: against its best, 0.5
        record("torch-cuda", "gpu", 4.0, [1.0, 4.0]),  # unstable: max/min = 4
        record("cupy-fast", "gpu", 0.5, [0.5, 0.6]),
        record("gemm-cupy", "gpu", 0.25, [0.25, 0.25]),
    ]
    harness._add_ratios(block)
    by = {r["contender"]: r for r in block}
    assert by["numpy-fast"]["speedup"]["torch"] == 2.0  # torch-cpu's 2 s over 1 s
    assert by["cupy-fast"]["speedup"]["torch"] == 8.0  # torch-cuda's 4 s over 0.5 s
    assert by["numpy-fast"]["pct_gemm"] == by["cupy-fast"]["pct_gemm"] == pytest.approx(50)
    result["records"] = block
    lines = bench.format_table(result).splitlines()
    assert "8!" in next(line for line in lines if "CuPy fast" in line)
    assert "!" not in next(line for line in lines if "NumPy fast" in line)


@pytest.mark.parametrize("set_one", [False, True])
def test_the_run_and_its_table_say_when_a_thread_pool_is_not_at_its_default(set_one, monkeypatch):
    for k in bench.POOL_VARIABLES:
        monkeypatch.delenv(k, raising=False)
    if set_one:
        monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    notes = []
    result = run_tiny(progress=notes.append)
    expected = {k: None for k in bench.POOL_VARIABLES}
    if set_one:
        expected["OMP_WAIT_POLICY"] = "passive"
    assert result["meta"]["thread_pools"] == expected
    warned = any("OMP_WAIT_POLICY=passive" in line for line in notes)
    in_table = "not at their libraries' defaults (OMP_WAIT_POLICY=passive)" in bench.format_table(
        result
    )
    assert warned == in_table == set_one


def test_recordings_start_python_with_every_thread_pool_at_its_default():
    from mlp_core.bench.machine import environment_with_default_pools

    env = environment_with_default_pools(
        {"PATH": "/bin", "OMP_WAIT_POLICY": "passive", "OPENBLAS_THREAD_TIMEOUT": "4"}
    )
    assert env == {"PATH": "/bin"}


def test_load_is_read_before_the_run(monkeypatch):
    calls = []
    monkeypatch.setattr(harness, "load_average", lambda: calls.append("load") or [0.1, 0, 0])
    real = harness.setup_contender

    def setup(*a, **k):
        calls.append("setup")
        return real(*a, **k)

    monkeypatch.setattr(harness, "setup_contender", setup)
    result = run_tiny()
    assert calls[0] == "load" and "setup" in calls
    assert result["meta"]["load_average_before"] == [0.1, 0, 0]
    assert set(result["meta"]["thread_pools"]) == set(bench.POOL_VARIABLES)


@pytest.mark.parametrize("lr", [-0.1, 0.0, float("nan"), float("inf")])
def test_a_learning_rate_that_is_not_positive_and_finite_is_refused(lr, capsys):
    with pytest.raises(ConfigError, match="learning rate"):
        run_tiny(lr=lr)
    assert cli.main(["bench", "--quick", f"--lr={lr}"]) == 2
    assert "learning rate" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, value", [("--repeats", "0"), ("--repeats", "2.5"), ("--warmup", "-1")]
)
def test_repeats_and_warmup_are_whole_numbers(option, value, capsys):
    argv = ["bench", "--sizes", "tiny", "--contenders", "numpy-fast", f"{option}={value}"]
    assert cli.main(argv) == 2
    assert f"{option[2:]} must be a whole number" in capsys.readouterr().err


def test_quick_refuses_an_explicit_repeats_sizes_or_dtypes(capsys):
    for extra in (["--repeats", "7"], ["--sizes", "tiny"], ["--dtypes", "float64"]):
        assert cli.main(["bench", "--quick", *extra]) == 2
        err = capsys.readouterr().err
        assert "quick sets" in err and extra[0] in err
    with pytest.raises(ConfigError, match="--repeats"):
        bench.run_bench(quick=True, repeats=7)


def test_the_device_follows_MLP_CORE_DEVICE(monkeypatch):
    seen = []
    real = harness.backend.resolve_device
    monkeypatch.setattr(harness.backend, "resolve_device", lambda d=None: seen.append(d) or real(d))
    monkeypatch.setenv("MLP_CORE_DEVICE", "cpu")
    run_tiny()
    # the benchmark's own call passes None, so resolve_device reads MLP_CORE_DEVICE (the
    # later calls, with the resolved 'cpu', come from init_params and the contenders)
    assert seen[0] is None and set(seen[1:]) <= {"cpu"}
    monkeypatch.setenv("MLP_CORE_DEVICE", "nonsense")
    with pytest.raises(ConfigError, match="MLP_CORE_DEVICE"):
        run_tiny()


def test_json_is_proven_writable_before_the_run(tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(cli, "run_bench", lambda **k: ran.append(k))
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        targets = [not_a_folder / "x.json", tmp_path]
        if not os.access(readonly, os.W_OK):  # root ignores the mode
            targets.append(readonly / "x.json")
        for target in targets:
            assert cli.main(["bench", "--quick", "--json", str(target)]) == 2
            assert capsys.readouterr().err.startswith("error: --json: ")
    finally:
        readonly.chmod(0o700)
    assert not ran, "the benchmark ran although its results could not be written"
    with pytest.raises(ParamsFileError, match="^--json: .*is a folder"):  # the same class
        cli.check_option_path("--json", tmp_path, "bench.json")
    cli.check_option_path("--json", tmp_path / "fine.json", "bench.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "ro"]  # the probe is gone


def test_a_failed_write_goes_to_a_rescue_file_and_exits_3(tmp_path, monkeypatch, capsys):
    target = tmp_path / "out.json"
    real = cli.write_json

    def fail_once(result, path):
        if os.fspath(path) == str(target):
            raise OSError(28, "No space left on device")
        return real(result, path)

    monkeypatch.setattr(cli, "write_json", fail_once)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    assert cli.main(["bench", "--quick", "--json", str(target)]) == 3
    err = capsys.readouterr().err
    rescued = [p for p in tmp_path.iterdir() if p.name.startswith("mlp_core-rescued-")]
    assert len(rescued) == 1 and rescued[0].suffix == ".json" and str(rescued[0]) in err
    assert json.loads(rescued[0].read_text())["settings"]["quick"] is True
    assert not target.exists()


def test_write_json_leaves_no_temporary_file_behind(tmp_path):
    result = run_tiny()
    bench.write_json(result, tmp_path / "a.json")
    with pytest.raises(TypeError):  # json cannot serialise a set key
        bench.write_json(dict(result, bad={frozenset(): 1}), tmp_path / "b.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_write_json_follows_the_umask(tmp_path):
    before = os.umask(0o077)
    try:
        path = bench.write_json({"x": np.float32(0.5), "n": np.int64(3)}, tmp_path / "a.json")
    finally:
        os.umask(before)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert json.loads(pathlib.Path(path).read_text()) == {"x": 0.5, "n": 3}


def test_a_run_with_every_contender_skipped_fails(capsys):
    argv = ["--sizes", "tiny", "--repeats", "1", "--warmup", "0", "--device", "cpu"]
    assert cli.main(["bench", *argv, "--contenders", "cupy-fast,torch-cuda"]) == 2
    out, err = capsys.readouterr()
    assert "skipped: cupy-fast" in out
    assert err.splitlines()[-1].startswith("error: nothing was timed: every contender was skipped")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--allreduce", "--ranks", "0"], "every number of --ranks must be a whole number ≥ 1"),
        (["--allreduce", "--ranks", "abc"], "--ranks takes comma-separated whole numbers"),
        (["--allreduce", "--ranks", ""], "--ranks is empty"),
        (["--allreduce", "--sizes", "bogus"], "--sizes apply to the epoch benchmark only"),
        (["--allreduce", "--quick", "--lr", "1"], "--lr, --quick apply to the epoch benchmark"),
        (["--ranks", "2"], "--ranks is an option of --allreduce"),
    ],
)
def test_allreduce_options_are_checked_and_none_is_ignored(argv, needle, monkeypatch, capsys):
    monkeypatch.setattr(cli.allreduce, "run", lambda ranks: pytest.fail("launched"))
    assert cli.main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and len(err.splitlines()) == 1


def test_allreduce_launches_the_ranks_given_and_writes_the_json(tmp_path, monkeypatch, capsys):
    recorded = json.loads(
        (pathlib.Path(__file__).parents[1] / "book/data/allreduce-cpu.json").read_text()
    )
    launched = []
    monkeypatch.setattr(cli.allreduce, "run", lambda ranks: launched.append(ranks) or recorded)
    path = tmp_path / "allreduce.json"
    assert cli.main(["bench", "--allreduce", "--ranks", "1,2", "--json", str(path)]) == 0
    assert launched == [(1, 2)]
    assert json.loads(path.read_text()) == recorded
    assert "all-reduce ms" in capsys.readouterr().out


def test_loop_and_torch_walk_the_librarys_batches(monkeypatch):
    """Both contenders call batching.batch_slices (a short last batch included) and the
    loop's epoch still equals the book's batched epoch."""
    seen = []
    real = contenders.batch_slices
    monkeypatch.setattr(contenders, "batch_slices", lambda m, B: seen.append((m, B)) or real(m, B))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((13, 5))
    Y = np.eye(3)[rng.integers(0, 3, 13)]
    params = init_params((5, 4, 3), seed=1)
    order = rng.permutation(13)
    looped = bench.epoch_loop(X, Y, params, order, 4, 0.1)
    batched = bench.epoch_batched(X, Y, params, order, 4, 0.1)
    assert seen == [(13, 4)]
    for l in params.layers:
        assert relative_error(looped.W[l], batched.W[l]) < 1e-12
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(5, 3).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    bench.epoch_torch(
        model,
        opt,
        torch.nn.CrossEntropyLoss(),
        torch.from_numpy(X),
        torch.from_numpy(Y.argmax(1)),
        torch.from_numpy(order),
        4,
    )
    assert seen[-1] == (13, 4)


def test_copy_bandwidth_is_threaded_and_above_the_cache():
    llc = bench.last_level_cache_bytes()
    assert bench.default_copy_bytes() >= max(2**28, 8 * (llc or 0))
    assert bench.default_copy_bytes(xp=object()) == bench.GPU_COPY_BYTES == 2**30
    assert bench.copy_bandwidth(2**20, repeats=1, threads=3) > 0
