"""The report: the results as a text table and as JSON."""

from __future__ import annotations

import json

from ..core.io import atomic_write, json_default
from .machine import pools_changed
from .timing import UNSTABLE_RATIO, spread

#: The speed-up columns, in the table's order: the key of ``record["speedup"]``, the header.
SPEEDUPS = {
    "loop": "×loop",
    "numpy-batched": "×np-book",
    "sklearn": "×sklearn",
    "torch": "×torch",
    "torch-graph": "×torch-graph",
}
_COLUMNS = ("size", "dtype", "contender", "s/epoch", "examples/s", "GFLOP/s", "% GEMM", "max/min")


def reference(key: str, device: str) -> str:
    """The contender a ratio ``key`` (one of :data:`SPEEDUPS`, or ``"gemm"`` for "% GEMM")
    of a row on ``device`` is taken against: PyTorch's and the GEMM floor's of that device."""
    gpu = device == "gpu"
    return {
        "torch": "torch-cuda" if gpu else "torch-cpu",
        "torch-graph": "torch-cuda-graph",
        "gemm": "gemm-cupy" if gpu else "gemm-numpy",
    }.get(key, key)


def _fmt_ratio(x, unstable=False):
    if x is None:
        return "—"
    return (f"{x:.3g}" if x < 100 else f"{x:.0f}") + ("!" if unstable else "")


def format_table(result: dict) -> str:
    """The results as a text table: one row per (size, dtype, contender); ratios are
    speed-ups (the other's seconds per epoch over this row's), "—" where not measured."""
    rows = []
    spreads = {id(r): record_spread(r) for r in result["records"]}
    flagged = {
        (r["size"], r["dtype"], r["contender"])
        for r in result["records"]
        if (spreads[id(r)] or {}).get("unstable")
    }

    def unstable_ref(r, key):
        return (r["size"], r["dtype"], reference(key, r["device"])) in flagged

    for r in result["records"]:
        mark = "*" if r["extrapolated"] else ""
        pct = "—" if r.get("pct_gemm") is None else f"{r['pct_gemm']:.0f}%"
        s = r["speedup"]
        sp = spreads[id(r)]
        spread_cell = (
            "—" if sp is None else f"{sp['max_over_min']:.2g}" + ("!" if sp["unstable"] else "")
        )
        rows.append(
            (
                r["size"],
                r["dtype"],
                r["label"] + mark,
                f"{r['seconds']:.4g}",
                f"{r['examples_per_s']:.3g}",
                f"{r['gflops']:.3g}",
                pct,
                spread_cell,
                *(_fmt_ratio(s.get(k), unstable_ref(r, k)) for k in SPEEDUPS),
            )
        )
    # a column of ratios against a contender that did not run says nothing: drop it
    headers = (*_COLUMNS, *SPEEDUPS.values())
    keep = [
        i
        for i, c in enumerate(headers)
        if not c.startswith("×") or any(row[i] != "—" for row in rows)
    ]
    columns = [headers[i] for i in keep]
    rows = [tuple(row[i] for i in keep) for row in rows]
    widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(columns)]
    left = 3

    def line(cells):
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [line(columns), line(["-" * w for w in widths])]
    prev = None
    for row in rows:
        if prev is not None and row[:2] != prev:
            out.append("")
        out.append(line(row))
        prev = row[:2]
    meta = result["meta"]
    notes = [
        "",
        f"CPU: {meta['cpu']} ({meta['cores']} cores); "
        f"GPU: {meta['gpu']['name'] if meta.get('gpu') else 'none used'}; "
        f"medians of {result['settings']['repeats']} interleaved repeats after "
        f"{result['settings']['warmup']} warm-up" + _warm_note(result["settings"]) + ".",
    ]
    if any(r["extrapolated"] for r in result["records"]):
        extra = {r["note"] for r in result["records"] if r["extrapolated"]}
        notes.append("* extrapolated: " + "; ".join(sorted(extra)))
    notes.append(
        "% GEMM: this row's GFLOP/s over the GEMMs-only floor of its device, "
        "its fastest epoch in the same run. ×X: X's seconds per epoch / this row's (medians). "
        "max/min: the slowest timed epoch over the fastest; '!' marks a contender above "
        f"{UNSTABLE_RATIO:g} (its median is not a stable figure: quote its spread) and "
        "every ratio taken against it."
    )
    changed = pools_changed(meta.get("thread_pools") or {})
    if changed:
        notes.append(
            "thread pools not at their libraries' defaults ("
            + " ".join(f"{k}={v}" for k, v in changed.items())
            + "): a pool told to sleep at once is woken for every small operation."
        )
    speed = result.get("host_speed")
    if speed:
        notes.append(host_speed_note(speed))
    before = meta.get("load_average_before")
    if before and before[0] > 0.5:
        notes.append(f"load average before the run: {before[0]:.2f} (the machine was not idle).")
    for s in result["skipped"]:
        notes.append(f"skipped: {s['contender']} ({s['size']}, {s['dtype']}): {s['reason']}")
    return "\n".join(out + notes)


def host_speed_note(speed: dict) -> str:
    """One line on the host-speed probes of a run (:func:`timing.steadiness`)."""
    again = speed.get("rounds_timed_again")
    line = (
        f"host speed: a {speed['n']}² float32 product ran at {speed['gflops_min']:.0f} to "
        f"{speed['gflops_max']:.0f} GFLOP/s in the {speed['probes']} probes that count "
        f"(max/min {speed['max_over_min']:.2f}"
        + (f"; {again} rounds timed again after a slow probe)" if again else ")")
    )
    if speed["steady"]:
        return line + ": steady."
    return (
        line + f", above {speed['steady_ratio']:g}: the machine changed speed during the "
        "run, so its ratios mix fast and slow moments."
    )


def record_spread(r: dict) -> dict | None:
    """A record's spread (:func:`timing.spread`, scaled to an epoch), computed from its
    timed seconds where an older recording did not store it; None without times."""
    if r.get("spread") is not None:
        return r["spread"]
    return spread(r["times"], r.get("scale", 1.0)) if r.get("times") else None


def write_json(result: dict, path):
    """Write the results as JSON, atomically (:func:`mlp_core.core.io.atomic_write`);
    returns the file written."""
    text = json.dumps(result, indent=1, default=json_default) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def _warm_note(settings: dict) -> str:
    """How the timed calls started (recordings made before ``warm_below`` existed say
    nothing)."""
    below, fill = settings.get("warm_below"), settings.get("round_seconds")
    if not below:
        return ""
    note = f"; a call under {below:g} s timed right after an untimed one of its own"
    return note + (f", over back-to-back calls filling {fill:g} s (their mean)" if fill else "")
