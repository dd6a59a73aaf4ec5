"""Chapters 1 and 5: the shape of every matrix as m, n, h_1, h_2 and C change.

The shapes are a pure rule, :func:`mlp_core.book.diagrams.shape_table`; the browser
applies it to any sizes through a *symbolic* table derived from that function: each
dimension of each array is named by the size it is ("m", "one", or "h<k>"), found by
evaluating ``shape_table`` once on sizes that are all different primes. The page looks
the symbols up in the current sizes (:func:`lookup`, one Vega expression);
tests/book/test_explorers.py checks that the browser's shapes equal ``shape_table``'s
over a grid of sizes.
"""

from __future__ import annotations

from ..diagrams import shape_table
from ._base import WIDTH, Control, Explorer

# The arrays of the table per layer l: (key of shape_table, label, one example or batch).
COLUMNS = (
    ("W", "W[l]", "both"),
    ("a_prev", "a[l-1]", "one example"),
    ("z", "z[l], a[l], δ[l]", "one example"),
    ("A_prev", "A[l-1]", "m examples"),
    ("b_batch", "b[l]", "m examples"),
    ("Z", "Z[l], A[l], Δ[l]", "m examples"),
    ("dW", "dW[l]", "m examples"),
    ("db", "db[l]", "m examples"),
)
# Distinct primes, so that each number names one size: m, then h_0 .. h_3.
_M, _H = 2, (3, 5, 7, 11)
# The current widths h = (n, h1[, h2], C), as a Vega expression over the controls.
H_EXPR = "h2 > 0 ? [n, h1, h2, C] : [n, h1, C]"
STACK_HEIGHT = 150  # px for the tallest matrix of the stack
GAP = 14  # px between two matrices of the stack


def _symbol(d: int, L: int) -> str:
    if d == _M:
        return "m"
    if d == 1:
        return "one"
    return f"h{_H.index(d)}"


def lookup(field: str) -> str:
    """The browser's rule: the size a symbol names, in the current m and widths H."""
    s = f"datum.{field}"
    return f"({s} === 'm' ? m : {s} === 'one' ? 1 : datum.H[toNumber(substring({s}, 1))])"


def symbolic_tables() -> dict:
    """``cells``: one row per (network depth L = 2 or 3, layer l, array of
    :data:`COLUMNS`) with its dimensions as symbols (``d0``, ``d1``; ``d1`` None for a
    flat array); ``stack``: the chain A[0], W[1], A[1], ..., A[L] in order. Both read off
    :func:`shape_table` evaluated on all-different primes."""
    cells, stack = [], []
    for L in (2, 3):
        table = shape_table(_H[: L + 1], _M)
        for r in table:
            for key, label, face in COLUMNS:
                dims = [_symbol(d, L) for d in r[key]]
                d1 = dims[1] if len(dims) > 1 else None
                cells.append(
                    dict(L=L, l=r["l"], key=key, label=label, face=face, d0=dims[0], d1=d1)
                )
            l = r["l"]
            for k, name, key, role in (
                (2 * l - 2, f"A[{l - 1}]", "A_prev", "data"),
                (2 * l - 1, f"W[{l}]", "W", "param"),
            ):
                d0, d1 = (_symbol(d, L) for d in r[key])
                stack.append(dict(L=L, k=k, name=name, role=role, d0=d0, d1=d1))
        d0, d1 = (_symbol(d, L) for d in table[-1]["A"])
        stack.append(dict(L=L, k=2 * L, name=f"A[{L}]", role="data", d0=d0, d1=d1))
    return {"cells": cells, "stack": stack}


def _tables(**_setting) -> dict:
    return symbolic_tables()


def _sized(chart):
    """The current widths, the depth filter, and the looked-up dimensions r0, r1."""
    return (
        chart.transform_calculate(H=H_EXPR)
        .transform_filter("datum.L === length(datum.H) - 1")
        .transform_calculate(r0=lookup("d0"), r1=f"datum.d1 === null ? null : {lookup('d1')}")
    )


def _chart(data, p):
    import altair as alt

    # ---- the chain of matrices, to scale (one scale for the whole chain)
    stack = (
        _sized(alt.Chart(data["stack"]))
        .transform_window(right="sum(r1)", sort=[alt.SortField("k")], frame=[None, 0])
        .transform_joinaggregate(tall="max(r0)", wide="sum(r1)", items="count()")
        .transform_calculate(
            unit=f"min({STACK_HEIGHT} / datum.tall, ({WIDTH} - {GAP} * (datum.items - 1)) "
            "/ datum.wide)"
        )
        .transform_calculate(
            x0=f"(datum.right - datum.r1) * datum.unit + {GAP} * datum.k",
            y1="max(datum.r0 * datum.unit, 2)",
        )
        .transform_calculate(
            x1="datum.x0 + max(datum.r1 * datum.unit, 2)",
            xm="datum.x0 + max(datum.r1 * datum.unit, 2) / 2",
            shape="'(' + datum.r0 + ', ' + datum.r1 + ')'",
        )
    )
    colour = alt.Color(
        "role:N",
        scale=alt.Scale(domain=["data", "param"], range=["#1f77b4", "#d95f02"]),
        legend=alt.Legend(
            title=None, labelExpr="datum.label === 'data' ? 'activations' : 'weights'"
        ),
    )
    rects = (
        stack.mark_rect(fillOpacity=0.15, strokeWidth=1.5)
        .encode(
            x=alt.X("x0:Q", scale=None, axis=None),
            x2="x1:Q",
            y=alt.Y("zero:Q", scale=None, axis=None),
            y2="y1:Q",
            stroke=colour,
            fill=colour,
        )
        .transform_calculate(zero="0")
    )
    names = stack.mark_text(dy=-8, fontSize=12).encode(
        x=alt.X("xm:Q", scale=None), y=alt.value(0), text="name:N"
    )
    sizes = stack.mark_text(baseline="top", dy=4, fontSize=11).encode(
        x=alt.X("xm:Q", scale=None), y=alt.Y("y1:Q", scale=None), text="shape:N"
    )
    chain = alt.layer(rects, names, sizes).properties(
        width=WIDTH, height=STACK_HEIGHT + 24, title="the forward chain A[l-1] @ W[l], to scale"
    )

    # ---- the table: the shape of every array, layer by layer
    table = (
        _sized(alt.Chart(data["cells"]))
        .transform_calculate(
            shape="'(' + datum.r0 + (datum.r1 === null ? ',)' : ', ' + datum.r1 + ')')"
        )
        .mark_text(fontSize=12)
        .encode(
            x=alt.X(
                "label:N",
                sort=[c[1] for c in COLUMNS],
                title="one example: a[l-1] ... δ[l]; a batch of m: A[l-1] ... db[l]",
                axis=alt.Axis(orient="top", labelAngle=0, labelFontSize=11),
            ),
            y=alt.Y("l:O", title="layer l"),
            text="shape:N",
        )
        .properties(width=WIDTH, height=alt.Step(22))
    )
    return alt.vconcat(chain, table, spacing=10)


def shapes(m=32, n=64, hidden=(16,), C=10) -> Explorer:
    """The shapes explorer (chapters 1 and 5): sliders for m, n, h_1, h_2 (0 = none)
    and C; every shape follows."""
    hidden = tuple(hidden)
    h1, h2 = hidden[0], (hidden[1] if len(hidden) > 1 else 0)
    controls = (
        Control("m", "m (examples)", tuple(range(1, 257)), m),
        Control("n", "n (inputs)", tuple(range(1, 785)), n),
        Control("h1", "h1 (first hidden layer)", tuple(range(1, 257)), h1),
        Control("h2", "h2 (second hidden layer, 0 = none)", tuple(range(0, 257)), h2),
        Control("C", "C (classes)", tuple(range(1, 21)), C),
    )
    sizes = (n, h1) + ((h2,) if h2 else ()) + (C,)
    return Explorer(
        key="shapes",
        title="the shapes of a network and of a batch",
        description=(
            f"For h = {sizes} and a batch of m = {m}: the chain A[0] = X, W[1], A[1], ... "
            "drawn to scale (weights do not depend on m; activations have m rows), and "
            "the shape of every array of one example and of the batch, layer by layer."
        ),
        controls=controls,
        frame=_tables,
        chart=_chart,
        grid=_tables,
    )
