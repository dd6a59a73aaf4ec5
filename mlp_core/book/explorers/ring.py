"""Chapter 14: the ring all-reduce, step by step, for P ranks.

Each rank's buffer is cut into P chunks. In the reduce-scatter, at step t = 1 … P − 1,
rank r sends chunk (r − t + 1) mod P to rank r + 1, which adds it to its own; after P − 1
steps rank r holds the complete sum of chunk (r + 1) mod P. In the all-gather, at steps
P … 2(P − 1), each rank passes the complete chunk it last received on, and the receiver
keeps it. :func:`ring_states` plays this schedule on real arrays (each rank's buffer of
random numbers) and records, per step, which ranks' parts each chunk holds;
tests/test_explorers.py checks that every rank ends with the sum over the ranks (what
``MPI.Allreduce`` with ``MPI.SUM`` returns) after 2(P − 1) steps. The time of a step is
the library's cost model, ``bench.allreduce.ring_allreduce_seconds``, shared equally by
its 2(P − 1) steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...bench.allreduce import ring_allreduce_seconds
from ._base import Control, Explorer
from ._draw import fmt

P_VALUES = tuple(range(2, 9))
MAX_STEP = 2 * (P_VALUES[-1] - 1)
RECORDING = Path(__file__).resolve().parents[3] / "book" / "data" / "allreduce-cpu.json"


def ring_states(P: int, chunk: int = 3, seed: int = 0):
    """The ring all-reduce of P random buffers of P chunks (``chunk`` numbers each).

    Returns ``(states, buffers, total)``: ``states[s]`` (s = 0 … 2(P − 1)) is a dict with
    ``held`` (P × P × P booleans: rank r's chunk c holds rank q's part), ``values`` (each
    rank's buffer) and ``sent`` ((sender, chunk) pairs of step s; none at s = 0);
    ``total`` is the sum over the ranks of the initial buffers.
    """
    rng = np.random.default_rng(seed)
    buffers = rng.standard_normal((P, P, chunk))
    values = buffers.copy()
    held = np.zeros((P, P, P), dtype=bool)
    for r in range(P):
        held[r, :, r] = True
    states = [dict(held=held.copy(), values=values.copy(), sent=[])]
    for s in range(1, 2 * (P - 1) + 1):
        reduce = s <= P - 1
        sent = [(r, (r - s + 1) % P) for r in range(P)]
        new_held, new_values = held.copy(), values.copy()
        for r, c in sent:
            dest = (r + 1) % P
            if reduce:
                new_values[dest, c] = values[dest, c] + values[r, c]
                new_held[dest, c] = held[dest, c] | held[r, c]
            else:
                new_values[dest, c] = values[r, c]
                new_held[dest, c] = held[r, c]
        held, values = new_held, new_values
        states.append(dict(held=held.copy(), values=values.copy(), sent=sent))
    return states, buffers, buffers.sum(axis=0)


def recorded_model(path=RECORDING) -> dict:
    """α, β of the recorded ping-pong (P = 2) and the digits network's all-reduce buffer
    (bytes) from ``book/data/allreduce-cpu.json``."""
    rec = json.loads(Path(path).read_text(encoding="utf-8"))
    block = next(b for b in rec["per_P"] if b["alpha_s"] is not None)
    nbytes = next(r["bytes"] for r in block["rows"] if r["network"] == "digits")
    return dict(alpha=block["alpha_s"], beta=block["beta_bytes_per_s"], nbytes=nbytes)


def ring_tables(alpha: float, beta: float, nbytes: int) -> dict:
    """``cells``: per (P, step s ≤ 2(P − 1), rank r, chunk c) how many ranks' parts the
    chunk holds (``n``) and ``send`` when it is sent at step s (the page shows the last
    step for any later one); ``readout``: per (P, s ≤ :data:`MAX_STEP`) the phase, the
    share of the buffer each rank has sent and the model's time so far."""
    cells, lines = [], []
    for P in P_VALUES:
        states, _, _ = ring_states(P)
        last = 2 * (P - 1)
        total_s = ring_allreduce_seconds(nbytes, P, alpha, beta)
        for s in range(MAX_STEP + 1):
            if s <= last:
                st = states[s]
                for r in range(P):
                    for c in range(P):
                        cell = dict(P=P, s=s, r=r, c=c, n=int(st["held"][r, c].sum()))
                        if (r, c) in st["sent"]:
                            cell["send"] = True
                        cells.append(cell)
            done = min(s, last)
            phase = (
                "start: each rank holds its own sums"
                if s == 0
                else f"reduce-scatter step {s} of {P - 1}: each rank adds the chunk it receives"
                if s <= P - 1
                else f"all-gather step {s - P + 1} of {P - 1}: each rank keeps the sum it receives"
                if s <= last
                else f"done after {last} steps: every rank holds every sum"
            )
            lines.append(
                dict(
                    P=P,
                    s=s,
                    phase=phase,
                    readout=(
                        f"each rank has sent {done}/{P} of the buffer "
                        f"({fmt(done * nbytes / P / 1024)} KiB of {fmt(nbytes / 1024)} KiB); "
                        f"model time so far {fmt(total_s * done / last * 1e6)} µs of "
                        f"{fmt(total_s * 1e6)} µs"
                    ),
                )
            )
    return {"cells": cells, "readout": lines}


def _ring_chart(data, p):
    import altair as alt

    cells = (
        alt.Chart(data["cells"])
        .transform_filter("datum.P === P && datum.s === min(step, 2 * (P - 1))")
        .transform_calculate(text="datum.n + '/' + datum.P")
    )
    x = alt.X("c:O", title="chunk", axis=alt.Axis(labelAngle=0, orient="top"))
    y = alt.Y("r:O", title="rank")
    fill = cells.mark_rect(stroke="white").encode(
        x=x,
        y=y,
        color=alt.Color(
            "n:Q",
            scale=alt.Scale(scheme="blues", domain=[0, P_VALUES[-1]]),
            legend=alt.Legend(title="ranks summed"),
        ),
    )
    sent = (
        cells.transform_filter("datum.send === true")
        .mark_rect(fill=None, stroke="#c0282d", strokeWidth=3)
        .encode(x=x, y=y)
    )
    text = cells.mark_text(fontSize=12).encode(
        x=x,
        y=y,
        text="text:N",
        color=alt.condition("datum.n > 4", alt.value("white"), alt.value("black")),
    )
    grid = alt.layer(fill, sent, text).properties(
        width=360, height=300, title="red: sent to the next rank (r + 1 mod P) at this step"
    )
    lines = alt.Chart(data["readout"]).transform_filter("datum.P === P && datum.s === step")
    phase = lines.mark_text(align="left", fontSize=13).encode(
        x=alt.value(0), y=alt.value(8), text="phase:N"
    )
    cost = lines.mark_text(align="left", fontSize=13).encode(
        x=alt.value(0), y=alt.value(8), text="readout:N"
    )
    return alt.vconcat(
        grid, phase.properties(width=560, height=16), cost.properties(width=560, height=16)
    )


def ring_allreduce(P=4, step=0) -> Explorer:
    """Chapter 14's explorer: the number of ranks P and the step of the ring."""
    model = recorded_model()
    tables = ring_tables(**model)
    return Explorer(
        key="ring-allreduce",
        title="the ring all-reduce, step by step",
        description=(
            f"P = {P} ranks (rows) each holding P chunks (columns) of the buffer to sum; "
            f"each cell says how many ranks' parts it holds, at step {step} of the ring "
            "(reduce-scatter, then all-gather), with the chunks being sent outlined."
        ),
        controls=(
            Control("P", "ranks P", P_VALUES, P),
            Control("step", "step", tuple(range(0, MAX_STEP + 1)), step),
        ),
        frame=lambda **_: tables,
        chart=_ring_chart,
        grid=lambda: tables,
    )
