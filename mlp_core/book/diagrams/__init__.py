"""Matrix shape diagrams drawn to scale from real arrays (chapters 1, 5 to 10).

Every matrix is a rectangle whose width is proportional to its number of columns and whose
height is proportional to its number of rows, on one common scale within a figure (so two
matrices with the same number of rows have the same height). Each rectangle carries its
name in mathtext (e.g. ``(A^{0})^T``) and its shape, with the book's symbols and the
numbers, e.g. "(h_0, m) = (64, 32)". By default the values are drawn inside as a heatmap.

The package: ``_style`` (colours, sizes, symbols), ``_canvas`` (the inch canvas and the
key), ``_layout`` (the scale solver), ``figures`` (one function per idea), ``tables``.

Values are drawn in ONE signed key in every figure of the book (``SIGNED_CMAP``, a
colour-blind-safe diverging map: purple < 0, white = 0, orange > 0), with a + or − in
each cell large enough to hold one and the key drawn under the figure: each matrix scaled
to its own largest |entry| (``VALUES_KEY``), or, in a figure that compares values across
matrices, one scale whose bar carries the numbers (``SHARED_KEY``; ``signed_norm`` of the
arrays, given to ``draw_product`` as ``norm``: a matrix cut into blocks keeps its colours).
A 0/1 mask such as ReLU's σ'(Z) is values like any other: 1 is orange, 0 white. The outline
and the name of a matrix follow its role, in colours apart from the two sign hues:

* inputs, activations and pre-activations (X, A^l, Z^l, x, a^l): blue;
* parameters (W^l, b^l): black;
* errors (Δ^l, δ^l): red;
* gradients (∂J/∂W^l, ∂J/∂b^l): green;
* targets (Y, y): teal.

The scale is capped so that the largest row of a figure fits about 10 inches wide; a
dimension of 1 is still drawn at least 0.08 inch thick (the only place where a drawing is
not exactly to scale). All functions return a :class:`matplotlib.figure.Figure` (not
registered with pyplot, so nothing is shown twice in a notebook and nothing needs
closing; ``plt.close(fig)`` is harmless).
"""

from ._canvas import signed_norm
from ._style import (
    MIN_DIM_IN,
    ROLE_COLORS,
    SHARED_KEY,
    SIGNED_CMAP,
    VALUES_KEY,
    h_symbol,
    infer_role,
    shape_text,
    signed_cmap,
)
from .figures import (
    backward_shapes,
    column_sums,
    draw_product,
    error_matrix,
    forward_shapes,
    network_stack,
    outer_vs_batch,
    rows_from_columns,
)
from .tables import shape_table, shape_table_html

__all__ = [
    "MIN_DIM_IN",
    "ROLE_COLORS",
    "SHARED_KEY",
    "SIGNED_CMAP",
    "VALUES_KEY",
    "backward_shapes",
    "column_sums",
    "draw_product",
    "error_matrix",
    "forward_shapes",
    "h_symbol",
    "infer_role",
    "network_stack",
    "outer_vs_batch",
    "rows_from_columns",
    "shape_table",
    "shape_table_html",
    "shape_text",
    "signed_cmap",
    "signed_norm",
]
