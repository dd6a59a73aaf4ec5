"""The run: every contender on every size and dtype, interleaved, and the records.

Timing (:func:`run_bench`): warm-up epochs first, then several repeats, the contenders
interleaved round-robin in each repeat (each repeat starting with the next contender) so
that drift of the machine hits all alike; a contender whose epoch takes under a second
is timed right after an untimed epoch of its own (``warm_below``), as an epoch of training
follows the one before it, and over as many epochs back to back as fill ``round_seconds``
(their mean is the round's time: one epoch of milliseconds right after a pause would time
the machine waking up as much as the epoch); the device is synchronised before every clock
read (or, on a GPU, the epoch is timed with CUDA events after a short spin that brings the
clocks back up); medians and spreads are reported. The load average is read before the
run, and the host's speed after every contender's round (:class:`HostWatch`: a shared
host's slow spells show there, where no load inside the machine does, and a round that may
have run in one is timed again). The BLAS and OpenMP pools
run at their libraries' defaults (spin briefly when idle, then sleep:
:data:`machine.POOL_VARIABLES`), and the run pauses between two contenders until their
threads sleep (``pause``).
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np

from .. import fast
from ..core import backend
from ..core.errors import ConfigError
from ..core.validate import check_lr, check_whole
from .contenders import CONTENDERS, LABELS, Runner, Skip, setup_contender
from .machine import load_average, machine_info, pools_changed, thread_pool_settings
from .problems import (
    DEFAULT_SIZES,
    DTYPES,
    LEARNING_RATE,
    SEED,
    SIZES,
    BenchSize,
    Problem,
    epoch_flops,
    make_problem,
)
from .report import SPEEDUPS, reference
from .timing import (
    PROBE_CALLS,
    PROBE_N,
    STEADY_RATIO,
    clock,
    clock_mean,
    epochs_per_round,
    gpu_spin,
    host_gflops,
    median,
    spread,
    steadiness,
)


def run_bench(
    sizes=None,
    dtypes=None,
    repeats: int | None = None,
    warmup: int | None = None,
    contenders=None,
    quick: bool = False,
    device: str | None = None,
    loop_examples=None,
    lr: float | None = None,
    pause: float = 0.3,
    warm_below: float = 1.0,
    round_seconds: float = 0.2,
    gpu_warmup_s: float = 0.2,
    spell_wait: float = 60.0,
    progress=None,
) -> dict:
    """Time every contender on every size and dtype; returns ``{"meta", "records",
    "skipped", "host_speed", "settings"}`` (what :func:`write_json` writes and
    :func:`format_table` prints).

    ``sizes``: names from :data:`SIZES` or :class:`BenchSize` objects (default
    :data:`DEFAULT_SIZES`); ``dtypes`` (default both), ``contenders`` (default all),
    ``repeats`` (default 5), ``warmup`` (default 1), ``lr`` (default
    :data:`LEARNING_RATE`); lists may be comma-separated strings. ``quick``: the digits
    in float32 only, 3 repeats (for a first look and for tests); it refuses an explicit
    ``sizes``, ``dtypes`` or ``repeats``. ``device``: 'auto' (the GPU contenders run where
    a GPU can be used), 'cpu' or 'gpu'; ``None`` as :func:`backend.resolve_device` says.
    ``pause``: seconds of idle between two timed calls (lets BLAS/OpenMP threads of the
    previous contender go to sleep; never inside a timing). ``warm_below``: a contender
    whose last call took less than this many seconds (and every contender at its first
    call, whose time includes its set-up) is called once more, untimed, right before each
    timed call, so that the timed epoch starts as an epoch of training does,
    from the one before it, not from another contender's (caches, thread pools); the
    untimed calls are kept as the record's ``cold_times``; on the CPU its timed round is
    then as many calls back to back as fill ``round_seconds`` (at least one; the record's
    ``epochs_per_round``), and the round's time their mean. ``gpu_warmup_s``: seconds of
    GPU work just before each GPU timing (the clocks drop while CPU contenders run).
    ``spell_wait``: at most this many seconds to wait for the host's speed to come back
    before timing again a round that a slow probe of it flagged (:class:`HostWatch`).
    ``progress``: a callable taking one line, or None.

    Each round is bracketed by probes of the host's speed (:class:`HostWatch`), and timed
    again when one of them was slow; ``host_speed`` says what the kept rounds' probes
    say (:func:`timing.steadiness`).

    Each record carries the timed seconds, their spread (:func:`timing.spread`: min,
    quartiles, max, flagged when max/min > 2) and the speed-ups of medians.
    """
    if quick:
        given = [
            n
            for n, v in (("sizes", sizes), ("dtypes", dtypes), ("repeats", repeats))
            if v is not None
        ]
        if given:
            raise ConfigError(
                f"quick sets the sizes, dtypes and repeats itself (digits, float32, 3); "
                f"drop --quick or {', '.join('--' + g for g in given)}."
            )
        sizes, dtypes, repeats = ("digits",), ("float32",), 3
    sizes = DEFAULT_SIZES if sizes is None else sizes
    dtypes = DTYPES if dtypes is None else dtypes
    repeats = check_whole(5 if repeats is None else repeats, "repeats")
    warmup = check_whole(1 if warmup is None else warmup, "warmup", at_least=0)
    lr = check_lr(LEARNING_RATE if lr is None else lr)
    sizes = [SIZES[s] if isinstance(s, str) else s for s in _names(sizes, SIZES, "size")]
    dtypes = [np.dtype(d) for d in _names(dtypes, DTYPES, "dtype")]
    contenders = _names(CONTENDERS if contenders is None else contenders, CONTENDERS, "contender")
    if loop_examples is not None:
        loop_examples = check_whole(loop_examples, "loop_examples (the examples the loop times)")
    load_before = load_average()  # before our own work raises it
    use_gpu = backend.resolve_device(device) == "gpu"
    say = progress or (lambda line: None)
    changed = pools_changed(thread_pool_settings())
    if changed:
        say(
            "note: thread pools not at their libraries' defaults ("
            + " ".join(f"{k}={v}" for k, v in changed.items())
            + "): start Python without them for timings comparable with the book's"
        )
    records, skipped = [], []
    watch = HostWatch(pause, wait=spell_wait)

    def skip(size, dtype, contender, reason):
        skipped.append(dict(size=size, dtype=dtype, contender=contender, reason=reason))

    for size in sizes:
        if size.gpu_only and not use_gpu:
            skip(size.name, "*", "*", "GPU-only size and no GPU in use")
            continue
        for dtype in dtypes:
            say(f"{size.describe()}, {dtype.name}: preparing")
            p = make_problem(size, dtype, lr=lr)
            runners = []
            for name in contenders:
                try:
                    runners.append(setup_contender(name, p, use_gpu, loop_examples))
                except Skip as why:
                    skip(size.name, dtype.name, name, str(why))
            times = {r.name: [] for r in runners}
            cold = {r.name: [] for r in runners}
            epochs = {r.name: [] for r in runners}
            last = {}  # each contender's last call, in seconds
            failed, redone = {}, {r.name: 0 for r in runners}
            where = dict(size=size.name, dtype=dtype.name)
            before = watch.probe(**where, round=1, after=None)
            for rnd in range(warmup + repeats):
                k = rnd % len(runners) if runners else 0
                for r in runners[k:] + runners[:k]:  # round-robin, a new leader each time
                    if r.name in failed:
                        continue
                    for attempt in itertools.count():
                        time.sleep(pause)
                        try:
                            t, first, calls = _time_round(
                                r,
                                rnd >= warmup,
                                last.get(r.name),
                                warm_below,
                                round_seconds,
                                gpu_warmup_s,
                            )
                        except Exception as err:  # noqa: BLE001 - report, go on with the rest
                            failed[r.name] = f"failed: {type(err).__name__}: {err}"
                            break
                        last[r.name] = t
                        after = watch.probe(**where, round=rnd + 1, after=r.name)
                        if not watch.again(before, after, attempt):
                            before = after
                            break
                        before = watch.probe(**where, round=rnd + 1, after="wait")
                    if r.name in failed or rnd < warmup:
                        continue
                    times[r.name].append(t)
                    epochs[r.name].append(calls)
                    redone[r.name] += attempt
                    if first is not None:
                        cold[r.name].append(first)
                say(
                    f"{size.name} {dtype.name}: round {rnd + 1}/{warmup + repeats}"
                    + (" (warm-up)" if rnd < warmup else "")
                )
            for name, reason in failed.items():
                skip(size.name, dtype.name, name, reason)
            block = [
                _record(p, r, times[r.name], cold[r.name], epochs[r.name], redone[r.name])
                for r in runners
                if r.name not in failed
            ]
            _add_ratios(block)
            records.extend(block)
            del runners, p
            _free_memory()
    return {
        "meta": machine_info(use_gpu, load_before),
        "records": records,
        "skipped": skipped,
        "host_speed": watch.summary(),
        "settings": dict(
            sizes=[s.name for s in sizes],
            dtypes=[d.name for d in dtypes],
            repeats=repeats,
            warmup=warmup,
            contenders=list(contenders),
            lr=lr,
            seed=SEED,
            quick=quick,
            warm_below=warm_below,
            round_seconds=round_seconds,
            pause=pause,
            gpu_warmup_s=gpu_warmup_s if use_gpu else None,
            steady_ratio=STEADY_RATIO,
            spell_retries=watch.retries,
            spell_wait=spell_wait,
        ),
    }


def _time_round(r: Runner, timed: bool, last, warm_below, round_seconds, gpu_warmup_s):
    """One round of contender ``r``: ``(seconds per epoch, untimed first call's seconds or
    None, epochs timed)``. ``last``: its previous round's seconds (None at its first);
    ``timed``: past the warm-up. The rules are :func:`run_bench`'s."""
    if r.device == "gpu" and timed and gpu_warmup_s > 0:
        gpu_spin(backend.gpu_xp(), gpu_warmup_s)
    first, calls = None, 1
    if last is None or last < warm_below:  # the first call too
        first = clock(r.run, r.sync)  # untimed: it warms the next one
        if r.timer is None:
            calls = epochs_per_round(round_seconds, first if last is None else last)
    if r.timer is not None:
        return r.timer(r.run), first, calls
    return clock_mean(r.run, r.sync, calls), first, calls


POLL_S = 2.0  # while the host is slow, its speed is probed this often


class HostWatch:
    """The host's speed through a run (:func:`timing.host_gflops`): a probe before the
    first round of each size and dtype and after every contender's round, each after a
    ``pause`` (so that no pool of the contender before still spins). A round with a probe
    on either side slower than the fastest probe so far by more than
    :data:`timing.STEADY_RATIO` may have run in one of the host's slow spells: it is timed
    again once the host is back to speed (probed every :data:`POLL_S` s, for at most
    ``wait`` s) and a fresh probe has been taken, at most ``retries`` times, and at most
    ``budget`` times in a run. :meth:`summary` judges the probes around the rounds
    that were kept."""

    def __init__(self, pause: float, retries: int = 2, budget: int = 30, wait: float = 60.0):
        self.pause, self.retries, self.budget, self.wait = pause, retries, budget, wait
        self.best, self.redone = 0.0, 0
        self.probes, self.kept = [], set()  # every probe; those around kept rounds

    def probe(self, **where) -> int:
        """Probe the host's speed now; returns the probe's number."""
        time.sleep(self.pause)
        rate = host_gflops()
        self.best = max(self.best, rate)
        self.probes.append(dict(where, gflops=rate))
        return len(self.probes) - 1

    def again(self, before: int, after: int, attempt: int) -> bool:
        """Whether the round between probes ``before`` and ``after`` (numbers), timed for
        the ``attempt``-th time after its first, is to be timed again; if not, its probes
        count in :meth:`summary`."""
        slowest = min(self.probes[before]["gflops"], self.probes[after]["gflops"])
        if slowest * STEADY_RATIO < self.best and attempt < self.retries:
            if self.redone < self.budget:
                self.redone += 1
                self._wait_for_speed()
                return True
        self.kept |= {before, after}
        return False

    def _wait_for_speed(self) -> None:
        """Wait until a probe is back within the ratio of the fastest, probing every
        :data:`POLL_S` s, or until ``wait`` s have passed (these probes are not kept)."""
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
            if host_gflops() * STEADY_RATIO >= self.best:
                return

    def summary(self) -> dict | None:
        """:func:`timing.steadiness` of the kept rounds' probes against the fastest probe
        of the run (a spell that outlasted the retries shows), with every probe and the
        rounds timed again; None when no round ran."""
        if not self.kept:
            return None
        return dict(
            n=PROBE_N,
            calls=PROBE_CALLS,
            **steadiness([self.probes[i]["gflops"] for i in sorted(self.kept)] + [self.best]),
            rounds_timed_again=self.redone,
            probes_taken=self.probes,
        )


def _names(values, valid, what):
    if isinstance(values, str):
        values = values.split(",") if values.strip() else []
    out = []
    for v in values:
        if isinstance(v, BenchSize):
            out.append(v)
            continue
        v = str(v).strip()
        if v not in valid:
            raise ConfigError(f"unknown {what} {v!r}; valid: {', '.join(valid)}")
        out.append(v)
    if not out:
        raise ConfigError(f"no {what} given; valid: {', '.join(valid)}")
    return out


def _record(
    p: Problem, r: Runner, times: list, cold_times: list, epochs: list, redone: int = 0
) -> dict:
    """One contender's record. ``cold_times``: its untimed calls, each made right after
    another contender's (empty when its calls were not warmed, see ``warm_below``);
    ``epochs``: the calls each timed round made back to back (``round_seconds``);
    ``redone``: its timed rounds timed again after a slow probe (:class:`HostWatch`)."""
    size = p.size
    seconds = median(times) * r.scale
    flops = epoch_flops(p.m, size.sizes)
    return dict(
        size=size.name,
        m=p.m,
        sizes=list(size.sizes),
        batch=size.batch,
        dtype=p.dtype.name,
        contender=r.name,
        label=LABELS[r.name],
        device=r.device,
        times=times,
        spread=spread(times, r.scale),
        timer="CUDA events" if r.timer is not None else "perf_counter, device synchronised",
        scale=r.scale,
        extrapolated=r.scale != 1.0,
        seconds=seconds,
        cold_times=cold_times,
        cold_seconds=median(cold_times) * r.scale if cold_times else None,
        epochs_per_round=epochs,
        rounds_timed_again=redone,
        examples_per_s=p.m / seconds,
        gflop=flops / 1e9,
        gflops=flops / seconds / 1e9,
        note=r.note,
    )


def _add_ratios(block: list) -> None:
    """Per record: % of the GEMM floor of its device (the floor's fastest epoch: a floor
    is the best its products can do) and speed-ups (time ratios of medians)."""
    by = {r["contender"]: r for r in block}
    for r in block:
        floor = by.get(reference("gemm", r["device"]))
        best = floor and floor["gflop"] / floor["spread"]["min"]
        r["pct_gemm"] = 100 * r["gflops"] / best if floor else None
        refs = {k: by.get(reference(k, r["device"])) for k in SPEEDUPS}
        r["speedup"] = {
            k: ref["seconds"] / r["seconds"] if ref else None for k, ref in refs.items()
        }


def _free_memory():
    fast.clear_workspaces()
    cp = backend.gpu_xp()
    if cp is not None:
        cp.get_default_memory_pool().free_all_blocks()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
