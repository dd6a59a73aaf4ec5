"""Chapters 12 and 13: why batches are fast, as the batch grows.

* :func:`roofline` (chapter 12): the product Z = A W of one layer for m = 1, 2, 4, …
  examples, measured on the machine that builds the book (``bench.timing.time_call``,
  as chapter 12's roofline is), placed at its arithmetic intensity
  (``experiments.matmul_intensity``) under the roof ``experiments.roofline`` of the
  measured peak (``gemm_rate``) and bandwidth (``copy_bandwidth``).
* :func:`launch_cost` (chapter 13): an epoch's three lower bounds, the launches (calls),
  the bytes and the FLOPs (``experiments.time_breakdown``), against the batch size B.
"""

from __future__ import annotations

import numpy as np

from ...bench import experiments
from ...bench.timing import median, time_call
from ._base import Control, Explorer
from ._draw import fmt

M_VALUES = tuple(2**k for k in range(13))  # m = 1 … 4096
ROOF_POINTS = 60


def measure_layer(h_in: int, h_out: int, m_values=M_VALUES, dtype=np.float32, repeats: int = 3):
    """Measured GFLOP/s of Z = A W, A (m, h_in), W (h_in, h_out), for each m: 2 m h_in
    h_out FLOPs over the median time (``time_call``)."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((h_in, h_out)).astype(dtype)
    out = []
    for m in m_values:
        A = rng.standard_normal((m, h_in)).astype(dtype)
        t = median(time_call(lambda: A @ W, xp=np, repeats=repeats))
        out.append(2.0 * m * h_in * h_out / t / 1e9)
    return out


def roofline_tables(peak_gflops, bandwidth_gbs, h_in, h_out, measured, m_values=M_VALUES):
    """``roof``: the roof over the intensities shown; ``points``: per m its intensity, the
    measured rate, the roof there and the readout line."""
    intensity = [experiments.matmul_intensity(h_in, h_out, m) for m in m_values]
    grid = np.logspace(np.log10(min(intensity) / 2), np.log10(max(intensity) * 4), ROOF_POINTS)
    roof = experiments.roofline(peak_gflops, bandwidth_gbs, grid)
    points = []
    for m, I, g in zip(m_values, intensity, measured):
        top = float(experiments.roofline(peak_gflops, bandwidth_gbs, I))
        points.append(
            dict(
                m=m,
                I=float(fmt(I)),
                gflops=float(fmt(g)),
                readout=(
                    f"m = {m}: intensity {fmt(I)} FLOP/byte, measured {fmt(g)} GFLOP/s, "
                    f"roof {fmt(top)} GFLOP/s ({100 * g / top:.0f} % of the roof)"
                ),
            )
        )
    return {
        "roof": [dict(I=float(fmt(i)), gflops=float(fmt(r))) for i, r in zip(grid, roof)],
        "points": points,
    }


def _roofline_chart(data, p):
    import altair as alt

    x = alt.X("I:Q", scale=alt.Scale(type="log"), title="arithmetic intensity (FLOP/byte)")
    y = alt.Y("gflops:Q", scale=alt.Scale(type="log"), title="GFLOP/s")
    roof = alt.Chart(data["roof"]).mark_line(color="black").encode(x=x, y=y)
    pts = alt.Chart(data["points"])
    trail = pts.mark_line(point=True, color="#9ecae1").encode(x=x, y=y, order="m:Q")
    now = (
        pts.transform_filter("datum.m === m")
        .mark_point(size=160, filled=True, color="#c0282d")
        .encode(x=x, y=y)
    )
    label = (
        pts.transform_filter("datum.m === m")
        .transform_calculate(mtext="'m = ' + datum.m")
        .mark_text(dx=10, dy=-10, align="left", fontSize=12)
        .encode(x=x, y=y, text="mtext:N")
    )
    plot = alt.layer(roof, trail, now, label).properties(width=520, height=300)
    line = (
        pts.transform_filter("datum.m === m")
        .mark_text(align="left", fontSize=13)
        .encode(x=alt.value(0), y=alt.value(8), text="readout:N")
        .properties(width=560, height=16)
    )
    return alt.vconcat(plot, line)


def roofline(h_in=784, h_out=256, m=1, peak_gflops=None, bandwidth_gbs=None, measured=None):
    """Chapter 12's explorer: m, the rows of A, moves the measured point of Z = A W along
    (under) the roofline. Measures what it is not given (this machine, when the book is
    built: the figure is of the reader's processor, like chapter 12's roofline)."""
    peak = experiments.gemm_rate() if peak_gflops is None else peak_gflops
    bw = experiments.copy_bandwidth() if bandwidth_gbs is None else bandwidth_gbs
    rates = measure_layer(h_in, h_out) if measured is None else measured
    tables = roofline_tables(peak, bw, h_in, h_out, rates)
    return Explorer(
        key="roofline",
        title="the roofline, as the batch grows",
        description=(
            f"The roofline of this machine (peak {fmt(peak)} GFLOP/s, bandwidth {fmt(bw)} "
            f"GB/s) on log-log axes, and the measured rate of Z = A W for h = ({h_in}, "
            f"{h_out}) at m = 1, 2, 4, …, {M_VALUES[-1]}; the point for m = {m} is marked."
        ),
        controls=(Control("m", "m (rows of A)", M_VALUES, m, kind="select"),),
        frame=lambda **_: tables,
        chart=_roofline_chart,
        grid=lambda: tables,
    )


# ----------------------------------------------------------------------------- chapter 13

B_VALUES = tuple(2**k for k in range(12))  # B = 1 … 2048
PARTS = (("calls", "launches"), ("memory", "bytes"), ("flops", "FLOPs"))


def launch_tables(m, sizes, overhead_s, peak_gflops, bandwidth_gbs, b_values=B_VALUES):
    """Per B and part, the lower bound (ms per epoch) of ``experiments.time_breakdown``
    (launches: batches × ``overhead_s``), and the readout naming the bound."""
    parts, lines = [], []
    for B in b_values:
        t = experiments.time_breakdown(
            m, sizes, B, 4, False, overhead_s, bandwidth_gbs, peak_gflops
        )
        for key, name in PARTS:
            parts.append(dict(B=B, part=name, ms=float(fmt(t[key] * 1e3))))
        lines.append(
            dict(
                B=B,
                readout=(
                    f"B = {B}: launches {fmt(t['calls'] * 1e3)} ms, bytes "
                    f"{fmt(t['memory'] * 1e3)} ms, FLOPs {fmt(t['flops'] * 1e3)} ms per "
                    f"epoch: bound by the {dict(PARTS)[t['bound']]}"
                ),
            )
        )
    return {"parts": parts, "readout": lines}


def _launch_chart(data, p):
    import altair as alt

    x = alt.X("B:Q", scale=alt.Scale(type="log", base=2), title="batch size B")
    y = alt.Y("ms:Q", scale=alt.Scale(type="log"), title="ms per epoch (lower bound)")
    colour = alt.Color(
        "part:N",
        scale=alt.Scale(domain=[n for _, n in PARTS], range=["#c0282d", "#1f77b4", "#2a9d3a"]),
        legend=alt.Legend(title=None, orient="top-right"),
    )
    parts = alt.Chart(data["parts"])
    lines = parts.mark_line(point=True).encode(x=x, y=y, color=colour)
    rule = parts.transform_filter("datum.B === B").mark_rule(color="black").encode(x=x)
    now = (
        parts.transform_filter("datum.B === B")
        .mark_point(size=150, filled=True)
        .encode(x=x, y=y, color=colour)
    )
    plot = alt.layer(lines, rule, now).properties(width=520, height=300)
    line = (
        alt.Chart(data["readout"])
        .transform_filter("datum.B === B")
        .mark_text(align="left", fontSize=13)
        .encode(x=alt.value(0), y=alt.value(8), text="readout:N")
        .properties(width=560, height=16)
    )
    return alt.vconcat(plot, line)


def launch_cost(m, sizes, overhead_s, peak_gflops, bandwidth_gbs, B=1):
    """Chapter 13's explorer: the batch size B against the three lower bounds of an epoch
    of m examples through ``sizes``: launches (``overhead_s`` per batch), bytes at
    ``bandwidth_gbs`` and FLOPs at ``peak_gflops``."""
    tables = launch_tables(m, tuple(sizes), overhead_s, peak_gflops, bandwidth_gbs)
    return Explorer(
        key="launch-cost",
        title="launch cost against FLOP time as the batch grows",
        description=(
            f"Per epoch of m = {m} examples through h = {tuple(sizes)}, on log axes against "
            "the batch size: the time of the kernel launches (falling as 1/B), of the bytes "
            f"and of the FLOPs; B = {B} is marked."
        ),
        controls=(Control("B", "batch size B", B_VALUES, B, kind="select"),),
        frame=lambda **_: tables,
        chart=_launch_chart,
        grid=lambda: tables,
    )
