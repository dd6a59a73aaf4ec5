"""The diagrams' style: role colours, the one signed colour key, sizes, text measuring,
and the book's shape symbols.

The signed key's two hues (purple, orange) belong to values only: no outline or name uses
them, so a frame is never read as a sign.
"""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.colors import to_rgb
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

ROLE_COLORS = {
    "data": "#1f77b4",  # X, A^l, Z^l, x, a^l: blue
    "param": "#222222",  # W^l, b^l: black
    "error": "#c0282d",  # Δ^l, δ^l: red
    "grad": "#2a9d3a",  # ∂J/∂W^l, ∂J/∂b^l: green
    "target": "#11838c",  # Y, y: teal
}
MIN_DIM_IN = 0.08  # thinnest drawn dimension, inches
MAX_UNIT_IN = 0.28  # largest drawn size of one row/column, inches
MAX_WIDTH_IN = 10.0  # the widest row of matrices fits about this many inches
NAME_SIZE = 13
SHAPE_SIZE = 10
SMALL_SIZE = 10  # the smallest text: about 10 CSS px on the book's 800 px column
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


SIGNED_CMAP = "PuOr_r"  # the book's one key for signed values: purple < 0 < orange
VALUES_KEY = (
    "values: purple < 0 (marked −), white = 0, orange > 0 (marked +);\n"
    "each matrix scaled to its own largest |entry|"
)
# The key of a figure whose matrices share one scale (its bar then carries the numbers).
SHARED_KEY = (
    "values: purple < 0 (marked −), white = 0, orange > 0 (marked +);\n"
    "one scale for every matrix of this figure, the bar's"
)


def signed_cmap():
    """The colour map of every signed heatmap in the book (colour-blind safe, diverging)."""
    return colormaps[SIGNED_CMAP]


def _light(role: str, alpha: float = 0.25):
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


def _is_math(s: str) -> bool:
    return s.count("$") - s.count(r"\$") >= 2


_TEXT_TO_PATH = TextToPath()


def _text_size(s: str, size: float) -> tuple[float, float]:
    """(width, height) in inches of a text at font ``size`` (mathtext aware), from the
    font's own metrics (matplotlib's TextToPath: no renderer, no figure)."""
    if not s:
        return 0.0, 0.0
    w, h, _ = _TEXT_TO_PATH.get_text_width_height_descent(
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
