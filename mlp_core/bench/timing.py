"""Timing: a call's seconds with the device synchronised, its spread, CUDA events.

Every clock read is preceded by a synchronisation of the device (:func:`backend.synchronize`),
so queued GPU work is counted where it runs. On a GPU a contender can instead be timed
with CUDA events (:func:`cuda_event_timer`), which measure the device's own time between
two points of its stream, and warmed up by elapsed time just before it is timed
(:func:`warm_up_for`): a GPU's clocks drop while the CPU contenders run.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..core import backend

UNSTABLE_RATIO = 2.0  # a contender whose slowest timed call is > 2× its fastest is flagged


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
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def spread(times) -> dict:
    """min, quartiles, max of the timed calls and ``unstable`` (max/min > 2): a bimodal
    contender (one that sometimes waits for a thread pool or the OS) shows here, where a
    median alone hides it."""
    t = sorted(float(x) for x in times)
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


def warm_up_for(seconds: float, fn, sync) -> int:
    """Call ``fn()`` until ``seconds`` have elapsed (at least once); returns the calls.

    Before a GPU timing: a GPU lowers its clocks when idle (while CPU contenders run), and
    a fixed number of warm-up calls may end before they are back up."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        sync()
        calls += 1
        if time.perf_counter() - start >= seconds:
            return calls


def cuda_event_timer(cp):
    """A timer ``timer(fn) -> seconds`` that measures ``fn()``'s work on the current CuPy
    stream with two CUDA events (the device's own clock; the host is not in the loop)."""

    def timer(fn):
        stream = cp.cuda.get_current_stream()
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record(stream)
        fn()
        end.record(stream)
        end.synchronize()
        return cp.cuda.get_elapsed_time(start, end) / 1e3

    return timer


def torch_event_timer(torch):
    """As :func:`cuda_event_timer`, with PyTorch's CUDA events on its current stream."""

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
    A = cp.ones((n, n), dtype)
    C = cp.empty_like(A)
    return warm_up_for(seconds, lambda: cp.matmul(A, A, out=C), lambda: backend.synchronize(cp))
