"""Data-parallel SGD on MPI equals one process (mlp_core.distributed, chapter 14).

The MPI tests launch real ranks with ``mpiexec -n P`` (P = 1..4, oversubscribed on a small
machine), each under a timeout, and compare what rank 0 wrote with ``mc.train(...,
fast=False)`` in this process: float64 to 1e-12 relative, float32 to 1e-5. Two planted
mistakes (no division by m_b; an average of the ranks' means over uneven parts) must fail
that same comparison. They skip, with the reason, only where mpi4py is not installed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from conftest import make_problem

import mlp_core as mc
from mlp_core import distributed, training
from mlp_core.core.batched import backprop
from mlp_core.core.batching import batch_slices, epoch_order
from mlp_core.core.io import load_params
from mlp_core.core.params import Params

HERE = pathlib.Path(__file__).resolve().parent
WORKER = HERE / "distributed" / "worker.py"
TOL = {"float64": 1e-12, "float32": 1e-5}


def find_mpiexec():
    local = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


MPIEXEC = find_mpiexec()
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and MPIEXEC is not None
requires_mpi = pytest.mark.skipif(
    not HAVE_MPI, reason="mpi4py or mpiexec not installed (pip install 'mlp_core[mpi]')"
)


def mpiexec_command(P, *args):
    """``mpiexec -n P python ARGS`` and its environment (one BLAS thread per rank)."""
    flags = []
    version = subprocess.run([MPIEXEC, "--version"], capture_output=True, text=True, timeout=30)
    if "Open MPI" in version.stdout + version.stderr:  # as root, and more ranks than cores
        flags = ["--oversubscribe", "--allow-run-as-root"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return [MPIEXEC, *flags, "-n", str(P), sys.executable, *map(str, args)], env


def mpiexec(P, *args, timeout=90):
    """Run ``mpiexec -n P python ARGS`` with a timeout; returns the CompletedProcess."""
    command, env = mpiexec_command(P, *args)
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE.parent
    )


def run_worker(tmp_path, P, *flags):
    out = tmp_path / f"P{P}.npz"
    proc = mpiexec(P, WORKER, out, *flags)
    assert proc.returncode == 0, proc.stderr
    return dict(np.load(out))


def relative(a, b) -> float:
    """max |a − b| / max |b| (0 when both are zero)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale else float(np.abs(a).max())


def params_from(saved, prefix, L):
    return Params(
        {l: saved[f"{prefix}W{'0' if prefix else ''}_{l}"] for l in range(1, L + 1)},
        {l: saved[f"{prefix}b{'0' if prefix else ''}_{l}"] for l in range(1, L + 1)},
    )


def single_process(saved, epochs=2, batch_size=10, lr=0.5, seed=3):
    """What one process computes from the worker's data and initial parameters."""
    X, Y = saved["X"], saved["Y"]
    L = sum(k.startswith("W0_") for k in saved)
    W0 = {l: saved[f"W0_{l}"] for l in range(1, L + 1)}
    b0 = {l: saved[f"b0_{l}"] for l in range(1, L + 1)}
    params = Params(W0, b0)
    order = epoch_order(X.shape[0], np.random.default_rng(seed))
    first = order[slice(*batch_slices(X.shape[0], batch_size)[0])]
    dW, db = backprop(X[first], Y[first], params)
    trained, history = mc.train(
        params, X, Y, X_val=X[:7], Y_val=Y[:7], epochs=epochs, batch_size=batch_size,
        lr=lr, seed=seed, progress=False, fast=False,
    )  # fmt: skip
    return dW, db, trained, history


def worst_difference(saved):
    """The largest relative difference, over every compared array, from one process."""
    dW, db, trained, history = single_process(saved)
    diffs = []
    for l in trained.layers:
        diffs += [relative(saved[f"dW_{l}"], dW[l]), relative(saved[f"db_{l}"], db[l])]
        diffs += [relative(saved[f"W_{l}"], trained.W[l]), relative(saved[f"b_{l}"], trained.b[l])]
    for key, values in dataclasses.asdict(history).items():
        diffs.append(relative(saved[f"history_{key}"], values))
    return max(diffs)


# ---- without MPI: the split and the buffer ----


@pytest.mark.parametrize("m_b", [0, 1, 2, 3, 7, 10, 23])
@pytest.mark.parametrize("P", [1, 2, 3, 4])
def test_rank_rows_cover_the_batch_in_nearly_equal_blocks(m_b, P):
    blocks = [distributed.rank_rows(m_b, P, r) for r in range(P)]
    assert blocks[0][0] == 0 and blocks[-1][1] == m_b
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))  # contiguous, no overlap
    sizes = [stop - start for start, stop in blocks]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 0


def test_buffer_holds_every_local_sum_once():
    sizes = (6, 5, 4, 3)
    layout = distributed.buffer_layout(sizes)
    assert distributed.buffer_size(sizes) == (6 * 5 + 5) + (5 * 4 + 4) + (4 * 3 + 3) + 1
    covered = np.zeros(distributed.buffer_size(sizes), dtype=int)
    for _, _, where, _ in layout:
        covered[where] += 1
    assert (covered == 1).all()


def test_local_sums_of_two_blocks_add_up_to_the_batch_gradient():
    """In one process: the sums of two uneven blocks, added and divided once, are the
    batch gradient; the average of the two blocks' means is not (negative control)."""
    rng = np.random.default_rng(0)
    sizes, m = (6, 5, 4, 3), 7
    X = rng.standard_normal((m, 6))
    Y = np.eye(3)[rng.integers(0, 3, m)]
    params = mc.init_params(sizes, seed=1)
    dW, db = backprop(X, Y, params)
    n = distributed.buffer_size(sizes)
    parts = [distributed.local_sums(X[s], Y[s], params, "relu", "cross_entropy", np.empty(n))
             for s in (slice(0, 5), slice(5, 7))]  # fmt: skip
    dW_sums, db_sums, _ = distributed.global_mean(parts[0] + parts[1], m, params)
    means = [p / k for p, k in zip(parts, (5, 2))]
    dW_means, _, _ = distributed.global_mean(means[0] + means[1], 2, params)
    for l in params.layers:
        assert relative(dW_sums[l], dW[l]) < 1e-13 and relative(db_sums[l], db[l]) < 1e-13
    assert max(relative(dW_means[l], dW[l]) for l in params.layers) > 1e-3


def test_world_size_and_rank_read_the_launchers_environment():
    assert distributed.world_size({}) == 1 and distributed.world_rank({}) == 0
    assert distributed.world_size({"PMI_SIZE": "3"}) == 3
    assert distributed.world_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
    assert distributed.world_rank({"PMI_RANK": "2"}) == 2
    assert distributed.world_rank({"OMPI_COMM_WORLD_RANK": "1"}) == 1


@pytest.mark.parametrize(
    "environ, used",
    [
        ({"MPI_LOCALRANKID": "5"}, [1]),  # MPICH: the node's rank 5 of 4 GPUs takes GPU 1
        ({"OMPI_COMM_WORLD_LOCAL_RANK": "2"}, [2]),  # Open MPI
        ({"MPI_LOCALRANKID": " 3 "}, [3]),
        ({"MPI_LOCALRANKID": "x"}, []),
        ({}, []),
    ],
)
def test_each_rank_of_a_node_takes_its_own_gpu(environ, used, monkeypatch):
    chosen = []

    class Device:
        def __init__(self, index):
            self.index = index

        def use(self):
            chosen.append(self.index)

    cupy = types.SimpleNamespace(
        cuda=types.SimpleNamespace(
            Device=Device, runtime=types.SimpleNamespace(getDeviceCount=lambda: 4)
        )
    )
    monkeypatch.setattr(mc.backend, "gpu_xp", lambda: cupy)
    distributed.use_local_gpu(environ)
    assert chosen == used
    monkeypatch.setattr(mc.backend, "gpu_xp", lambda: None)
    distributed.use_local_gpu(environ)  # no usable GPU: nothing to choose
    assert chosen == used


# ---- with MPI: real ranks ----


@requires_mpi
@pytest.mark.parametrize("P", [1, 2, 3, 4])
def test_ranks_equal_one_process(tmp_path, P):
    """Gradients of the first step, parameters after two epochs and the history; batches
    of 10, 10 and 3 rows (uneven blocks for P = 3, 4; an empty block for P = 4)."""
    for dtype in ("float64", "float32"):
        saved = run_worker(tmp_path, P, "--dtype", dtype)
        assert worst_difference(saved) < TOL[dtype], (P, dtype)


@requires_mpi
@pytest.mark.parametrize("bug", ["no-division", "mean-of-means"])
def test_planted_mistakes_fail_the_equality(tmp_path, bug):
    saved = run_worker(tmp_path, 3, "--bug", bug)
    assert worst_difference(saved) > 1e-3


@requires_mpi
def test_a_failing_rank_ends_every_rank_quickly(tmp_path):
    start = time.perf_counter()
    proc = mpiexec(3, WORKER, tmp_path / "x.npz", "--fail-rank", "1", "--fail-step", "3")
    assert time.perf_counter() - start < 30
    assert proc.returncode != 0
    assert "error on MPI rank 1 of 3: RuntimeError: planted failure in step 3" in proc.stderr
    assert not (tmp_path / "x.npz").exists()


@requires_mpi
@pytest.mark.parametrize("what", ["seed", "dtype", "sizes"])
def test_ranks_that_disagree_are_refused_at_start(tmp_path, what):
    proc = mpiexec(2, WORKER, tmp_path / "x.npz", "--mismatch", what)
    assert proc.returncode == 2, proc.stderr
    assert f"the 2 MPI ranks disagree on {what}" in proc.stderr


@requires_mpi
def test_cli_under_mpiexec_prints_and_saves_what_one_process_does(tmp_path):
    flags = ["-m", "mlp_core", "train", "--dtype", "float64", "--hidden", "16", "--epochs", "3"]
    one = subprocess.run(
        [sys.executable, *flags, "--save", tmp_path / "one.npz"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    three = mpiexec(3, *flags, "--save", tmp_path / "three.npz")
    assert one.returncode == 0 and three.returncode == 0, three.stderr
    table = [line for line in one.stdout.splitlines() if not line.startswith(("final", "saved"))]
    assert [line for line in three.stdout.splitlines()][: len(table)] == table  # rank 0 only
    one_params, meta1 = load_params(tmp_path / "one.npz")
    three_params, meta3 = load_params(tmp_path / "three.npz")
    for l in one_params.layers:
        assert relative(three_params.W[l], one_params.W[l]) < 1e-12
        assert relative(three_params.b[l], one_params.b[l]) < 1e-12
    assert meta1 == meta3


# ---- one loop, one gate: the data-parallel trainer in this process (P = 1) ----


@requires_mpi
def test_the_data_parallel_trainer_is_mc_train_with_its_own_epoch(monkeypatch):
    """One rank: the same result as mc.train(fast=False), through mc.train itself (with
    the data-parallel epoch and evaluation), not through a loop of its own."""
    X, Y, params = make_problem()
    kw = dict(epochs=3, batch_size=3, lr=0.3, seed=2, progress=False)
    ref, h_ref = mc.train(params, X, Y, fast=False, **kw)
    calls = []
    monkeypatch.setattr(
        distributed.sgd, "train", lambda *a, **k: calls.append(k) or training.train(*a, **k)
    )
    got, h = distributed.train_distributed(params, X, Y, comm=distributed.world(), **kw)
    for l in ref.layers:
        np.testing.assert_array_equal(got.W[l], ref.W[l])
        np.testing.assert_array_equal(got.b[l], ref.b[l])
    assert h == h_ref
    assert len(calls) == 1 and calls[0]["epoch_fn"].func is distributed.run_epoch_distributed
    assert calls[0]["evaluate_fn"].func is distributed.evaluate_distributed


@requires_mpi
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(fast=True), "no fast data-parallel epoch"),
        (dict(fast="no"), "fast must be True, False or None"),
        (dict(comm=5), "comm must be an MPI communicator"),
        (dict(on_epoch="print"), "on_epoch must be a function"),
        (dict(lr=-1), "learning rate"),
    ],
)
def test_the_data_parallel_trainer_refuses_before_any_epoch(kwargs, match, monkeypatch):
    X, Y, params = make_problem()
    ran = []
    monkeypatch.setattr(distributed.sgd, "run_epoch_distributed", lambda *a: ran.append(a))
    with pytest.raises(mc.ConfigError, match=match):
        distributed.train_distributed(params, X, Y, **{"progress": False, **kwargs})
    assert ran == []


# ---- ranks fail together, stop together, and say it once ----


@requires_mpi
def test_an_error_on_one_rank_before_training_ends_every_rank_at_once(tmp_path):
    start = time.perf_counter()
    proc = mpiexec(2, WORKER, tmp_path / "x.npz", "--bad-rank", "1", timeout=60)
    assert time.perf_counter() - start < 30
    assert proc.returncode == 2, proc.stderr
    assert "error on rank 1: X contains 1 NaN" in proc.stderr
    assert "error on rank 0: MPI rank 1 of 2: X contains 1 NaN" in proc.stderr


@requires_mpi
def test_a_signal_to_one_rank_stops_every_rank_after_the_same_epoch(tmp_path):
    out = tmp_path / "stopped.npz"
    proc = mpiexec(2, WORKER, out, "--epochs", 5, "--interrupt-rank", 1, "--interrupt-epoch", 2)
    assert proc.returncode == 130, proc.stderr
    saved = dict(np.load(out))
    _, _, trained, history = single_process(saved, epochs=2)
    assert saved["history_epoch"].tolist() == [1, 2]
    for l in trained.layers:
        assert relative(saved[f"W_{l}"], trained.W[l]) < TOL["float64"]
        assert relative(saved[f"b_{l}"], trained.b[l]) < TOL["float64"]


CLI = ["-m", "mlp_core", "train", "--dtype", "float64", "--hidden", "16"]


def error_lines(stderr):
    """Our program's error lines (not the launcher's own notes)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@requires_mpi
def test_cli_refusing_save_under_mpiexec_ends_every_rank_within_seconds(tmp_path):
    start = time.perf_counter()
    proc = mpiexec(2, *CLI, "--save", tmp_path / "missing" / "m.npz", timeout=60)
    assert time.perf_counter() - start < 30
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = error_lines(proc.stderr)
    assert "--save" in line and "does not exist" in line


@requires_mpi
def test_cli_divergence_under_mpiexec_is_reported_once():
    flags = ["--dataset", "xor", "--lr", "1e4", "--epochs", "5"]
    proc = mpiexec(2, "-m", "mlp_core", "train", *flags, timeout=60)
    assert proc.returncode == 2
    (line,) = error_lines(proc.stderr)
    assert line.startswith("error: training diverged: the loss")


@requires_mpi
def test_ctrl_c_to_mpiexec_saves_what_was_trained_and_says_so_once(tmp_path):
    save = tmp_path / "m.npz"
    command, env = mpiexec_command(2, *CLI, "--epochs", "5000", "--save", save)
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        rows = 0
        for line in proc.stdout:  # the table's first row: training is under way
            rows += line.split()[:1] == ["1"]
            if rows:
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    (line,) = error_lines(stderr)
    assert line.startswith("error: interrupted (SIGINT)") and str(save) in line
    params, meta = load_params(save)
    assert meta["interrupted"] and f"after epoch {meta['epochs']} " in line
    assert params.sizes == (64, 16, 10)


# ---- the benchmark's model and its record ----


def test_ring_model_is_the_alpha_beta_formula():
    from mlp_core.bench import allreduce

    assert allreduce.ring_allreduce_seconds(1e6, 1, 1e-6, 1e9) == 0.0
    # P = 4: 2·3/4 · 1e6 B / 1e9 B/s + 2·3 · 1 µs = 1.5 ms + 6 µs
    assert allreduce.ring_allreduce_seconds(1e6, 4, 1e-6, 1e9) == pytest.approx(1.506e-3)


def test_recorded_allreduce_benchmark_covers_p_1_to_4_with_the_model():
    import json

    from mlp_core.bench import allreduce

    path = HERE.parent / "book" / "data" / "allreduce-cpu.json"
    result = json.loads(path.read_text())
    assert [block["P"] for block in result["per_P"]] == [1, 2, 3, 4]
    assert {"cpu", "date", "command"} <= set(result["machine"])
    for block in result["per_P"][1:]:
        for r in block["rows"]:
            model = allreduce.ring_allreduce_seconds(
                r["bytes"], r["P"], block["alpha_s"], block["beta_bytes_per_s"]
            )
            assert r["model_s"] == pytest.approx(model)
            assert r["ratio"] == pytest.approx(r["allreduce_s"] / r["compute_s"])
    assert "all-reduce ms" in allreduce.format_table(result)
