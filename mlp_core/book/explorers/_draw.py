"""Drawing helpers shared by the explorers: matrices as heatmaps in the book's one signed
key (:data:`mlp_core.book.diagrams.SIGNED_CMAP`, purple < 0 < orange, each matrix scaled
to its own largest |entry|), outlined in the colour of their role."""

from __future__ import annotations

import numpy as np

from ..diagrams import ROLE_COLORS

CELL = 26  # px per matrix entry (a square cell)
TEXT_CELL = (52, 24)  # px per entry with its value written in
SIGNED_SCHEME = "purpleorange"  # Vega's name for the book's PuOr_r: purple < 0 < orange


def fmt(x: float) -> str:
    """A number as the explorers print it: 4 significant digits (what reproduces on any
    x86-64 BLAS kernel), and an exact 0 as 0."""
    x = float(x)
    return "0" if x == 0 else f"{x:.4g}"


def matrix_rows(M, lim: float | None = None, text: bool = True, **tags) -> list[dict]:
    """One row per entry of the 2-D array ``M``: ``r``, ``c`` (1-based), ``scaled``
    (value / ``lim``, default the largest |entry|; in [-1, 1], 3 decimals: a colour) and,
    with ``text``, the value as printed (:func:`fmt`), plus ``tags``."""
    M = np.asarray(M, dtype=float)
    lim = float(np.max(np.abs(M))) if lim is None else float(lim)
    rows = []
    for (r, c), v in np.ndenumerate(M):
        row = dict(tags, r=r + 1, c=c + 1, scaled=round(float(v) / lim, 3) if lim > 0 else 0.0)
        if text:
            row["text"] = fmt(v)
        rows.append(row)
    return rows


def heatmap(chart, title: str, role: str, rows: int, cols: int, text: bool = True):
    """``chart`` (rows ``r``, ``c``, ``scaled``, ``text``) as a heatmap of ``rows`` ×
    ``cols`` cells, titled, framed in the role's colour, with the values written in."""
    import altair as alt

    base = chart.encode(
        x=alt.X("c:O", title=None, axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("r:O", title=None),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=0.5).encode(
        color=alt.Color(
            "scaled:Q",
            scale=alt.Scale(scheme=SIGNED_SCHEME, domain=[-1, 1], domainMid=0),
            legend=None,
        )
    )
    layers = [cells]
    if text:
        layers.append(base.mark_text(fontSize=9).encode(text="text:N"))
    w, h = TEXT_CELL if text else (CELL, CELL)
    return alt.layer(*layers).properties(
        width=cols * w,
        height=rows * h,
        title=alt.TitleParams(title, color=ROLE_COLORS[role], fontSize=13),
    )
