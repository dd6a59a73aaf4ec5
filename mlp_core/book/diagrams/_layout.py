"""The layout solver: rows of matrices and operators placed on one common scale
(inches per row/column), with their names above and their shapes below."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from ...core.backend import to_numpy
from ...core.errors import ConfigError, ShapeError
from ...core.validate import check_fits_in_memory
from ._canvas import _Canvas, check_shared_norm
from ._style import (
    MAX_UNIT_IN,
    MAX_WIDTH_IN,
    MIN_DIM_IN,
    NAME_SIZE,
    OP_SIZE,
    OPERATORS,
    ROLE_COLORS,
    SHAPE_SIZE,
    _text_size,
    infer_role,
    shape_text,
)


@dataclass
class _Mat:
    """A matrix to draw: its array, or only its shape (``array=None, shape=...``: a diagram
    of shapes allocates nothing, whatever the widths)."""

    label: str
    array: np.ndarray | None
    sym: str | None = None
    role: str | None = None
    shape: tuple | None = None

    def __post_init__(self):
        if self.array is None:
            self.shape = tuple(int(d) for d in self.shape)
            self.rows, self.cols = self.shape if len(self.shape) == 2 else (1, self.shape[0])
        else:
            self.shape = tuple(np.shape(self.array)) or (1, 1)
            check_fits_in_memory(
                8 * math.prod(self.shape),
                f"drawing {self.label} of shape {self.shape} as a heatmap would",
                fix="draw a slice of it, or only its shape",
            )
            a = np.asarray(to_numpy(self.array))
            if a.ndim == 0:
                a = a.reshape(1, 1)
            elif a.ndim == 1:  # a bias b^l (h_l,) is drawn as the row it broadcasts as
                a = a.reshape(1, -1)
            elif a.ndim > 2:
                raise ShapeError(
                    f"{self.label}: only 1-D or 2-D arrays can be drawn, got shape {a.shape}"
                )
            self.array = a
            self.rows, self.cols = a.shape
        if self.role is None:
            self.role = infer_role(self.label)
        self.name = f"${self.label}$"
        self.shape_label = shape_text(self.shape, self.sym)


@dataclass
class _Op:
    text: str

    def __post_init__(self):
        self.shown = OPERATORS.get(self.text, self.text)


def _as_item(term, sym=None):
    if isinstance(term, str):
        return _Op(term)
    if isinstance(term, (tuple, list)) and len(term) in (2, 3) and isinstance(term[0], str):
        role = term[2] if len(term) == 3 else None
        return _Mat(term[0], term[1], sym, role)
    raise ConfigError(
        "each term is an operator string such as '@' or '=', or a pair (label, array) "
        f"(optionally (label, array, role)); got {term!r}"
    )


def _layout(
    rows,
    *,
    values=True,
    title=None,
    row_titles=None,
    align=True,
    max_width=MAX_WIDTH_IN,
    max_height=7.0,
    norm=None,
) -> Figure:
    """Draw rows of matrices and operators on one common scale; returns the Figure.
    ``norm``: one colour scale (:func:`._canvas.signed_norm`) for every matrix, said by
    the key under the figure with its numbers; None: each matrix on its own scale."""
    if norm is not None and values:
        check_shared_norm(
            norm,
            {it.label: it.array for items in rows for it in items if isinstance(it, _Mat)},
        )
    pad, gap, op_pad = 0.06, 0.22, 0.12
    row_titles = list(row_titles) if row_titles else [None] * len(rows)
    rt_w = max((_text_size(t, 11)[0] for t in row_titles if t), default=0.0)
    left = 0.2 + (rt_w + 0.25 if rt_w else 0.0)
    name_h = _text_size("$A^{1}_{j}$", NAME_SIZE)[1]
    shape_h = _text_size("$(h_{1}, m)$ = (1, 2)", SHAPE_SIZE)[1]

    def op_w(it):
        return _text_size(it.shown, OP_SIZE)[0] + 2 * op_pad

    # the common scale: inches per row/column
    s = MAX_UNIT_IN
    for items in rows:
        mats = [it for it in items if isinstance(it, _Mat)]
        fixed = sum(op_w(it) for it in items if isinstance(it, _Op)) + gap * len(mats)
        cols = sum(it.cols for it in mats)
        if cols:
            s = min(s, max(max_width - fixed, 2.0) / cols)
    total_rows = sum(
        max((it.rows for it in items if isinstance(it, _Mat)), default=1) for items in rows
    )
    s = min(s, max_height / max(total_rows, 1))

    def dims(it):
        return max(s * it.cols, MIN_DIM_IN), max(s * it.rows, MIN_DIM_IN)

    def slot(it):
        if isinstance(it, _Op):
            return op_w(it)
        w, _ = dims(it)
        return (
            max(w, _text_size(it.name, NAME_SIZE)[0], _text_size(it.shape_label, SHAPE_SIZE)[0])
            + gap
        )

    def row_widths():
        return [[slot(it) for it in items] for items in rows]

    # labels do not shrink with the scale: shrink s until the widest row fits, or until
    # shrinking no longer helps (the labels alone are wider than max_width)
    for _ in range(4):  # at most halve the scale: matrices must stay legible
        widest = max(sum(sl) for sl in row_widths())
        if widest <= max_width + 0.3:
            break
        before = widest
        s *= 0.85
        if before - max(sum(sl) for sl in row_widths()) < 0.05:
            break
    slots = row_widths()
    same = len({len(r) for r in rows}) == 1 and all(
        len({type(r[k]) for r in rows}) == 1 for k in range(len(rows[0]))
    )
    if align and same and len(rows) > 1:
        col_w = [max(sl[k] for sl in slots) for k in range(len(rows[0]))]
        slots = [col_w for _ in rows]

    # vertical extents of each row, centred on its matrices
    extents = []
    for items in rows:
        mats = [it for it in items if isinstance(it, _Mat)]
        up = max((dims(it)[1] / 2 for it in mats), default=0.2) + pad + name_h
        down = max((dims(it)[1] / 2 for it in mats), default=0.2) + pad + shape_h
        extents.append((up, down))
    title_h = _text_size(title, 13)[1] + 0.3 if title else 0.1
    row_gap = 0.35
    width = left + max(sum(sl) for sl in slots) + 0.2
    height = title_h + sum(u + d for u, d in extents) + row_gap * len(rows) + 0.1

    cv = _Canvas(width, height)
    cv.shared_norm = norm
    if title:
        cv.text(width / 2, height - 0.12, title, size=13, va="top")
    y_top = height - title_h
    for items, sl, (up, down), rt in zip(rows, slots, extents, row_titles):
        yc = y_top - row_gap / 2 - up
        if rt:
            cv.text(0.2, yc, rt, size=11, ha="left", style="italic", color="#333333")
        x = left
        for it, w_slot in zip(items, sl):
            xc = x + w_slot / 2
            if isinstance(it, _Op):
                cv.text(xc, yc, it.shown, size=OP_SIZE, color="#333333")
            else:
                w, h = dims(it)
                cv.matrix(
                    xc - w / 2,
                    yc - h / 2,
                    w,
                    h,
                    it.array,
                    role=it.role,
                    label=it.label,
                    values=values,
                    norm=norm,
                )
                cv.text(
                    xc,
                    yc + h / 2 + pad,
                    it.name,
                    size=NAME_SIZE,
                    va="bottom",
                    color=ROLE_COLORS[it.role],
                )
                cv.text(
                    xc, yc - h / 2 - pad, it.shape_label, size=SHAPE_SIZE, va="top", color="#333333"
                )
            x += w_slot
        y_top -= up + down + row_gap
    fig = cv.finish()
    fig.mlp_scale = s  # inches per row/column, for tests and captions
    return fig


# ----------------------------------------------------------------------------- API
