"""The book's figure functions: each draws one idea from real arrays (chapters 1, 5 to 10)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ...core.activations import get_hidden_activation
from ...core.backend import to_numpy
from ...core.batched import backward, bias_gradient, forward
from ...core.errors import ConfigError, ShapeError
from ...core.validate import check_whole
from ._canvas import _Canvas, signed_norm
from ._layout import _as_item, _layout, _Mat, _Op
from ._style import (
    MAX_UNIT_IN,
    MIN_DIM_IN,
    NAME_SIZE,
    ROLE_COLORS,
    SHAPE_SIZE,
    SMALL_SIZE,
    _text_size,
    h_symbol,
    shape_text,
    signed_cmap,
)


def draw_product(
    terms, *, values=True, title=None, symbols=None, row_title=None, highlight=None, norm=None
) -> Figure:
    """A row of matrices and operators drawn to scale, e.g. (A^0)^T @ Δ^1 = ∂J/∂W^1.

    ``terms``: items ``(label, array)`` (mathtext without ``$``; optionally a third entry,
    the role 'data', 'param', 'error', 'grad' or 'target') or operator strings ("@", "=",
    "+", "⊙", "≈", "·", "1/m", or any text). ``symbols``: {term index: "(h_0, m)"}, the
    symbolic shape shown before the numbers. Matrices are vertically centred.
    ``highlight``: {term index: ("row", i) or ("col", i)} outlines row or column i (0-based)
    of those matrices, e.g. the example that another figure draws as a column.
    ``norm``: one colour scale for every matrix of the figure (:func:`signed_norm` of all
    the arrays it must hold; the key then carries its numbers), e.g. a matrix and its
    blocks, or the blocks in several figures, so that a row keeps its colour wherever it
    is drawn; None: each matrix on its own scale. A norm that some entry exceeds is refused.
    """
    symbols = symbols or {}
    items = [_as_item(t, symbols.get(k)) for k, t in enumerate(terms)]
    fig = _layout(
        [items],
        values=values,
        title=title,
        row_titles=[row_title] if row_title else None,
        norm=norm,
    )
    if highlight:
        rects = [p for p in fig.axes[0].patches if p.get_label().startswith("matrix:")]
        by_term = dict(zip([k for k, it in enumerate(items) if isinstance(it, _Mat)], rects))
        for k, (kind, i) in highlight.items():
            if k not in by_term or kind not in ("row", "col"):
                raise ConfigError(
                    f"highlight: {k!r} must be the index of a matrix term and the value "
                    f"('row', i) or ('col', i); got {(kind, i)!r}"
                )
            it, r = items[k], by_term[k]
            n = it.rows if kind == "row" else it.cols
            if not 0 <= int(i) < n:
                raise ConfigError(f"highlight: {kind} {i} of term {k} must be in 0..{n - 1}")
            _outline(fig.axes[0], r, kind, int(i), n)
    return fig


def _outline(ax, rect, kind, i, n):
    """A black outline around row or column i of n of a drawn matrix."""
    x, y, w, h = rect.get_x(), rect.get_y(), rect.get_width(), rect.get_height()
    if kind == "row":
        box = (x - 0.03, y + h - (i + 1) * h / n), w + 0.06, h / n
    else:
        box = (x + i * w / n, y - 0.03), w / n, h + 0.06
    ax.add_patch(
        Rectangle(*box, fill=False, edgecolor="black", lw=2.2, zorder=4, label="highlight")
    )


def outer_vs_batch(
    a_prev, delta, A_prev, Delta, l=1, *, L=None, values=True, title=None, highlight=0
) -> Figure:
    """Top: the one-example outer product a^{l-1} (δ^l)^T, (h_{l-1},1)(1,h_l) → (h_{l-1},h_l);
    bottom: the batch product (A^{l-1})^T Δ^l, (h_{l-1},m)(m,h_l) → (h_{l-1},h_l).

    Both rows on the same scale (eqs. ``eq-weight-grad-single``, ``eq-weight-grad-batch``).
    ``a_prev`` (h_{l-1}, 1) and ``delta`` (h_l, 1) may be given flat. ``L``: the number of
    layers, so that the output width is labelled C when l = L (h_l otherwise).
    ``highlight``: the row (0-based) of the batch that the top row draws; its column of
    (A^{l-1})^T and its row of Δ^l are outlined (None: no outline).
    """
    a = np.asarray(to_numpy(a_prev)).reshape(-1, 1)
    d = np.asarray(to_numpy(delta)).reshape(-1, 1)
    A, D = np.asarray(to_numpy(A_prev)), np.asarray(to_numpy(Delta))
    hp, hl = h_symbol(l - 1, L), h_symbol(l, L)
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
    fig = _layout(
        [top, bottom],
        values=values,
        title=title,
        row_titles=["one example", f"m = {A.shape[0]} examples"],
    )
    if highlight is not None:
        _outline_example(fig, int(highlight), A.shape[0])
    return fig


def _outline_example(fig, i, m):
    """Outline column i of (A^{l-1})^T and row i of Δ^l: the example the top row draws."""
    if not 0 <= i < m:
        raise ConfigError(f"highlight must be in 0..{m - 1}, got {i}")
    rects = [p for p in fig.axes[0].patches if p.get_label().startswith("matrix:")]
    _outline(fig.axes[0], rects[3], "col", i, m)
    _outline(fig.axes[0], rects[4], "row", i, m)


def error_matrix(Delta, *, class_names=None, highlight_row=None, title=None) -> Figure:
    """The (m, C) output error Δ^L = A^L − Y as a heatmap centred at 0, with the numbers
    of its one scale in the key (entries are compared across rows).

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
    norm, cmap = signed_norm(D), signed_cmap()
    row_lab = [f"example {i + 1}" for i in range(m)]
    lab_w = max(_text_size(t, SMALL_SIZE)[0] for t in row_lab) + 0.15
    stride = max(1, math.ceil(0.16 / s))
    left, top_pad, bottom = 0.25 + lab_w, 1.0, 0.75
    w, h = C * s, m * s
    extra = 0.0
    if highlight_row is not None:
        extra = 0.9 + max(s, MIN_DIM_IN) + 1.6
    width = left + w + extra + 0.3
    height = top_pad + h + bottom
    cv = _Canvas(width, height)
    cv.shared_norm = norm  # Δ^L and its row δ^{L(i)} on one scale, the key's bar
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
        cv.text(x0 - 0.08, y0 + h - (i + 0.5) * s, row_lab[i], size=SMALL_SIZE, ha="right")
    cstride = max(1, math.ceil(max(_text_size(n, SMALL_SIZE)[0] for n in names) / s / 0.9))
    for j in range(0, C, cstride):
        cv.text(x0 + (j + 0.5) * s, y0 + h + 0.06, names[j], size=SMALL_SIZE, va="bottom")
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
        cv.text(xa + 0.02, yr + s / 2 + 0.22, "transpose", size=SMALL_SIZE, ha="left")
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
            size=SMALL_SIZE,
            ha="left",
        )
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
    db = bias_gradient(D)
    sup = "" if l is None else f"^{{{l}}}"
    hl = "h_{l}" if l is None else h_symbol(l)
    s = min(0.4, 6.0 / h, 4.5 / m)
    w, hm = max(h * s, MIN_DIM_IN), max(m * s, MIN_DIM_IN)
    cell = max(s, MIN_DIM_IN)
    gap = 0.9
    numbers = s >= 0.34 and h <= 12  # each ∂J/∂b_j printed, in two staggered lines
    left, bottom = 1.3, 1.15 if numbers else 0.75
    side = 2.6
    width = left + w + side
    height = bottom + cell + gap + hm + 0.85
    cv = _Canvas(width, height)
    yb = bottom
    ym = yb + cell + gap
    cv.matrix(
        left,
        ym,
        w,
        hm,
        D,
        role="error",
        label=f"\\Delta{sup}",
        values=values,
        norm=signed_norm(D),
        glyphs=0.22,  # beside the arrow that runs down the middle of each column
    )
    cv.text(
        left + w / 2,
        ym + hm + 0.1,
        f"$\\Delta{sup}$   " + shape_text((m, h), f"(m, {hl})"),
        size=NAME_SIZE - 1,
        va="bottom",
        color=ROLE_COLORS["error"],
    )
    cv.matrix(
        left,
        yb,
        w,
        cell,
        db,
        role="grad",
        label=f"\\partial J/\\partial b{sup}",
        values=values,
        norm=signed_norm(db),
    )
    cv.text(
        left + w / 2,
        yb - (0.5 if numbers else 0.08),
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
        if numbers:
            cv.text(
                xc,
                yb - 0.06 - 0.2 * (j % 2),
                f"{db[j]:+.3f}".replace("-", "−"),
                size=SMALL_SIZE,
                va="top",
                color=ROLE_COLORS["grad"],
                gid="value",
            )
    cv.ax.annotate(
        "",
        xy=(left - 0.15, ym),
        xytext=(left - 0.15, ym + hm),
        arrowprops=dict(arrowstyle="-|>", color="#555555", lw=1.0),
    )
    cv.text(left - 0.25, ym + hm / 2, "examples $i$", size=SMALL_SIZE, ha="right")
    cv.text(
        left + w + 0.2,
        ym + hm / 2,
        "fix the unit $j$ (a column),\nrun over the examples $i$\n(down the rows):\n"
        "np.sum(delta, axis=0) / m",
        size=SMALL_SIZE,
        ha="left",
    )
    cv.text(
        left + w + 0.2,
        yb + cell / 2,
        f"one number per unit,\n{h} in all",
        size=SMALL_SIZE,
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
    norm = signed_norm(X)
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
    cv.text(
        xa + arrow_w / 2, yc + 0.12, "every column\nbecomes a row", size=SMALL_SIZE, va="bottom"
    )
    cv.text(
        xa + arrow_w / 2, yc - 0.12, r"row $i$ of $X$ is $(x^{(i)})^T$", size=SMALL_SIZE, va="top"
    )
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
    shapes of the forward pass, chapter 1). Only shapes are drawn: nothing of the
    matrices' size is allocated, so any widths can be drawn."""
    sizes = tuple(
        check_whole(h, "each layer width h_l", example="e.g. (64, 32, 10)") for h in sizes
    )
    if len(sizes) < 2:
        raise ConfigError(f"sizes must give at least two widths (n, ..., C), got {sizes}")
    if m is not None:
        m = check_whole(m, "m, the number of examples")
    L = len(sizes) - 1
    items = []
    for l in range(1, L + 1):
        hp, hl = h_symbol(l - 1, L), h_symbol(l, L)
        if m is not None:
            items += [
                _Mat(f"A^{{{l - 1}}}", None, f"(m, {hp})", "data", shape=(m, sizes[l - 1])),
                _Op("@"),
            ]
        items.append(_Mat(f"W^{{{l}}}", None, f"({hp}, {hl})", "param", (sizes[l - 1], sizes[l])))
        if m is not None:
            items.append(_Op("→"))
    if m is not None:
        items.append(_Mat(f"A^{{{L}}}", None, f"(m, {h_symbol(L, L)})", "data", (m, sizes[L])))
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
    params,
    X,
    Y,
    activation="relu",
    loss="cross_entropy",
    *,
    values=True,
    errors=True,
    biases=True,
    title=None,
) -> Figure:
    """The backward pass of a real network, layer L down to 1, on one scale: for each
    layer the error Δ^l (if ``errors``) and the product (1/m) (A^{l-1})^T Δ^l = ∂J/∂W^l
    (``mlp_core.batched.forward``/``backward``); with ``biases`` also
    (1/m) 𝟏^T Δ^l = ∂J/∂b^l, (1, m)(m, h_l) → (h_l,), the sum down the columns."""

    cache = forward(X, params, activation, loss)
    dW, db, delta = backward(Y, params, cache, activation)
    m = np.shape(to_numpy(X))[0]
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
        if biases:
            rows.append(
                [
                    _Op("1/m"),
                    _Mat("\\mathbf{1}^T", np.ones((1, m)), "(1, m)", "data"),
                    _Op("@"),
                    _Mat(f"\\Delta^{{{l}}}", delta[l], f"(m, {hl})", "error"),
                    _Op("="),
                    _Mat(f"\\partial J/\\partial b^{{{l}}}", db[l], f"({hl},)", "grad"),
                ]
            )
            titles.append(f"bias gradient, layer {l}")
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
