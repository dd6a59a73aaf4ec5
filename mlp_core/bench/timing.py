"""Timing: a call's seconds with the device synchronised, its spread, CUDA events, and
the host-speed probe that tells whether the machine kept its speed through a recording.

Every clock read is preceded by a synchronisation of the device (:func:`backend.synchronize`),
so queued GPU work is counted where it runs. On a GPU a contender can instead be timed
with CUDA events (:func:`cuda_event_timer`: CuPy's ``cupyx.profiler.benchmark``), which
measure the device's own time between two points of its stream, and warmed up for a
while just before it is timed (:func:`gpu_spin`): a GPU's clocks drop while the CPU
contenders run.
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from ..core import backend
from ..core.errors import ConfigError

UNSTABLE_RATIO = 2.0  # a contender whose slowest timed call is > 2× its fastest is flagged
# the host-speed probe: the best of PROBE_CALLS products of two PROBE_N × PROBE_N float32
# matrices (about 1 ms each on two cores); a recording is steady while its slowest probe
# is within STEADY_RATIO of its fastest (a probe's own scatter, measured: max/min ≤ 1.05)
PROBE_N = 512
PROBE_CALLS = 10
STEADY_RATIO = 1.15


def median(values) -> float:
    """The median of a list of numbers (the statistic every table here reports)."""
    return float(statistics.median(values))


def time_call(fn, xp=None, warmup: int = 1, repeats: int = 5, sync=None) -> list:
    """Seconds taken by ``fn()``, ``repeats`` times after ``warmup`` untimed calls.

    The device is synchronised before each clock read (:func:`backend.synchronize` for
    ``xp``, or the ``sync`` callable given), so queued GPU work is counted where it runs.
    """
    sync = sync or (lambda: backend.synchronize(xp))
    for _ in range(warmup):
        fn()
    return [clock(fn, sync) for _ in range(repeats)]


def clock(fn, sync) -> float:
    """Seconds of one call ``fn()``, the device synchronised (``sync()``) before each read."""
    return clock_mean(fn, sync, 1)


def epochs_per_round(round_seconds: float, epoch_seconds: float, most: int = 1000) -> int:
    """How many back-to-back epochs of ``epoch_seconds`` fill ``round_seconds`` (at least
    one, at most ``most``)."""
    if round_seconds <= 0:
        return 1
    return int(min(most, max(1, math.ceil(round_seconds / max(epoch_seconds, 1e-9)))))


def clock_mean(fn, sync, calls: int) -> float:
    """Seconds per call of ``calls`` calls ``fn()`` made back to back, the device
    synchronised before the first and after the last."""
    sync()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return (time.perf_counter() - start) / calls


def spread(times, scale: float = 1.0) -> dict:
    """min, quartiles, max of the timed calls, each times ``scale`` (a subsample's seconds
    scaled to an epoch), and ``unstable`` (max/min > 2): a bimodal contender (one that
    sometimes waits for a thread pool or the OS) shows here, where a median alone hides it."""
    t = sorted(float(x) * scale for x in times)
    if len(t) == 1:
        q1 = q3 = t[0]
    else:
        q1, _, q3 = statistics.quantiles(t, n=4, method="inclusive")
    ratio = t[-1] / t[0] if t[0] > 0 else float("inf")
    return dict(
        min=t[0],
        q1=q1,
        median=median(t),
        q3=q3,
        max=t[-1],
        max_over_min=ratio,
        unstable=ratio > UNSTABLE_RATIO,
    )


def host_gflops(n: int = PROBE_N, calls: int = PROBE_CALLS) -> float:
    """How fast the machine is right now: the best GFLOP/s of ``calls`` products of two
    n × n float32 matrices (NumPy's BLAS, all its threads). A virtual machine shares its
    host: for minutes at a time everything can run a third slower, and no load measured
    inside the machine shows it. Probes taken through a recording show it
    (:func:`steadiness`)."""
    a = np.full((n, n), 0.5, np.float32)
    out = np.empty_like(a)
    best = math.inf
    for _ in range(max(1, int(calls))):
        start = time.perf_counter()
        np.matmul(a, a, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / max(best, 1e-12) / 1e9


def steadiness(rates) -> dict:
    """What the probes (:func:`host_gflops`, in GFLOP/s) say about a recording: the
    slowest and fastest, their ratio, and ``steady`` (the ratio within
    :data:`STEADY_RATIO`). A slow spell that lasts the whole recording leaves them alike:
    steady says the machine did not change speed during the recording, not how fast it was."""
    rates = [float(r) for r in rates]
    if not rates or min(rates) <= 0:
        raise ConfigError(f"steadiness needs positive probe rates (GFLOP/s); got {rates}")
    ratio = max(rates) / min(rates)
    return dict(
        probes=len(rates),
        gflops_min=min(rates),
        gflops_max=max(rates),
        max_over_min=ratio,
        steady_ratio=STEADY_RATIO,
        steady=ratio <= STEADY_RATIO,
    )


def cuda_event_timer(fn) -> float:
    """Seconds of one call ``fn()`` between two CUDA events on the current CuPy stream
    (the device's own clock; the host is not in the loop): ``cupyx.profiler.benchmark``
    for a single call."""
    from cupyx.profiler import benchmark

    return float(benchmark(fn, n_repeat=1, n_warmup=0, name="epoch").gpu_times[0, 0])


def torch_event_timer(torch):
    """A timer ``timer(fn) -> seconds`` like :func:`cuda_event_timer`, with PyTorch's CUDA
    events on its current stream.
    (``torch.utils.benchmark.Timer`` does not fit: it reads the host clock around a
    device synchronisation, and runs PyTorch on one thread unless told otherwise.)"""

    def timer(fn):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    return timer


def gpu_spin(cp, seconds: float = 0.2, n: int = 2048, dtype=np.float32) -> int:
    """Keep the GPU busy with n×n products for ``seconds`` (its clocks come back up);
    returns the products run."""
    from cupyx.profiler import benchmark

    A = cp.ones((n, n), dtype)
    C = cp.empty_like(A)
    spin = benchmark(
        cp.matmul, (A, A), {"out": C}, 2**31 - 1, name="spin", n_warmup=0, max_duration=seconds
    )
    return len(spin.cpu_times)
