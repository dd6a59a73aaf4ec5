"""The book's Part III experiments (chapters 12 and 13) and the recorded results.

Small measurements and helpers behind the figures of "Why batches are fast" and "On the
GPU with CuPy": the CPU's peak from its data (cores × FMA units × SIMD lanes × 2 × clock),
the measured GEMM rate and copy bandwidths (the roofline's roof and slopes, main memory
and the caches), the measured rate of Z = A W against the number of rows m, and the
epoch's speed against the batch size. Each timing synchronises the device before every
clock read (:func:`timing.time_call`) and reports the median; the roofs (the GEMM rate and
the copy bandwidths) report the best of their repeats, as STREAM does: a roof is what the
machine can deliver.
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import time

import numpy as np

from ..core import backend
from ..core.batched import backprop
from ..core.data import one_hot
from ..core.errors import ConfigError
from ..core.params import init_params
from ..core.single import gradients_loop
from .contenders import epoch_batched, epoch_loop
from .machine import cache_sizes, cpu_cores, last_level_cache_bytes
from .problems import LEARNING_RATE, SEED, epoch_flops, synthetic_data
from .report import format_table
from .timing import median, time_call

CPU_GEMM_N = 2048  # on 2 cores a 1024² product is not yet the fastest shape; 2048² is
GPU_GEMM_N = 8192  # an 8192² float32 product: ~1.1 TFLOP, compute-bound on an H100/H200
GPU_COPY_BYTES = 2**30  # 1 GiB: far above an H100's 50 MiB (H200: 60 MiB) L2


def gemm_rate(n: int | None = None, dtype=np.float32, xp=np, repeats: int = 3) -> float:
    """Measured GFLOP/s (the best of ``repeats`` calls, as a roof is) of one n×n by n×n
    matrix product C = A B on ``xp`` (2 n³ FLOPs, a multiply-add counting two): the "peak"
    of the roofline, eq-intensity. ``n`` defaults to :data:`CPU_GEMM_N` on NumPy and to
    :data:`GPU_GEMM_N` on CuPy."""
    n = (CPU_GEMM_N if xp is np else GPU_GEMM_N) if n is None else int(n)
    rng = np.random.default_rng(0)
    A = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    B = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    C = xp.empty((n, n), dtype=dtype)
    t = min(time_call(lambda: xp.matmul(A, B, out=C), xp=xp, repeats=repeats))
    return 2.0 * n**3 / t / 1e9


def copy_bandwidth(
    nbytes: int | None = None, dtype=np.float32, xp=np, repeats: int = 3, threads=None, inner=1
) -> float:
    """Measured GB/s (the best of ``repeats`` timed calls) of copying an array of ``nbytes``
    bytes into another (bytes read plus bytes written, 2·nbytes per copy): the slope of the
    roofline, eq-intensity.

    ``nbytes`` defaults to :func:`default_copy_bytes` (on the CPU at least 8× the
    last-level cache, so the copy measures main memory, not a cache; on a GPU 1 GiB). On
    NumPy the copy is split over ``threads`` threads (default: every core this process may
    use; NumPy releases the GIL while copying), since one core alone cannot draw a
    socket's bandwidth. ``inner``: copies per timed call (for a copy that fits in a
    cache, the copy is repeated so that the threads' start is not what is timed)."""
    nbytes = default_copy_bytes(xp) if nbytes is None else int(nbytes)
    count = max(1, nbytes // np.dtype(dtype).itemsize)
    src = xp.ones(count, dtype=dtype)
    dst = xp.empty_like(src)
    if xp is np:
        n = max(1, cpu_cores() if threads is None else int(threads))
        edges = np.linspace(0, count, n + 1).astype(int)
        parts = [(dst[a:b], src[a:b]) for a, b in zip(edges[:-1], edges[1:])]
        with concurrent.futures.ThreadPoolExecutor(n) as pool:

            def part(ds):
                for _ in range(inner):
                    np.copyto(*ds)

            def copy():
                list(pool.map(part, parts))

            t = min(time_call(copy, xp=xp, repeats=repeats)) / inner
    else:
        t = min(time_call(lambda: xp.copyto(dst, src), xp=xp, repeats=repeats))
    return 2.0 * count * np.dtype(dtype).itemsize / t / 1e9


def default_copy_bytes(xp=np) -> int:
    """The copy :func:`copy_bandwidth` times by default: on a GPU :data:`GPU_COPY_BYTES`
    (1 GiB, far above its L2); on the CPU the larger of 256 MiB and 8× the last-level
    cache (:func:`machine.last_level_cache_bytes`)."""
    if xp is not np:
        return GPU_COPY_BYTES
    llc = last_level_cache_bytes() or 0
    return max(2**28, 8 * llc)


def cpu_vector_facts() -> dict:
    """What the CPU's peak is made of, read from ``/proc/cpuinfo`` (Linux; ``{}``
    elsewhere): ``vendor``, ``family``, ``model``, ``clock_ghz`` (the clock the kernel
    reports: the nominal one in a virtual machine, not the boost clock), ``simd_bits`` (the
    widest vector registers: 512 with AVX-512, 256 with AVX2, else 128), ``datapath_bits``
    (how wide one FMA unit really is, :func:`fma_datapath_bits`) and ``fma_units`` (2 per
    core on every x86 core with FMA since Intel's Haswell and AMD's Zen 2)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return {}
    first = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        first[key.strip()] = value.strip()
    flags = set(first.get("flags", "").split())
    simd = 512 if "avx512f" in flags else 256 if "avx2" in flags else 128
    facts = dict(
        vendor=first.get("vendor_id", "?"),
        family=int(first.get("cpu family", 0) or 0),
        model=int(first.get("model", 0) or 0),
        clock_ghz=float(first.get("cpu MHz", 0) or 0) / 1e3,
        simd_bits=simd,
        fma_units=2 if "fma" in flags else 1,
    )
    facts["datapath_bits"] = fma_datapath_bits(facts["vendor"], facts["family"], simd)
    return facts


def fma_datapath_bits(vendor: str, family: int, simd_bits: int) -> int:
    """The width one FMA unit computes per cycle. AMD's Zen 4 (family 0x19) runs AVX-512
    on 256-bit units, each 512-bit instruction in two halves, so AVX-512 does not double
    its peak; Zen 1 (family 0x17, models before Zen 2) split AVX2 the same way, which this
    rule does not tell apart. Intel's AVX-512 cores compute 512 bits at once (some parts
    have one such unit, not two: see the part's documentation)."""
    if vendor == "AuthenticAMD" and family <= 0x19:
        return min(simd_bits, 256)
    return simd_bits


def cpu_peak_gflops(
    cores: int, clock_ghz: float, datapath_bits: int, fma_units: int = 2, itemsize: int = 4
) -> float:
    """The CPU's arithmetic peak: cores × FMA units × lanes × 2 × clock, GFLOP/s, with
    lanes = datapath bits / (8 × itemsize) numbers per FMA unit and an FMA counting two
    FLOPs (eq-peak)."""
    lanes = datapath_bits // (8 * itemsize)
    return cores * fma_units * lanes * 2 * clock_ghz


#: Bytes each timed call of a cache roof moves (read plus written): enough that starting
#: the threads (tens of µs) is a few per cent of it even for the L2 cache.
TIMED_COPY_BYTES = 2**28


def copy_roofs(dtype=np.float32, repeats: int = 10, threads=None) -> dict:
    """Copy bandwidth (GB/s, :func:`copy_bandwidth`) with the working set in the L2
    cache, in the L3 cache and in main memory, every core copying its own part: the
    roofline's slopes. A copy's source and destination together fill three quarters of a
    private level (on the book's machine, copies of half its 1 MiB L2 ran slower than
    longer ones, below the L3's rate) and half of a shared one, and each timed call
    repeats the copy until it has moved :data:`TIMED_COPY_BYTES`. A private cache is timed
    on one core and counted once per core. ``repeats``: STREAM's 10 by default (a shared
    machine's cache rate varies from call to call). L1 is left out: a copy small enough for
    it is over before Python's call returns."""
    caches = cache_sizes()
    n = max(1, cpu_cores() if threads is None else int(threads))
    out = {}
    for level in ("L2", "L3"):
        c = caches.get(level)
        if c is None:
            continue
        # A private cache: one core timed alone (threads would take turns for the GIL
        # between small copies), counted n times; a shared one: every core at once.
        private = c["shared_by"] == 1
        threads, copies = (1, n) if private else (n, 1)
        share = 3 / 8 if private else 1 / 4  # of the level, for each of source and destination
        nbytes = int(c["bytes"] * max(1, n // c["shared_by"]) * share) // copies
        inner = -(-TIMED_COPY_BYTES // (2 * nbytes))
        gbs = copies * copy_bandwidth(nbytes, dtype, np, repeats, threads, inner)
        out[level] = dict(bytes=copies * nbytes, gbs=gbs)
    nbytes = default_copy_bytes()
    out["memory"] = dict(bytes=nbytes, gbs=copy_bandwidth(nbytes, dtype, np, repeats, n))
    return out


def matmul_rates(h_in: int, h_out: int, m_values, dtype=np.float32, repeats: int = 5) -> list:
    """Measured GFLOP/s of Z = A W, A (m, h_in) and W (h_in, h_out), with ``@`` into a
    preallocated Z, for each m, beside its arithmetic intensity (eq-intensity): the
    points the roofline predicts. Each timed call repeats the product until it has run
    about a millisecond, so that small m is not all clock overhead."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((h_in, h_out)).astype(dtype)
    rows = []
    for m in m_values:
        m = int(m)
        A = rng.standard_normal((m, h_in)).astype(dtype)
        Z = np.empty((m, h_out), dtype)
        flops = 2.0 * m * h_in * h_out
        inner = max(1, int(2e6 // flops))  # ~1 ms of work at a few GFLOP/s

        def run():
            for _ in range(inner):
                np.matmul(A, W, out=Z)

        t = median(time_call(run, xp=np, repeats=repeats)) / inner
        rows.append(
            dict(
                m=m,
                seconds=t,
                gflops=flops / t / 1e9,
                intensity=matmul_intensity(h_in, h_out, m, np.dtype(dtype).itemsize),
            )
        )
    return rows


def matmul_intensity(h_in: int, h_out: int, m: int, itemsize: int = 4) -> float:
    """Arithmetic intensity (FLOP/byte) of Z = A W with A (m, h_in), W (h_in, h_out),
    eq-intensity: 2 m h_in h_out FLOPs over the bytes of A and W read once and Z written
    once, itemsize (m h_in + h_in h_out + m h_out). For m = 1 this is the matrix-vector
    product of one example, about 2/itemsize (0.5 FLOP/byte in float32)."""
    flops = 2.0 * m * h_in * h_out
    nbytes = itemsize * (m * h_in + h_in * h_out + m * h_out)
    return flops / nbytes


def roofline(peak_gflops, bandwidth_gbs, intensity):
    """Attainable GFLOP/s at arithmetic intensity I (FLOP/byte): min(peak, bandwidth · I).
    Works elementwise on arrays of intensities."""
    return np.minimum(peak_gflops, np.multiply(bandwidth_gbs, intensity))


def _synthetic_problem(m: int, sizes, dtype, seed: int = 0):
    X, labels = synthetic_data(m, sizes, dtype, np.random.default_rng(seed))
    Y = one_hot(labels, sizes[-1], dtype=dtype)
    return X, Y, init_params(tuple(sizes), seed=seed, dtype=dtype, device="cpu")


def speed_vs_batch(
    m: int,
    sizes,
    batch_sizes,
    xp=np,
    dtype=np.float32,
    repeats: int = 3,
    warmup: int = 1,
    fast: bool = True,
    lr: float = LEARNING_RATE,
    seed: int = SEED,
    cuda_graph: bool = False,
) -> list:
    """Seconds per training epoch against the batch size B, on ``xp`` (NumPy or CuPy).

    Synthetic data X (m, n) and one-hot Y (m, C) for widths ``sizes`` = (n, ..., C) are
    moved to the device once; each timed call is one epoch of :func:`fast.run_epoch_fast`
    (``fast=True``) or of the book's :func:`train.run_epoch`, the device synchronised
    before each clock read. Returns one dict per B: ``batch_size``, ``seconds_per_epoch``
    (median), ``examples_per_s``, ``gflops`` (eq-epoch-flops over the time), ``device``.
    ``cuda_graph=True`` (CuPy, fast path): the epoch replayed as a CUDA graph (warm-up
    and capture happen in the untimed ``warmup`` epochs, so give it ``warmup ≥ 2``).
    """
    X, Y, params = _synthetic_problem(m, sizes, dtype, seed)
    order = np.random.default_rng(seed).permutation(m)
    device = "gpu" if xp is not np else "cpu"
    if device == "gpu":
        X, Y, order = xp.asarray(X), xp.asarray(Y), xp.asarray(order)
        params = params.to("gpu")
    flops = epoch_flops(m, sizes)
    rows = []
    for B in batch_sizes:
        state = {"params": params}

        def one_epoch():
            state["params"] = epoch_batched(
                X, Y, state["params"], order, int(B), lr, fast=fast, cuda_graph=cuda_graph
            )

        t = median(time_call(one_epoch, xp=xp, warmup=warmup, repeats=repeats))
        rows.append(
            dict(
                batch_size=int(B),
                seconds_per_epoch=t,
                examples_per_s=m / t,
                gflops=flops / t / 1e9,
                device=device,
                cuda_graph=bool(cuda_graph),
            )
        )
    return rows


def loop_vs_batched(
    m_values, sizes, loop_examples: int = 128, dtype=np.float64, repeats: int = 3, seed: int = SEED
) -> list:
    """The gradients of m examples, one example at a time (:func:`single.gradients_loop`)
    and in one batched call (:func:`batched.backprop`), for each m in ``m_values``.

    The loop costs the same per example whatever m is, so it is timed on
    k = min(m, ``loop_examples``) examples and its time scaled by m/k
    (``loop_extrapolated`` says when). Returns one dict per m: ``m``, ``loop_seconds``,
    ``batched_seconds``, ``speedup`` (loop / batched), ``loop_examples`` (k),
    ``loop_extrapolated``.
    """

    rows = []
    for m in m_values:
        m = int(m)
        X, Y, params = _synthetic_problem(m, sizes, dtype, seed)
        k = min(m, int(loop_examples))
        t_loop = (
            median(time_call(lambda: gradients_loop(X[:k], Y[:k], params), xp=np, repeats=repeats))
            * m
            / k
        )
        t_batch = median(time_call(lambda: backprop(X, Y, params), xp=np, repeats=repeats))
        rows.append(
            dict(
                m=m,
                loop_seconds=t_loop,
                batched_seconds=t_batch,
                speedup=t_loop / t_batch,
                loop_examples=k,
                loop_extrapolated=k < m,
            )
        )
    return rows


def timing_with_and_without_sync(xp=np, n: int = 2048, dtype=np.float32, repeats: int = 3) -> tuple:
    """(seconds_without_sync, seconds_with_sync) for one n×n matrix product on ``xp``.

    Without synchronisation the clock is read as soon as the call returns; on CuPy that is
    when the kernel has been *queued*, so only the launch is timed. With
    :func:`backend.synchronize` before the second clock read the product is finished.
    On NumPy the call returns when the work is done and the two agree. Medians.
    """
    rng = np.random.default_rng(0)
    A = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    B = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    C = xp.empty((n, n), dtype=dtype)
    xp.matmul(A, B, out=C)  # warm-up (loads the library, builds the plan)
    backend.synchronize(xp)
    without, with_sync = [], []
    for _ in range(repeats):
        backend.synchronize(xp)
        start = time.perf_counter()
        xp.matmul(A, B, out=C)
        without.append(time.perf_counter() - start)  # no sync: the launch only
        backend.synchronize(xp)  # (let the queued work finish)
        start = time.perf_counter()
        xp.matmul(A, B, out=C)
        backend.synchronize(xp)
        with_sync.append(time.perf_counter() - start)
    return median(without), median(with_sync)


def load_recorded(pattern) -> list:
    """The benchmark results stored by ``python -m mlp_core bench --json`` in the files
    matching the glob ``pattern`` (sorted by name), each with its ``path`` added; ``[]``
    when none match. A file without ``meta`` and ``records`` is an error, not skipped."""
    results = []
    for path in sorted(glob.glob(os.fspath(pattern))):
        with open(path) as f:
            try:
                result = json.load(f)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}: not a benchmark JSON file ({err})") from None
        if not isinstance(result, dict) or "meta" not in result or "records" not in result:
            raise ConfigError(
                f"{path}: not a benchmark JSON file (it needs 'meta' and "
                "'records', as written by python -m mlp_core bench --json)"
            )
        result["path"] = path
        results.append(result)
    return results


def recorded_label(result: dict) -> str:
    """The hardware and date of a recorded result, e.g. 'AMD EPYC (2 cores), 2026-11-21'
    or, when a GPU was used, its name."""
    meta = result["meta"]
    date = str(meta.get("date", "?"))[:10]
    gpu = meta.get("gpu")
    if gpu:
        return f"{gpu['name']}, {date}"
    return f"{meta.get('cpu', '?')} ({meta.get('cores', '?')} cores), {date}"


def recorded_table(result: dict, contenders=None) -> str:
    """The text table of a recorded result (:func:`format_table`) for the given contenders
    (all by default), without the list of skipped contenders, headed by where, when and
    how it was measured."""
    keep = [r for r in result["records"] if contenders is None or r["contender"] in contenders]
    meta = result["meta"]
    head = [
        f"measured on: {recorded_label(result)}",
        f"command:     {meta.get('command', '?')}",
        f"numpy {meta['versions'].get('numpy')}, scikit-learn "
        f"{meta['versions'].get('sklearn')}, torch {meta['versions'].get('torch')}",
        "",
    ]
    body = format_table(dict(result, records=keep, skipped=[]))
    return "\n".join(head) + body


def crossover_batch(cpu_rows: list, gpu_rows: list):
    """The batch size from which the GPU processes more examples per second than the CPU
    at every larger batch size both rows have (rows as returned by :func:`speed_vs_batch`
    or predicted by :func:`gpu_model.predict_epoch`, with ``batch_size`` and
    ``examples_per_s``); None when the GPU is not ahead at the largest. (A GPU ahead at
    B = 1 only, where a CPU's small products can be slow, is not a crossover.)"""
    cpu = {r["batch_size"]: r["examples_per_s"] for r in cpu_rows}
    gpu = {r["batch_size"]: r["examples_per_s"] for r in gpu_rows}
    found = None
    for B in sorted(set(cpu) & set(gpu), reverse=True):
        if gpu[B] <= cpu[B]:
            break
        found = B
    return found


def call_overhead(L: int, batch: int, loop: bool, repeats: int = 5, seed: int = SEED) -> float:
    """Seconds of one batch's *calls* alone: the loop (``loop=True``: B one-example
    backprops and a step) or the batched epoch's one batch, on a network whose every width
    is 2 (the same calls, L layers, next to no arithmetic or memory). Multiplied by the
    number of batches it is the "calls × per-call cost" part of an epoch's time."""
    sizes = (2,) * (L + 1)
    X, Y, params = _synthetic_problem(batch, sizes, np.float64, seed)
    order = np.arange(batch)
    if loop:

        def one():
            epoch_loop(X, Y, params, order, batch, LEARNING_RATE)
    else:

        def one():
            epoch_batched(X, Y, params, order, batch, LEARNING_RATE)

    return median(time_call(one, xp=np, repeats=repeats))


def epoch_bytes(m: int, sizes, batch: int, itemsize: int, loop: bool) -> int:
    """Bytes one epoch must move at least, main memory ↔ processor, counted as the
    roofline counts them: every weight matrix read by the forward and the backward
    products and read + written by the update, once per *example* for the loop (each
    example walks all the weights) and once per *batch* for the batched epoch; plus each
    example's activations and errors, written and read once each (4 m s Σ_l h_l)."""
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    walks = m if loop else -(-m // batch)
    return itemsize * (4 * weights * walks + 4 * m * sum(sizes[1:]))


def time_breakdown(
    m: int, sizes, batch: int, itemsize: int, loop: bool, overhead_s, bandwidth_gbs, peak_gflops
) -> dict:
    """Three lower bounds on an epoch's time, each from one resource: ``calls`` (number of
    batches × :func:`call_overhead`), ``memory`` (:func:`epoch_bytes` / bandwidth) and
    ``flops`` (:func:`epoch_flops` / peak), with ``bound``, the name of the largest."""
    batches = -(-m // batch)
    parts = dict(
        calls=batches * overhead_s,
        memory=epoch_bytes(m, sizes, batch, itemsize, loop) / (bandwidth_gbs * 1e9),
        flops=epoch_flops(m, sizes) / (peak_gflops * 1e9),
    )
    parts["bound"] = max(("calls", "memory", "flops"), key=parts.get)
    return parts
