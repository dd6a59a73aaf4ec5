"""``make record``: every recording in ``book/data`` made again with the current code.

    python -m mlp_core.bench.record [--out book/data] [--quick] [--allow-load] [--parts ...]

Three parts, each run in a fresh Python (its BLAS and OpenMP pools at their libraries'
defaults: :func:`machine.environment_with_default_pools`) and each writing its files
atomically:

=========  ===============================================================================
bench      ``bench-cpu.json`` and ``bench-cpu.txt``: ``python -m mlp_core bench`` on the CPU
           sizes in float32 and float64 (chapter 12's table and figures)
allreduce  ``allreduce-cpu.json``: compute against the all-reduce under ``mpiexec``, the ring
           forced, one BLAS thread per rank, P = 1 to the cores, and up to 4 ranks marked
           oversubscribed where there are fewer cores (chapter 14)
part3      ``part3-cpu.json``: the CPU's peak and what it is made of, the GEMM rate, the
           cache and memory copy roofs, Z = A W against m, one epoch against the batch
           size (chapters 12 and 13)
gpu        ``part3-gpu.json``, only when asked for (``--parts gpu``, on a GPU machine:
           ``scripts/gpu_check.sh``): chapter 13's sweep on CuPy, eager and as a CUDA graph,
           beside the model's prediction for the same sweep
=========  ===============================================================================

Each file gets a ``recording`` block: mlp_core's version, the git commit (and whether the
tree had uncommitted changes), the command, and the machine's load: the load average
before and after, and the share of the machine's CPU time that *other* processes used
in a two-second window before the part and during it (from ``/proc/stat``, less this
process's and its children's own time). A part during which others used more than
:data:`QUIET_SHARE` is not written (exit status 3; the run is kept beside it as
``<file>.refused``, which git ignores) unless ``--allow-load``, which writes it with
``quiet: false``; the chapters print :func:`recording_note`, which then says so.
The bench and part3 parts also probe the host's speed as they go
(:func:`timing.host_gflops`): a part whose probes differ by more than
:data:`timing.STEADY_RATIO` ran through one of a shared host's slow spells, which no load
inside the machine shows, and is refused alike (``steady: false`` with ``--allow-load``).
A spell that lasts a whole part leaves its probes alike: steady is not fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .._version import __version__
from ..core.errors import ConfigError
from ..core.io import atomic_write, json_default
from .machine import cpu_cores, environment_with_default_pools, load_average, machine_info
from .report import host_speed_note
from .timing import PROBE_CALLS, PROBE_N, host_gflops, steadiness

PARTS = ("bench", "allreduce", "part3")  # what `make record` records
ALL_PARTS = PARTS + ("gpu",)
QUIET_SHARE = 0.05  # others may use at most 5% of the machine's CPU time
WINDOW_S = 2.0  # the quiet window measured before each part
REPO = Path(__file__).resolve().parents[2]
BENCH_ARGS = [
    "--sizes",
    "digits,60000x784,16384x1024",
    "--dtypes",
    "float32,float64",
    "--repeats",
    "5",
    "--warmup",
    "1",
]
# chapter 13's sweep: one epoch of the fast path against the batch size
SWEEP = dict(m=2048, sizes=(784, 256, 128, 10), batch_sizes=(1, 4, 16, 64, 256, 1024))
# chapter 12's roofline points: Z = A W with the first layer of the MNIST-sized network
ROOFLINE_LAYER = (784, 256)
ROOFLINE_M = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# rounds of the square GEMM, the copy roofs and the roofline's points, the best of which is
# kept: on a shared machine one round can fall in a busy moment the load cannot see
ROOF_ROUNDS = 5


# ------------------------------------------------------------------------- the load


def cpu_times() -> tuple[float, float]:
    """(busy, wall) seconds of the whole machine so far: ``/proc/stat``'s busy jiffies
    (all but idle and I/O wait; a virtual machine's stolen time counts as busy) over all
    CPUs, and the clock. Raises OSError where there is no ``/proc/stat``."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK"), time.monotonic()


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def others_share(before: tuple, after: tuple, own: float) -> float:
    """The share of the machine's CPU time (0 to 1) that other processes used between two
    :func:`cpu_times` readings, ``own`` being this process tree's CPU seconds meanwhile."""
    busy = after[0] - before[0]
    wall = max(after[1] - before[1], 1e-9)
    share = (busy - own) / (wall * (os.cpu_count() or 1))
    return min(1.0, max(0.0, share))  # the clock ticks are coarse: keep it a share


def measure_load(run, window_s: float = WINDOW_S):
    """Run ``run()`` with the machine's load measured around it; returns ``(result,
    load)`` with ``load`` as :func:`recording_block` stores it."""
    load_before = load_average()
    own0, t0 = own_cpu_seconds(), cpu_times()
    time.sleep(window_s)
    own1, t1 = own_cpu_seconds(), cpu_times()
    result = run()
    own2, t2 = own_cpu_seconds(), cpu_times()
    load = dict(
        load_average_before=load_before,
        load_average_after=load_average(),
        others_share_before=others_share(t0, t1, own1 - own0),
        others_share_during=others_share(t1, t2, own2 - own1),
        seconds=t2[1] - t1[1],
    )
    load["quiet"] = max(load["others_share_before"], load["others_share_during"]) <= QUIET_SHARE
    return result, load


def git_commit(repo: Path = REPO) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository the package
    lives in, ``dirty`` when its ``mlp_core/`` differs from the commit (None where git or
    the repository is missing)."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(  # the package's own files, new ones included
            ["git", "-C", str(repo), "status", "--porcelain", "--", "mlp_core"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return dict(commit=None, dirty=None)
    return dict(commit=sha, dirty=bool(changed))


def recording_block(load: dict, command: str, speed: dict | None = None) -> dict:
    """What every recording carries about how it was made: the version, the commit, the
    command, the load and, for a part that probes the host's speed (``speed``, its
    ``host_speed``), whether that speed held (``steady``; None where not probed)."""
    return dict(
        mlp_core=__version__,
        **git_commit(),
        command=command,
        quiet_share=QUIET_SHARE,
        **load,
        steady=speed["steady"] if speed else None,
        host_speed_max_over_min=speed["max_over_min"] if speed else None,
    )


def refusal(load: dict, speed: dict | None) -> str | None:
    """Why a part measured under ``load`` (:func:`measure_load`) with the host-speed
    probes ``speed`` (its ``host_speed``, or None) may not become a recording; None if
    it may."""
    if not load["quiet"]:
        others = max(load["others_share_before"], load["others_share_during"])
        return (
            f"other programs used {100 * others:.0f}% of the CPU time (at most "
            f"{100 * QUIET_SHARE:.0f}% for a recording)."
        )
    if speed and not speed["steady"]:
        return host_speed_note(speed)
    return None


def recording_note(result: dict) -> str:
    """One line for a chapter: where, when, with which code and under which load a
    recording was made; it says so plainly when the machine was not quiet, or when the
    file predates ``make record``."""
    rec = result.get("recording")
    if rec is None:
        return "this recording predates `make record`: it carries no commit and no load"
    meta = result.get("meta") or result.get("machine") or {}
    commit = (rec.get("commit") or "?")[:10] + (" + changes" if rec.get("dirty") else "")
    line = (
        f"recorded {str(meta.get('date', '?'))[:10]} on {meta.get('cpu', '?')} "
        f"({meta.get('cores', '?')} cores), mlp_core {rec['mlp_core']} at {commit}"
    )
    others = max(rec["others_share_before"], rec["others_share_during"])
    steady, ratio = rec.get("steady"), rec.get("host_speed_max_over_min")
    if rec["quiet"] and steady is not False:
        line += f"; quiet machine (others used {100 * others:.1f}% of its CPU time)"
        if steady:
            line += f", steady host (speed probes within {100 * (ratio - 1):.0f}% of each other)"
        return line
    faults = []
    if not rec["quiet"]:
        faults.append(f"NOT QUIET: other programs used {100 * others:.0f}% of the CPU time")
    if steady is False:
        faults.append(
            f"HOST NOT STEADY: its speed probes differed by {100 * (ratio - 1):.0f}% "
            "during the recording"
        )
    return (
        line + "; " + "; ".join(faults) + ", so these are development figures, not the "
        "book's (`make record` on a quiet machine)"
    )


def load_recording(path) -> dict:
    """A recording written by this module (a JSON file)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ------------------------------------------------------------------------- the parts


def record_part3(quick: bool = False) -> dict:
    """Chapter 12's and 13's measurements: the CPU's peak and its parts, the GEMM rates,
    the copy roofs, Z = A W against m, one fast epoch against B, and why B = 1 was slow
    (NumPy's ``matmul`` does not hand a column view with a row-long stride to the BLAS).
    The GEMM rate, the copy roofs and the rates of Z = A W are each the best of
    :data:`ROOF_ROUNDS` rounds (:func:`best_of_rounds`)."""
    from ..fast.numpy_kernels import blas_matmul
    from . import experiments as ex

    cores, facts = cpu_cores(), ex.cpu_vector_facts()
    repeats = 2 if quick else 5
    peak = {
        dtype: ex.cpu_peak_gflops(
            cores,
            facts.get("clock_ghz", 0.0),
            facts.get("datapath_bits", 128),
            facts.get("fma_units", 1),
            np.dtype(dtype).itemsize,
        )
        for dtype in ("float32", "float64")
    }
    n = 256 if quick else ex.CPU_GEMM_N
    sweep = dict(SWEEP, m=256, batch_sizes=(1, 16, 256)) if quick else SWEEP
    probes = [host_gflops()]  # the host's speed, before, between and after the steps
    rows = ex.speed_vs_batch(
        sweep["m"], sweep["sizes"], sweep["batch_sizes"], repeats=repeats, warmup=1
    )
    probes.append(host_gflops())
    h_in, h_out = ROOFLINE_LAYER
    rng = np.random.default_rng(0)
    A = rng.standard_normal((1, h_in)).astype(np.float32)
    D = rng.standard_normal((1, h_out)).astype(np.float32)
    G = np.empty((h_in, h_out), np.float32)
    blas = blas_matmul(np.float32)
    outer = {
        "numpy_matmul_s": ex.median(
            ex.time_call(lambda: np.matmul(A.T, D, out=G), xp=np, repeats=repeats)
        ),
        "blas_s": ex.median(ex.time_call(lambda: blas(A.T, D, G), xp=np, repeats=repeats)),
        "shape": [h_in, 1, h_out],
    }
    rounds = 1 if quick else ROOF_ROUNDS
    roofs, rates, gemm = [], [], {"float32": 0.0, "float64": 0.0}
    for _ in range(rounds):  # a shared machine's rates vary from one moment to the next
        for d in gemm:
            gemm[d] = max(gemm[d], ex.gemm_rate(n, np.dtype(d), repeats=repeats))
        roofs.append(ex.copy_roofs(np.float32, repeats=repeats if quick else 10))
        rates.append(
            ex.matmul_rates(h_in, h_out, ROOFLINE_M[:4] if quick else ROOFLINE_M, repeats=repeats)
        )
        probes.append(host_gflops())
    return dict(
        meta=machine_info(),
        host_speed=dict(n=PROBE_N, calls=PROBE_CALLS, **steadiness(probes), rates=probes),
        cpu=dict(facts, cores=cores, caches=ex.cache_sizes()),
        peak_gflops=peak,
        gemm=dict(n=n, gflops=gemm),
        roofs=best_of_rounds(roofs, "gbs"),
        matmul_rates=dict(h_in=h_in, h_out=h_out, rows=best_of_rounds(rates, "gflops")),
        roof_rounds=rounds,
        speed_vs_batch=dict(sweep, rows=rows),
        outer_product=outer,
    )


def best_of_rounds(rounds: list, rate: str):
    """Per entry (a cache level's dict, or the i-th row of a list), the round with the
    highest ``rate``: what the machine can do, as a roof is (STREAM keeps the best run too)."""
    first = rounds[0]
    keys = first.keys() if isinstance(first, dict) else range(len(first))
    best = {k: max((r[k] for r in rounds), key=lambda e: e[rate]) for k in keys}
    return best if isinstance(first, dict) else [best[i] for i in keys]


def record_gpu(quick: bool = False) -> dict:
    """Chapter 13's sweep on the GPU, eagerly and as a CUDA graph, the GPU's GEMM rate and
    copy bandwidth, and what :mod:`gpu_model` predicts for the same sweep."""
    from ..core import backend
    from . import experiments as ex
    from . import gpu_model

    cp = backend.gpu_xp()
    if cp is None:
        raise ConfigError("the gpu part needs a usable CUDA GPU and CuPy (pip install -e .[gpu]).")
    sweep = dict(SWEEP, m=256, batch_sizes=(1, 16, 256)) if quick else SWEEP
    m, sizes, Bs = sweep["m"], sweep["sizes"], sweep["batch_sizes"]
    repeats = 2 if quick else 5
    eager = ex.speed_vs_batch(m, sizes, Bs, xp=cp, repeats=repeats, warmup=1)
    graph = ex.speed_vs_batch(m, sizes, Bs, xp=cp, repeats=repeats, warmup=2, cuda_graph=True)
    model = {
        mode: [
            dict(batch_size=B, **gpu_model.predict_epoch(m, sizes, B, graph=mode == "graph"))
            for B in Bs
        ]
        for mode in ("eager", "graph")
    }
    return dict(
        meta=machine_info(use_gpu=True),
        gemm_gflops=ex.gemm_rate(xp=cp, repeats=repeats),
        copy_gbs=ex.copy_bandwidth(xp=cp, repeats=repeats),
        speed_vs_batch=dict(sweep, eager=eager, graph=graph),
        model=dict(gpu=gpu_model.H100_SXM.name, **model),
    )


def default_ranks() -> tuple:
    """P = 1 up to the cores, and up to 4 (the excess marked oversubscribed)."""
    return tuple(range(1, max(4, cpu_cores()) + 1))


def _worker(part: str, out: Path, quick: bool) -> None:
    """Run one part in this process and write its file(s) (no load bookkeeping)."""
    if part == "bench":
        args = ["--quick"] if quick else BENCH_ARGS
        cmd = [sys.executable, "-m", "mlp_core", "bench", *args, "--json", str(out)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return
    if part == "allreduce":
        from . import allreduce

        result = allreduce.run((1, 2) if quick else default_ranks())
    elif part == "gpu":
        result = record_gpu(quick)
    else:
        result = record_part3(quick)
    _write_json(out, result)


def _write_json(path: Path, result: dict) -> None:
    atomic_write(path, lambda f: f.write(_dumps(result)))


def _dumps(result: dict) -> bytes:
    return (json.dumps(result, indent=1, default=json_default) + "\n").encode()


def _shown(path: Path) -> str:
    """``path`` as the command line shows it: relative to the repository when inside."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


FILES = {
    "bench": "bench-cpu.json",
    "allreduce": "allreduce-cpu.json",
    "part3": "part3-cpu.json",
    "gpu": "part3-gpu.json",
}


def record(out_dir, parts=PARTS, quick=False, allow_load=False, say=print) -> int:
    """Record ``parts`` into ``out_dir``; returns the exit status: 0; 3 when a part was
    refused for the load or the host's unsteady speed; 2 when a part failed (its error
    printed, the others recorded).
    Each part runs in a fresh Python and writes a temporary file, which becomes the
    recording only once the load and the host's speed are known to be acceptable."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is not a folder; give --out an existing folder.")
    if "bench" in parts and not quick and importlib.util.find_spec("torch") is None:
        raise ConfigError(
            "PyTorch is not installed, and the book's table compares with it: install a "
            "CPU build (e.g. .venv/bin/pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu), then record again."
        )
    command = "python -m mlp_core.bench.record " + " ".join(
        shlex.quote(a)
        for a in ["--out", str(out_dir)]
        + (["--quick"] if quick else [])
        + (["--allow-load"] if allow_load else [])
    )
    env = environment_with_default_pools()
    status = 0
    for part in parts:
        final = out_dir / FILES[part]
        tmp = out_dir / (FILES[part] + ".recording")
        cmd = [sys.executable, "-m", "mlp_core.bench.record", "--worker", part, "--out", str(tmp)]
        cmd += ["--quick"] if quick else []
        say(f"record: {part} ...")
        done, load = measure_load(lambda: subprocess.run(cmd, env=env))
        if done.returncode != 0:
            say(f"record: {part} failed (exit status {done.returncode}; its message is above)")
            tmp.unlink(missing_ok=True)
            status = 2
            continue
        result = load_recording(tmp)
        tmp.unlink()
        speed = result.get("host_speed")
        meta = result.get("meta") or result["machine"]
        if part == "bench":  # the benchmark's own command, with the file it became
            meta["command"] = meta["command"].replace(str(tmp), _shown(final))
        else:
            meta["command"] = command
        result["recording"] = recording_block(load, command, speed)
        why = refusal(load, speed)
        if why and not allow_load:
            kept = final.with_name(final.name + ".refused")
            _write_json(kept, result)
            say(
                f"record: {part} NOT written: {why} Record again on a quiet machine and a "
                "steady host, or pass --allow-load to write it marked as such (this run is "
                f"kept in {_shown(kept)} for a look; git ignores it)."
            )
            status = 3
            continue
        _write_json(final, result)
        if part == "bench":
            from .experiments import recorded_table

            text = recording_note(result) + "\n" + recorded_table(result) + "\n"
            atomic_write(out_dir / "bench-cpu.txt", lambda f: f.write(text.encode()))
        say(f"record: wrote {final} ({recording_note(result)})")
    return status


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mlp_core.bench.record",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default=str(REPO / "book" / "data"), help="the folder to write")
    p.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated, from: " + ", ".join(PARTS)
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small versions of every part, to check the machinery (never for the book)",
    )
    p.add_argument(
        "--allow-load",
        action="store_true",
        help="write a part recorded under load or on an unsteady host, marked quiet: false or "
        "steady: false (the chapters then say so)",
    )
    p.add_argument("--worker", choices=ALL_PARTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        try:
            _worker(args.worker, Path(args.out), args.quick)
        except ConfigError as err:
            print(f"record: {args.worker}: {err}", file=sys.stderr)
            return 2
        return 0
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = [x for x in parts if x not in ALL_PARTS]
    if unknown or not parts:
        p.error(f"--parts: unknown {unknown}; valid: {', '.join(ALL_PARTS)}")
    try:
        return record(args.out, parts, args.quick, args.allow_load)
    except (ConfigError, OSError, subprocess.CalledProcessError) as err:
        print(f"record: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
