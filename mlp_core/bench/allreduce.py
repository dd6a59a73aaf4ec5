"""Compute against communication in data-parallel SGD, measured beside the α-β ring model.

``python -m mlp_core bench --allreduce --json book/data/allreduce-cpu.json``
launches ``mpiexec -n P python -m mlp_core.bench.allreduce`` for each P (:func:`run`; by
default P = 1 up to the cores); every
rank then times, per step, its compute (the local sums of its B/P rows,
:func:`mlp_core.distributed.local_sums`) and the one all-reduce of the buffer, for a few
network sizes and batch sizes. A ping-pong between ranks 0 and 1 measures the latency α
and the bandwidth β, and the ring all-reduce's cost model

    t_allreduce ≈ 2 (P − 1)/P · bytes/β + 2 (P − 1) α

is written beside each measurement. MPICH chooses its all-reduce algorithm by message
size and rank count (recursive doubling, Rabenseifner's reduce-scatter + all-gather, its
shared-memory collectives); so that the model describes what runs, the benchmark forces
the ring (:data:`RING`). Each rank runs one BLAS thread. The default ranks go up to the
cores this process may use (P ≤ cores); a P above that (``--ranks`` given) is run but
marked ``oversubscribed``: ranks then take turns on a core, and its times say nothing
about the algorithm.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..core.data import one_hot
from ..core.errors import ConfigError
from ..core.params import init_params
from ..distributed import allreducer, buffer_size, local_sums, rank_rows, world
from .machine import cpu_cores, machine_info
from .timing import median

# (name, layer widths h, global batch sizes B): the digits' network, an MNIST-sized one and
# a wide one, so that the buffer grows from ~10^4 to ~10^6 entries.
CONFIGS = (
    ("digits", (64, 128, 64, 10), (32, 512)),
    ("mnist", (784, 256, 128, 10), (64, 1024)),
    ("wide", (1024, 1024, 1024, 10), (64, 1024)),
)
STEPS = 15
PING_BYTES = (8, 2**25)  # 32 MiB: larger than the caches, like the big buffers
# MPICH's control variables: the ring algorithm for every all-reduce, not the device's own
# (shared-memory) collectives, and an error rather than a silent fall-back to another.
RING = {
    "MPIR_CVAR_ALLREDUCE_INTRA_ALGORITHM": "ring",
    "MPIR_CVAR_DEVICE_COLLECTIVES": "none",
    "MPIR_CVAR_COLLECTIVE_FALLBACK": "error",
}
# One BLAS / OpenMP thread per rank.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def ring_allreduce_seconds(nbytes: float, P: int, alpha: float, beta: float) -> float:
    """The α-β model of a ring all-reduce of ``nbytes`` over P ranks (0 for P = 1):
    a reduce-scatter and an all-gather, each P − 1 steps of one P-th of the buffer."""
    if P == 1:
        return 0.0
    return 2 * (P - 1) / P * nbytes / beta + 2 * (P - 1) * alpha


def ping_pong(comm, nbytes: int, repeats: int = 30) -> float:
    """One-way time of an ``nbytes`` message between ranks 0 and 1 (half the round trip,
    median of ``repeats``); the other ranks wait."""
    buf = np.zeros(max(nbytes // 8, 1))
    times = []
    for _ in range(repeats + 3):
        comm.Barrier()
        start = time.perf_counter()
        if comm.rank == 0:
            comm.Send(buf, dest=1)
            comm.Recv(buf, source=1)
        elif comm.rank == 1:
            comm.Recv(buf, source=0)
            comm.Send(buf, dest=0)
        times.append((time.perf_counter() - start) / 2)
    return comm.bcast(median(times[3:]), root=0)


def latency_bandwidth(comm) -> tuple[float, float]:
    """(α in s, β in bytes/s) from a small and a large ping-pong: t(n) = α + n/β."""
    small, large = (ping_pong(comm, n) for n in PING_BYTES)
    return small, (PING_BYTES[1] - PING_BYTES[0]) / max(large - small, 1e-12)


def worker(path: str, dtype: str = "float32") -> None:
    """One P: every rank measures; rank 0 writes the rows as JSON to ``path``."""
    comm = world()
    P = comm.size
    alpha, beta = latency_bandwidth(comm) if P > 1 else (None, None)
    rows = []
    for name, sizes, batches in CONFIGS:
        for B in batches:
            t = time_steps(comm, sizes, B, np.dtype(dtype))
            row = dict(P=P, network=name, sizes=list(sizes), B=B, dtype=dtype, **t)
            row["ratio"] = t["allreduce_s"] / t["compute_s"]
            row["model_s"] = ring_allreduce_seconds(t["bytes"], P, alpha, beta) if P > 1 else 0.0
            rows.append(row)
    if comm.rank == 0:
        block = dict(P=P, alpha_s=alpha, beta_bytes_per_s=beta, rows=rows)
        Path(path).write_text(json.dumps(block))


def time_steps(comm, sizes, B: int, dtype, steps: int = STEPS) -> dict:
    """Median per-step compute and all-reduce seconds (the slowest rank's) for one network."""
    from mpi4py import MPI

    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, sizes[0])).astype(dtype)
    Y = one_hot(rng.integers(0, sizes[-1], B), sizes[-1], dtype=dtype)
    params = init_params(sizes, seed=1, dtype=dtype)
    lo, hi = rank_rows(B, comm.size, comm.rank)
    buf = np.empty(buffer_size(sizes), dtype=dtype)
    reduce = allreducer(comm, buf)
    compute, communicate = [], []
    for _ in range(steps + 2):
        comm.Barrier()
        t0 = time.perf_counter()
        local_sums(X[lo:hi], Y[lo:hi], params, "relu", "cross_entropy", buf)
        t1 = time.perf_counter()
        comm.Barrier()  # the all-reduce alone, not the wait for a slower rank's compute
        t2 = time.perf_counter()
        reduce(buf)
        t3 = time.perf_counter()
        compute.append(t1 - t0)
        communicate.append(t3 - t2)
    mine = np.array([median(compute[2:]), median(communicate[2:])])
    slowest = np.empty_like(mine)
    comm.Allreduce(mine, slowest, op=MPI.MAX)
    return dict(compute_s=float(slowest[0]), allreduce_s=float(slowest[1]), bytes=buf.nbytes)


def mpiexec_command() -> str:
    """The ``mpiexec`` beside this Python (the mpich wheel's), else the one on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.path.exists(local) else "mpiexec"


def default_ranks() -> tuple:
    """P = 1, 2, ..., the cores this process may use (at least 1, 2)."""
    return tuple(range(1, max(2, cpu_cores()) + 1))


def run(ranks=None, dtype: str = "float32", timeout: float = 300) -> dict:
    """Launch one ``mpiexec -n P`` per P (default :func:`default_ranks`), the ring forced
    and one BLAS thread per rank; returns the merged result with machine facts. A block
    with P above the cores is marked ``oversubscribed``."""
    ranks = default_ranks() if ranks is None else tuple(ranks)
    env = dict(os.environ, **ONE_THREAD, **RING)
    result = dict(machine=machine_info(), per_P=[])
    with tempfile.TemporaryDirectory() as tmp:
        for P in ranks:
            path = os.path.join(tmp, f"P{P}.json")
            cmd = [mpiexec_command(), "-n", str(P), sys.executable, "-m", __name__]
            proc = subprocess.run(
                [*cmd, path, dtype],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
            if proc.returncode != 0:
                raise ConfigError(f"mpiexec -n {P} failed:\n{proc.stderr[-2000:]}")
            with open(path, encoding="utf-8") as f:
                block = json.load(f)
            block["oversubscribed"] = P > cpu_cores()
            result["per_P"].append(block)
    result["machine"]["threads_per_rank"] = 1
    result["machine"]["allreduce_algorithm"] = (
        "ring (MPICH, forced: " + ", ".join(f"{k}={v}" for k, v in RING.items()) + ")"
    )
    return result


def format_table(result: dict) -> str:
    """One line per (P, network, B): compute, all-reduce, their ratio, and the model."""
    lines = [
        f"{'P':>2}  {'network':<7} {'B':>5}  {'buffer KiB':>10}  {'compute ms':>10}  "
        f"{'all-reduce ms':>13}  {'ratio':>6}  {'model ms':>8}"
    ]
    for block in result["per_P"]:
        if block.get("oversubscribed"):
            lines.append(f"P = {block['P']}: more ranks than cores (oversubscribed):")
        for r in block["rows"]:
            lines.append(
                f"{r['P']:>2}  {r['network']:<7} {r['B']:>5}  {r['bytes'] / 1024:>10.0f}  "
                f"{r['compute_s'] * 1e3:>10.3f}  {r['allreduce_s'] * 1e3:>13.3f}  "
                f"{r['ratio']:>6.2f}  {r['model_s'] * 1e3:>8.3f}"
            )
    for block in result["per_P"]:
        if block["alpha_s"] is not None:
            lines.append(
                f"P = {block['P']}: α = {block['alpha_s'] * 1e6:.2f} µs, "
                f"β = {block['beta_bytes_per_s'] / 1e9:.2f} GB/s (ping-pong, ranks 0 and 1)"
            )
    return "\n".join(lines)


if __name__ == "__main__":  # one rank of run(): python -m mlp_core.bench.allreduce PATH DTYPE
    worker(*sys.argv[1:])
