"""Matrix shape diagrams drawn to scale from real arrays (chapters 1, 5 to 10).

Every matrix is a rectangle whose width is proportional to its number of columns and whose
height is proportional to its number of rows, on one common scale within a figure (so two
matrices with the same number of rows have the same height). Each rectangle carries its
name in mathtext (e.g. ``(A^{0})^T``) and its shape, with the book's symbols and the
numbers, e.g. "(h_0, m) = (64, 32)". By default the values are drawn inside as a heatmap.

Colours follow the role of a matrix, the same in every figure of the book:

* inputs, activations and pre-activations (X, A^l, Z^l, x, a^l): blue;
* parameters (W^l, b^l): orange;
* errors (Δ^l, δ^l): red;
* gradients (∂J/∂W^l, ∂J/∂b^l): green;
* targets (Y, y): purple.

The scale is capped so that the largest row of a figure fits about 10 inches wide; a
dimension of 1 is still drawn at least 0.08 inch thick (the only place where a drawing is
not exactly to scale). All functions return a :class:`matplotlib.figure.Figure` (not
registered with pyplot, so nothing is shown twice in a notebook and nothing needs
closing; ``plt.close(fig)`` is harmless).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle

from ..core.activations import get_hidden_activation
from ..core.backend import to_numpy
from ..core.batched import backward, forward
from ..core.errors import ConfigError, ShapeError

__all__ = [
    "ROLE_COLORS",
    "backward_shapes",
    "column_sums",
    "draw_product",
    "error_matrix",
    "forward_shapes",
    "network_stack",
    "outer_vs_batch",
    "rows_from_columns",
    "shape_table",
    "shape_table_html",
]

# ----------------------------------------------------------------------------- style

ROLE_COLORS = {
    "data": "#1f77b4",  # X, A^l, Z^l, x, a^l
    "param": "#e07b00",  # W^l, b^l
    "error": "#c0282d",  # Δ^l, δ^l
    "grad": "#2a9d3a",  # ∂J/∂W^l, ∂J/∂b^l
    "target": "#7b4fa6",  # Y, y
}
NEG_COLOR = "#6b6b6b"  # negative values: grey; 0: white; positive: the role colour
MIN_DIM_IN = 0.08  # thinnest drawn dimension, inches
MAX_UNIT_IN = 0.28  # largest drawn size of one row/column, inches
MAX_WIDTH_IN = 10.0  # the widest row of matrices fits about this many inches
NAME_SIZE = 13
SHAPE_SIZE = 9.5
OP_SIZE = 17
DPI = 100

OPERATORS = {
    "@": "@",
    "=": "=",
    "+": "+",
    "-": "−",
    "−": "−",
    "⊙": r"$\odot$",
    "≈": r"$\approx$",
    "·": r"$\cdot$",
    "1/m": r"$\frac{1}{m}$",
    "→": r"$\rightarrow$",
    "T": r"$^T$",
}


VALUES_KEY = "cell shading: grey < 0 < colour, white = 0; each matrix scaled to its largest |entry|"


def _cmap(role: str):
    return LinearSegmentedColormap.from_list(
        f"mlp_{role}", [NEG_COLOR, "#ffffff", ROLE_COLORS[role]]
    )


def _light(role: str, alpha: float = 0.25):
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(ROLE_COLORS[role])
    return (1 - alpha + alpha * r, 1 - alpha + alpha * g, 1 - alpha + alpha * b)


def infer_role(label: str) -> str:
    """The colour role of a matrix from its mathtext label (see the module docstring)."""
    s = label.replace("(", "").replace("\\left", "").replace("\\mathbf", "").strip(" {}")
    if "\\partial" in s or s.startswith(("d", "\\nabla")):
        return "grad"
    if "\\Delta" in s or "\\delta" in s:
        return "error"
    if s.startswith(("W", "b")):
        return "param"
    if s.startswith(("Y", "y")):
        return "target"
    return "data"


_RENDERER = None


def _is_math(s: str) -> bool:
    return s.count("$") - s.count(r"\$") >= 2


def _text_size(s: str, size: float) -> tuple[float, float]:
    """(width, height) in inches of a text at font ``size`` (mathtext aware)."""
    global _RENDERER
    if not s:
        return 0.0, 0.0
    if _RENDERER is None:
        from matplotlib.backends.backend_agg import RendererAgg

        _RENDERER = RendererAgg(10, 10, 72)
    w, h, _ = _RENDERER.get_text_width_height_descent(
        s, FontProperties(size=size), ismath=_is_math(s)
    )
    return w / 72.0, h / 72.0


def h_symbol(l: int, L: int | None = None) -> str:
    """The book's symbol for the width of layer l: n for l = 0, C for l = L, else h_l."""
    if l == 0:
        return "n"
    if L is not None and l == L:
        return "C"
    return f"h_{{{l}}}"


def shape_text(shape, sym: str | None = None) -> str:
    """ "$(h_{0}, m)$ = (64, 32)", or just "(64, 32)" without a symbol."""
    nums = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    if sym is None:
        return nums
    return f"${sym}$ = {nums}"


# ----------------------------------------------------------------------------- canvas


class _Canvas:
    """A figure with one axes whose data coordinates are inches (origin bottom-left)."""

    def __init__(self, width: float, height: float, dpi: int = DPI):
        self.W, self.H = width, height
        self.fig = Figure(figsize=(width, height), dpi=dpi, facecolor="white")
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_axis_off()
        self.ax.set_facecolor("white")

    def finish(self) -> Figure:
        if getattr(self, "drew_values", False):
            self.fig.text(
                0.005, 0.005, VALUES_KEY, fontsize=7, color="0.35", ha="left", va="bottom"
            )
        self.ax.set_xlim(0, self.W)
        self.ax.set_ylim(0, self.H)
        self.ax.set_aspect("equal")
        return self.fig

    def text(self, x, y, s, size=SHAPE_SIZE, ha="center", va="center", **kw):
        return self.ax.text(x, y, s, fontsize=size, ha=ha, va=va, **kw)

    def matrix(
        self,
        x0,
        y0,
        w,
        h,
        array=None,
        *,
        role="data",
        label="",
        values=True,
        norm=None,
        cmap=None,
        lw=1.6,
        zorder=2,
    ):
        """A rectangle (x0, y0, w, h) in inches, filled with the values as a heatmap."""
        if values and array is not None and array.size:
            a = np.asarray(array, dtype=np.float64)
            if a.ndim == 1:
                a = a.reshape(1, -1)
            if norm is None:
                v = float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 1.0
                norm = Normalize(-(v or 1.0), v or 1.0)
            self.drew_values = True
            self.ax.imshow(
                a,
                extent=(x0, x0 + w, y0, y0 + h),
                origin="upper",
                cmap=cmap or _cmap(role),
                norm=norm,
                interpolation="nearest",
                aspect="auto",
                zorder=1,
            )
            face = "none"
        else:
            face = _light(role)
        rect = Rectangle(
            (x0, y0),
            w,
            h,
            facecolor=face,
            edgecolor=ROLE_COLORS[role],
            lw=lw,
            zorder=zorder,
            label=f"matrix:{label}",
        )
        self.ax.add_patch(rect)
        return rect


# ----------------------------------------------------------------------------- layout


@dataclass
class _Mat:
    label: str
    array: np.ndarray
    sym: str | None = None
    role: str | None = None

    def __post_init__(self):
        a = np.asarray(to_numpy(self.array))
        if a.ndim == 0:
            a = a.reshape(1, 1)
        elif a.ndim == 1:  # a bias b^l (h_l,) is drawn as the row it broadcasts as
            a = a.reshape(1, -1)
        elif a.ndim > 2:
            raise ShapeError(
                f"{self.label}: only 1-D or 2-D arrays can be drawn, got shape {a.shape}"
            )
        self.shape = tuple(np.shape(to_numpy(self.array))) or (1, 1)
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
) -> Figure:
    """Draw rows of matrices and operators on one common scale; returns the Figure."""
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


def draw_product(terms, *, values=True, title=None, symbols=None, row_title=None) -> Figure:
    """A row of matrices and operators drawn to scale, e.g. (A^0)^T @ Δ^1 = ∂J/∂W^1.

    ``terms``: items ``(label, array)`` (mathtext without ``$``; optionally a third entry,
    the role 'data', 'param', 'error', 'grad' or 'target') or operator strings ("@", "=",
    "+", "⊙", "≈", "·", "1/m", or any text). ``symbols``: {term index: "(h_0, m)"}, the
    symbolic shape shown before the numbers. Matrices are vertically centred.
    """
    symbols = symbols or {}
    items = [_as_item(t, symbols.get(k)) for k, t in enumerate(terms)]
    return _layout(
        [items], values=values, title=title, row_titles=[row_title] if row_title else None
    )


def outer_vs_batch(a_prev, delta, A_prev, Delta, l=1, *, values=True, title=None) -> Figure:
    """Top: the one-example outer product a^{l-1} (δ^l)^T, (h_{l-1},1)(1,h_l) → (h_{l-1},h_l);
    bottom: the batch product (A^{l-1})^T Δ^l, (h_{l-1},m)(m,h_l) → (h_{l-1},h_l).

    Both rows on the same scale (eqs. ``eq-weight-grad-single``, ``eq-weight-grad-batch``).
    ``a_prev`` (h_{l-1}, 1) and ``delta`` (h_l, 1) may be given flat.
    """
    a = np.asarray(to_numpy(a_prev)).reshape(-1, 1)
    d = np.asarray(to_numpy(delta)).reshape(-1, 1)
    A, D = np.asarray(to_numpy(A_prev)), np.asarray(to_numpy(Delta))
    hp, hl = h_symbol(l - 1), h_symbol(l)
    top = [
        _Mat(f"a^{{{l - 1}}}", a, f"({hp}, 1)", "data"),
        _Op("@"),
        _Mat(f"(\\delta^{{{l}}})^T", d.T, f"(1, {hl})", "error"),
        _Op("="),
        _Mat(f"a^{{{l - 1}}}(\\delta^{{{l}}})^T", a @ d.T, f"({hp}, {hl})", "grad"),
    ]
    bottom = [
        _Mat(f"(A^{{{l - 1}}})^T", A.T, f"({hp}, m)", "data"),
        _Op("@"),
        _Mat(f"\\Delta^{{{l}}}", D, f"(m, {hl})", "error"),
        _Op("="),
        _Mat(f"(A^{{{l - 1}}})^T\\Delta^{{{l}}}", A.T @ D, f"({hp}, {hl})", "grad"),
    ]
    return _layout(
        [top, bottom],
        values=values,
        title=title,
        row_titles=["one example", f"m = {A.shape[0]} examples"],
    )


def error_matrix(Delta, *, class_names=None, highlight_row=None, title=None) -> Figure:
    """The (m, C) output error Δ^L = A^L − Y as a heatmap centred at 0.

    Rows are the examples ("example 1..m"), columns the classes (or units). Row
    ``highlight_row`` (0-based) is outlined and drawn again beside the matrix as the
    column δ^{L(i)} (C, 1) it was in the one-example equations.
    """
    D = np.asarray(to_numpy(Delta), dtype=np.float64)
    if D.ndim != 2:
        raise ShapeError(f"Delta must be 2-D (m, C); got shape {D.shape}")
    m, C = D.shape
    names = [str(c) for c in (class_names if class_names is not None else range(C))]
    s = min(0.32, 6.0 / m, 5.0 / C)
    v = float(np.abs(D).max()) or 1.0
    norm, cmap = Normalize(-v, v), "RdBu_r"
    row_lab = [f"example {i + 1}" for i in range(m)]
    lab_w = max(_text_size(t, 8)[0] for t in row_lab) + 0.15
    stride = max(1, math.ceil(0.16 / s))
    left, top_pad, bottom = 0.25 + lab_w, 1.0, 0.75
    w, h = C * s, m * s
    extra = 0.0
    if highlight_row is not None:
        extra = 0.9 + max(s, MIN_DIM_IN) + 1.6
    width = left + w + extra + 0.9
    height = top_pad + h + bottom
    cv = _Canvas(width, height)
    x0, y0 = left, bottom
    cv.matrix(x0, y0, w, h, D, role="error", label="\\Delta^{L}", norm=norm, cmap=cmap)
    cv.text(
        x0 + w / 2,
        y0 + h + 0.42,
        r"$\Delta^{L} = A^{L} - Y$",
        size=NAME_SIZE,
        va="bottom",
        color=ROLE_COLORS["error"],
    )
    cv.text(x0 + w / 2, y0 - 0.08, shape_text((m, C), "(m, C)"), va="top")
    for i in range(0, m, stride):
        cv.text(x0 - 0.08, y0 + h - (i + 0.5) * s, row_lab[i], size=8, ha="right")
    cstride = max(1, math.ceil(max(_text_size(n, 8)[0] for n in names) / s / 0.9))
    for j in range(0, C, cstride):
        cv.text(x0 + (j + 0.5) * s, y0 + h + 0.06, names[j], size=8, va="bottom")
    if highlight_row is not None:
        i = int(highlight_row)
        if not 0 <= i < m:
            raise ConfigError(f"highlight_row must be in 0..{m - 1}, got {highlight_row}")
        yr = y0 + h - (i + 1) * s
        cv.ax.add_patch(
            Rectangle(
                (x0 - 0.03, yr),
                w + 0.06,
                s,
                fill=False,
                edgecolor="black",
                lw=2.4,
                zorder=4,
                label="highlight",
            )
        )
        xa = x0 + w + 0.15
        xc = xa + 0.85
        cw, ch = max(s, MIN_DIM_IN), C * s
        yc0 = y0 + h / 2 - ch / 2
        cv.ax.annotate(
            "",
            xy=(xc - 0.1, yc0 + ch / 2),
            xytext=(xa, yr + s / 2),
            arrowprops=dict(
                arrowstyle="-|>", color="black", lw=1.2, connectionstyle="arc3,rad=-0.2"
            ),
        )
        cv.text(xa + 0.02, yr + s / 2 + 0.22, "transpose", size=8, ha="left")
        cv.matrix(
            xc,
            yc0,
            cw,
            ch,
            D[i].reshape(-1, 1),
            role="error",
            label=f"\\delta^{{L({i + 1})}}",
            norm=norm,
            cmap=cmap,
        )
        cv.text(
            xc + cw / 2,
            yc0 + ch + 0.08,
            f"$\\delta^{{L({i + 1})}}$",
            size=NAME_SIZE,
            va="bottom",
            color=ROLE_COLORS["error"],
        )
        cv.text(xc + cw / 2, yc0 - 0.08, "$(C, 1)$", va="top")
        cv.text(
            xc + cw + 0.12,
            yc0 + ch / 2,
            f"the error for\nexample {i + 1}:\nrow {i + 1} of " + r"$\Delta^{L}$"
            "\nwas the column\nfor one example",
            size=8.5,
            ha="left",
        )
    cax = cv.fig.add_axes(((width - 0.7) / width, y0 / height, 0.15 / width, min(h, 3.0) / height))
    from matplotlib.cm import ScalarMappable

    cv.fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    cax.tick_params(labelsize=7)
    if title:
        cv.text(width / 2, height - 0.1, title, size=12, va="top")
    return cv.finish()


def column_sums(Delta, *, l=None, values=True, title=None) -> Figure:
    """The (m, h_l) error matrix Δ^l, an arrow down each column into the row of h_l
    cells ∂J/∂b^l_j = (1/m) Σ_i Δ^l_{i,j}: fix the unit j, run over the examples i
    (eq. ``eq-bias-grad-batch``)."""
    D = np.asarray(to_numpy(Delta), dtype=np.float64)
    if D.ndim != 2:
        raise ShapeError(f"Delta must be 2-D (m, h_l); got shape {D.shape}")
    m, h = D.shape
    db = D.sum(axis=0) / m
    sup = "" if l is None else f"^{{{l}}}"
    hl = "h_{l}" if l is None else h_symbol(l)
    s = min(0.4, 6.0 / h, 4.5 / m)
    w, hm = max(h * s, MIN_DIM_IN), max(m * s, MIN_DIM_IN)
    cell = max(s, MIN_DIM_IN)
    gap = 0.9
    left, bottom = 1.3, 0.75
    side = 2.6
    width = left + w + side
    height = bottom + cell + gap + hm + 0.85
    cv = _Canvas(width, height)
    yb = bottom
    ym = yb + cell + gap
    v = float(np.abs(D).max()) or 1.0
    cv.matrix(
        left,
        ym,
        w,
        hm,
        D,
        role="error",
        label=f"\\Delta{sup}",
        values=values,
        norm=Normalize(-v, v),
    )
    cv.text(
        left + w / 2,
        ym + hm + 0.1,
        f"$\\Delta{sup}$   " + shape_text((m, h), f"(m, {hl})"),
        size=NAME_SIZE - 1,
        va="bottom",
        color=ROLE_COLORS["error"],
    )
    vb = float(np.abs(db).max()) or 1.0
    cv.matrix(
        left,
        yb,
        w,
        cell,
        db,
        role="grad",
        label=f"\\partial J/\\partial b{sup}",
        values=values,
        norm=Normalize(-vb, vb),
    )
    cv.text(
        left + w / 2,
        yb - 0.08,
        f"$\\partial J/\\partial b{sup} = \\frac{{1}}{{m}}\\sum_i \\Delta{sup}_{{i,:}}$"
        "   " + shape_text((h,), f"({hl},)"),
        size=SHAPE_SIZE + 1,
        va="top",
        color=ROLE_COLORS["grad"],
    )
    stride = max(1, math.ceil(0.14 / s))
    for j in range(0, h, stride):
        xc = left + (j + 0.5) * s
        cv.ax.annotate(
            "",
            xy=(xc, yb + cell + 0.03),
            xytext=(xc, ym + hm - 0.02),
            arrowprops=dict(
                arrowstyle="-|>", color="#222222", lw=1.0, alpha=0.75, shrinkA=0, shrinkB=0
            ),
            zorder=5,
        )
        if s >= 0.34 and h <= 12:
            cv.text(
                xc,
                yb + cell / 2,
                f"{db[j]:+.2f}",
                size=6.5,
                zorder=6,
                color="white" if values and abs(db[j]) > 0.6 * vb else "black",
            )
    cv.ax.annotate(
        "",
        xy=(left - 0.15, ym),
        xytext=(left - 0.15, ym + hm),
        arrowprops=dict(arrowstyle="-|>", color="#555555", lw=1.0),
    )
    cv.text(left - 0.25, ym + hm / 2, "examples $i$", size=9, ha="right")
    cv.text(
        left + w + 0.2,
        ym + hm / 2,
        "fix the unit $j$ (a column),\nrun over the examples $i$\n(down the rows):\n"
        "np.sum(delta, axis=0) / m",
        size=9,
        ha="left",
    )
    cv.text(
        left + w + 0.2,
        yb + cell / 2,
        f"one number per unit,\n{h} in all",
        size=9,
        ha="left",
        color=ROLE_COLORS["grad"],
    )
    if title:
        cv.text(width / 2, height - 0.08, title, size=12, va="top")
    return cv.finish()


HIGHLIGHTS = ("#d4a000", "#17becf", "#e377c2", "#8c564b", "#bcbd22")


def rows_from_columns(X, k=3, *, values=True, title=None) -> Figure:
    """Left: k examples as column vectors x^{(1)}, ..., x^{(k)}, each (n, 1); right: X
    (m, n) with those examples as its first k rows, outlined: every column becomes a row."""
    X = np.asarray(to_numpy(X), dtype=np.float64)
    if X.ndim != 2:
        raise ShapeError(f"X must be 2-D (m, n); got shape {X.shape}")
    m, n = X.shape
    k = max(1, min(int(k), m))
    s = min(MAX_UNIT_IN, 5.0 / max(n, m), 7.0 / (n + k))
    cw, ch = max(s, MIN_DIM_IN), max(n * s, MIN_DIM_IN)
    xw, xh = max(n * s, MIN_DIM_IN), max(m * s, MIN_DIM_IN)
    col_slot = (
        max(cw, _text_size("$(n, 1)$", SHAPE_SIZE)[0], _text_size(f"= ({n}, 1)", SHAPE_SIZE)[0])
        + 0.25
    )
    arrow_w = 1.9
    left, bottom, top = 0.3, 0.8, 0.7
    row_lab_w = _text_size(r"$(x^{(10)})^T$", 11)[0] + 0.3
    width = left + k * col_slot + arrow_w + xw + row_lab_w + 0.2
    height = bottom + max(ch, xh) + top
    cv = _Canvas(width, height)
    yc = bottom + max(ch, xh) / 2
    vmax = float(np.abs(X).max()) or 1.0
    norm = Normalize(-vmax, vmax)
    for i in range(k):
        xc = left + (i + 0.5) * col_slot
        colour = HIGHLIGHTS[i % len(HIGHLIGHTS)]
        cv.matrix(
            xc - cw / 2,
            yc - ch / 2,
            cw,
            ch,
            X[i].reshape(-1, 1),
            role="data",
            label=f"x^{{({i + 1})}}",
            values=values,
            norm=norm,
        )
        cv.ax.add_patch(
            Rectangle(
                (xc - cw / 2 - 0.03, yc - ch / 2 - 0.03),
                cw + 0.06,
                ch + 0.06,
                fill=False,
                edgecolor=colour,
                lw=2.2,
                zorder=4,
                label="highlight",
            )
        )
        cv.text(
            xc,
            yc + ch / 2 + 0.08,
            f"$x^{{({i + 1})}}$",
            size=NAME_SIZE,
            va="bottom",
            color=ROLE_COLORS["data"],
        )
        cv.text(xc, yc - ch / 2 - 0.08, f"$(n, 1)$\n= ({n}, 1)", size=SHAPE_SIZE, va="top")
    xa = left + k * col_slot
    cv.ax.annotate(
        "",
        xy=(xa + arrow_w - 0.15, yc),
        xytext=(xa + 0.1, yc),
        arrowprops=dict(arrowstyle="-|>", color="#333333", lw=1.6),
    )
    cv.text(xa + arrow_w / 2, yc + 0.12, "every column\nbecomes a row", size=9.5, va="bottom")
    cv.text(xa + arrow_w / 2, yc - 0.12, r"row $i$ of $X$ is $(x^{(i)})^T$", size=9, va="top")
    x0 = xa + arrow_w
    y0 = yc - xh / 2
    cv.matrix(x0, y0, xw, xh, X, role="data", label="X", values=values, norm=norm)
    cv.text(
        x0 + xw / 2, y0 + xh + 0.08, "$X$", size=NAME_SIZE, va="bottom", color=ROLE_COLORS["data"]
    )
    cv.text(x0 + xw / 2, y0 - 0.08, shape_text((m, n), "(m, n)"), size=SHAPE_SIZE, va="top")
    for i in range(k):
        colour = HIGHLIGHTS[i % len(HIGHLIGHTS)]
        yr = y0 + xh - (i + 1) * s
        cv.ax.add_patch(
            Rectangle(
                (x0 - 0.03, yr),
                xw + 0.06,
                s,
                fill=False,
                edgecolor=colour,
                lw=2.2,
                zorder=4,
                label="highlight",
            )
        )
        if s >= 0.12 or i == 0:
            cv.text(
                x0 + xw + 0.1,
                yr + s / 2,
                f"$(x^{{({i + 1})}})^T$",
                size=10,
                ha="left",
                color=colour,
            )
    if title:
        cv.text(width / 2, height - 0.08, title, size=12, va="top")
    return cv.finish()


def network_stack(sizes, m=None, *, title=None) -> Figure:
    """The network as its weight matrices W^1..W^L, each (h_{l-1}, h_l), to scale; with
    ``m`` also the activations A^0 = X, ..., A^L (m, h_l) between them (the chain of
    shapes of the forward pass, chapter 1)."""
    sizes = tuple(int(h) for h in sizes)
    L = len(sizes) - 1
    items = []
    for l in range(1, L + 1):
        if m is not None:
            items += [
                _Mat(
                    f"A^{{{l - 1}}}",
                    np.zeros((m, sizes[l - 1])),
                    f"(m, {h_symbol(l - 1, L)})",
                    "data",
                ),
                _Op("@"),
            ]
        items.append(
            _Mat(
                f"W^{{{l}}}",
                np.zeros((sizes[l - 1], sizes[l])),
                f"({h_symbol(l - 1, L)}, {h_symbol(l, L)})",
                "param",
            )
        )
        if m is not None:
            items.append(_Op("→"))
    if m is not None:
        items.append(_Mat(f"A^{{{L}}}", np.zeros((m, sizes[L])), f"(m, {h_symbol(L, L)})", "data"))
    if title is None:
        title = "h = (" + ", ".join(map(str, sizes)) + ")" + ("" if m is None else f", m = {m}")
    return _layout([items], values=False, title=title)


def forward_shapes(
    params, X, activation="relu", loss="cross_entropy", *, values=True, title=None
) -> Figure:
    """One row per layer: Z^l = A^{l-1} W^l + b^l with the real arrays of a forward pass
    (``mlp_core.batched.forward``), all on one scale (eq. ``eq-forward-batch``)."""

    cache = forward(X, params, activation, loss)
    L = params.L
    rows, titles = [], []
    for l in range(1, L + 1):
        hp, hl = h_symbol(l - 1, L), h_symbol(l, L)
        rows.append(
            [
                _Mat(f"A^{{{l - 1}}}", cache.A[l - 1], f"(m, {hp})", "data"),
                _Op("@"),
                _Mat(f"W^{{{l}}}", params.W[l], f"({hp}, {hl})", "param"),
                _Op("+"),
                _Mat(f"b^{{{l}}}", params.b[l], f"({hl},)", "param"),
                _Op("="),
                _Mat(f"Z^{{{l}}}", cache.Z[l], f"(m, {hl})", "data"),
            ]
        )
        titles.append(f"layer {l}")
    return _layout(
        rows, values=values, title=title or "forward pass, m examples", row_titles=titles
    )


def backward_shapes(
    params, X, Y, activation="relu", loss="cross_entropy", *, values=True, errors=True, title=None
) -> Figure:
    """The backward pass of a real network, layer L down to 1, on one scale: for each
    layer the error Δ^l (if ``errors``) and the product (1/m) (A^{l-1})^T Δ^l = ∂J/∂W^l
    (``mlp_core.batched.forward``/``backward``)."""

    cache = forward(X, params, activation, loss)
    dW, _, delta = backward(Y, params, cache, activation)
    L = params.L
    rows, titles = [], []
    for l in range(L, 0, -1):
        hp, hl = h_symbol(l - 1, L), h_symbol(l, L)
        if errors:
            if l == L:
                rows.append(
                    [
                        _Mat(f"A^{{{L}}}", cache.A[L], "(m, C)", "data"),
                        _Op("−"),
                        _Mat("Y", Y, "(m, C)", "target"),
                        _Op("="),
                        _Mat(f"\\Delta^{{{L}}}", delta[L], "(m, C)", "error"),
                    ]
                )
            else:
                hn = h_symbol(l + 1, L)
                rows.append(
                    [
                        _Mat(f"\\Delta^{{{l + 1}}}", delta[l + 1], f"(m, {hn})", "error"),
                        _Op("@"),
                        _Mat(f"(W^{{{l + 1}}})^T", params.W[l + 1].T, f"({hn}, {hl})", "param"),
                        _Op("⊙"),
                        _Mat(
                            f"\\sigma'(Z^{{{l}}})",
                            _sigma_prime(activation, cache.Z[l]),
                            f"(m, {hl})",
                            "data",
                        ),
                        _Op("="),
                        _Mat(f"\\Delta^{{{l}}}", delta[l], f"(m, {hl})", "error"),
                    ]
                )
            titles.append(f"error, layer {l}")
        rows.append(
            [
                _Op("1/m"),
                _Mat(f"(A^{{{l - 1}}})^T", cache.A[l - 1].T, f"({hp}, m)", "data"),
                _Op("@"),
                _Mat(f"\\Delta^{{{l}}}", delta[l], f"(m, {hl})", "error"),
                _Op("="),
                _Mat(f"\\partial J/\\partial W^{{{l}}}", dW[l], f"({hp}, {hl})", "grad"),
            ]
        )
        titles.append(f"gradient, layer {l}")
    return _layout(
        rows,
        values=values,
        title=title or "backward pass, m examples",
        row_titles=titles,
        align=False,
    )


def _sigma_prime(activation, Z):

    return get_hidden_activation(activation).sigma_prime(Z)


# ----------------------------------------------------------------------------- tables


def shape_table(sizes, m) -> list[dict]:
    """Per layer l = 1..L, the shapes of everything backprop touches, one example and m.

    Keys (tuples of ints): ``W`` (h_{l-1}, h_l); one example, columns: ``b`` (h_l, 1),
    ``a_prev`` (h_{l-1}, 1), ``z`` and ``a`` (h_l, 1), ``delta`` (h_l, 1), ``dW_one``
    (h_{l-1}, h_l) = a^{l-1}(δ^l)^T, ``db_one`` (h_l, 1) = δ^l; m examples, rows:
    ``b_batch`` (h_l,) broadcast over rows, ``A_prev`` (m, h_{l-1}), ``Z`` and ``A``
    (m, h_l), ``Delta`` (m, h_l), ``dW`` (h_{l-1}, h_l), ``db`` (h_l,). Plus ``l``.
    """
    sizes = tuple(int(h) for h in sizes)
    m = int(m)
    rows = []
    for l in range(1, len(sizes)):
        hp, hl = sizes[l - 1], sizes[l]
        rows.append(
            {
                "l": l,
                "W": (hp, hl),
                "a_prev": (hp, 1),
                "b": (hl, 1),
                "z": (hl, 1),
                "a": (hl, 1),
                "delta": (hl, 1),
                "dW_one": (hp, hl),
                "db_one": (hl, 1),
                "A_prev": (m, hp),
                "b_batch": (hl,),
                "Z": (m, hl),
                "A": (m, hl),
                "Delta": (m, hl),
                "dW": (hp, hl),
                "db": (hl,),
            }
        )
    return rows


def _fmt(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def shape_table_html(sizes, m) -> str:
    """:func:`shape_table` as an HTML table: one example (columns) beside m examples (rows)."""
    sizes = tuple(int(h) for h in sizes)
    L = len(sizes) - 1
    tab = shape_table(sizes, m)

    def hs(l):
        return {"n": "n", "C": "C"}.get(h_symbol(l, L), f"h<sub>{l}</sub>")

    th = 'style="padding:2px 6px;border-bottom:1px solid #888;white-space:nowrap;"'
    td = 'style="padding:2px 6px;text-align:center;font-family:monospace;white-space:nowrap;"'
    one = (
        "z<sup>l</sup>, a<sup>l</sup>",
        "δ<sup>l</sup>",
        "∂L/∂W<sup>l</sup>",
        "∂L/∂b<sup>l</sup>",
    )
    bat = (
        "Z<sup>l</sup>, A<sup>l</sup>",
        "Δ<sup>l</sup>",
        "∂J/∂W<sup>l</sup>",
        "∂J/∂b<sup>l</sup>",
    )
    # a narrow page scrolls the table sideways rather than wrapping a shape over lines
    out = [
        '<div class="mlp-shape-table-wrap" style="overflow-x:auto;max-width:100%;">',
        '<table class="mlp-shape-table" style="border-collapse:collapse;font-size:85%;">',
        f"<caption>Shapes for h = {_fmt(sizes)}, m = {int(m)}</caption>",
        "<thead><tr>"
        f'<th {th} rowspan="2">layer l</th><th {th} rowspan="2">W<sup>l</sup></th>'
        f'<th {th} colspan="5">one example (columns)</th>'
        f'<th {th} colspan="5">m examples (rows)</th></tr><tr>'
        f"<th {th}>b<sup>l</sup></th>"
        + "".join(f"<th {th}>{c}</th>" for c in one)
        + f"<th {th}>b<sup>l</sup></th>"
        + "".join(f"<th {th}>{c}</th>" for c in bat)
        + "</tr></thead><tbody>",
        f"<tr><td {td}>0 (input)</td><td {td}>–</td>"
        f'<td {td} colspan="5">x: (n, 1) = ({sizes[0]}, 1)</td>'
        f'<td {td} colspan="5">X = A<sup>0</sup>: (m, n) = ({int(m)}, {sizes[0]})</td>'
        "</tr>",
    ]
    for r in tab:
        l = r["l"]
        cells = [
            f"{l}",
            f"({hs(l - 1)}, {hs(l)})<br>= {_fmt(r['W'])}",
            _fmt(r["b"]),
            _fmt(r["z"]),
            _fmt(r["delta"]),
            _fmt(r["dW_one"]),
            _fmt(r["db_one"]),
            f"{_fmt(r['b_batch'])} broadcast",
            _fmt(r["Z"]),
            _fmt(r["Delta"]),
            _fmt(r["dW"]),
            _fmt(r["db"]),
        ]
        out.append("<tr>" + "".join(f"<td {td}>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)
