"""The canvas: one figure whose axes' data coordinates are inches, with the heatmap
rectangle every diagram is made of and the signed colour key under it."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ...core.errors import ConfigError
from ._style import (
    DPI,
    ROLE_COLORS,
    SHAPE_SIZE,
    SHARED_KEY,
    SMALL_SIZE,
    VALUES_KEY,
    _light,
    _text_size,
    signed_cmap,
)

KEY_STRIP_IN = 0.6  # height of the key strip under a figure that draws values
GLYPH_MIN_IN = 0.16  # a cell this size (inches) or larger carries its sign as + or −
GLYPH_MAX_CELLS = 400


def signed_norm(*arrays) -> Normalize:
    """The scale of the signed key for ``arrays``: −v … +v, v their largest finite |entry|
    (1 if there is none, or it is 0). One array: a matrix on its own scale; several: one
    scale they share (the blocks of a matrix split across ranks, so that a row keeps its
    colour in every block)."""
    v = 0.0
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        if a.size and np.isfinite(a).any():
            v = max(v, float(np.nanmax(np.abs(a[np.isfinite(a)]))))
    return Normalize(-(v or 1.0), v or 1.0)


def check_shared_norm(norm, arrays: dict) -> None:
    """A norm given to colour several matrices must be the signed key's (−v … +v, v > 0)
    and hold every entry: a value beyond it would be drawn in the colour of ±v."""
    if not isinstance(norm, Normalize) or norm.vmin is None or norm.vmax is None:
        raise ConfigError(
            f"norm must be a matplotlib Normalize(−v, v), got {norm!r}: build it with "
            "diagrams.signed_norm(*arrays) from every matrix it colours"
        )
    if not (norm.vmax > 0 and np.isclose(norm.vmin, -norm.vmax)):
        raise ConfigError(
            f"norm goes from {norm.vmin} to {norm.vmax}, but the signed key is white at 0 "
            "and symmetric (−v … +v): use diagrams.signed_norm(*arrays)"
        )
    for label, a in arrays.items():
        big = signed_norm(a).vmax
        if big > norm.vmax * (1 + 1e-12) and np.abs(np.asarray(a)).max() > 0:
            raise ConfigError(
                f"{label} has entries up to {big:.3g} in size, beyond the shared scale "
                f"±{norm.vmax:.3g}, so they would all look alike: build the norm with "
                "diagrams.signed_norm(*arrays) from every matrix it colours"
            )


class _Canvas:
    """A figure with one axes whose data coordinates are inches (origin bottom-left)."""

    def __init__(self, width: float, height: float, dpi: int = DPI):
        self.W, self.H = width, height
        self.fig = Figure(figsize=(width, height), dpi=dpi, facecolor="white")
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_axis_off()
        self.ax.set_facecolor("white")
        # set to the one Normalize of a figure whose matrices share a scale: the key's bar
        # then carries its numbers (SHARED_KEY) instead of −max … +max (VALUES_KEY)
        self.shared_norm = None

    def finish(self, *, key: bool = True) -> Figure:
        """Fix the axes to inches; below a figure that drew values, add the signed key."""
        if key and getattr(self, "drew_values", False):
            self._add_key()
        self.ax.set_xlim(0, self.W)
        self.ax.set_ylim(0, self.H)
        self.ax.set_aspect("equal")
        return self.fig

    def _add_key(self):
        """A strip under the drawing: a small colour bar −|max| .. 0 .. +|max| and the
        VALUES_KEY sentence (the same key in every figure of the book); for a figure on one
        shared scale, the bar's numbers and the SHARED_KEY sentence."""
        if self.shared_norm is None:
            words, ticks = VALUES_KEY, ["−max", "0", "+max"]
        else:
            v = max(abs(self.shared_norm.vmin), abs(self.shared_norm.vmax))
            words, ticks = SHARED_KEY, [f"{-v:.2g}".replace("-", "−"), "0", f"{v:+.2g}"]
        strip = KEY_STRIP_IN
        H = self.H + strip
        bar_w = 1.2
        need = (
            0.35 + bar_w + 0.3 + max(_text_size(t, SMALL_SIZE)[0] for t in words.split("\n")) + 0.15
        )
        W = max(self.W, need)  # a narrow drawing: widen the figure, keep the drawing left
        self.fig.set_size_inches(W, H)
        self.ax.set_position((0, strip / H, self.W / W, self.H / H))
        self.W_fig = W
        cax = self.fig.add_axes((0.35 / W, 0.3 / H, bar_w / W, 0.12 / H))
        cax.imshow(
            np.linspace(-1, 1, 64).reshape(1, -1),
            cmap=signed_cmap(),
            aspect="auto",
            extent=(-1, 1, 0, 1),
        )
        cax.set_yticks([])
        cax.set_xticks([-1, 0, 1], ticks, fontsize=SMALL_SIZE - 1)
        cax.tick_params(length=2, pad=1)
        self.fig.text(
            (0.35 + bar_w + 0.3) / W,
            0.3 / H,
            words,
            fontsize=SMALL_SIZE,
            color="0.25",
            ha="left",
            va="center",
        )

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
        glyphs=True,
    ):
        """A rectangle (x0, y0, w, h) in inches, filled with the values as a heatmap."""
        if values and array is not None and array.size:
            a = np.asarray(array, dtype=np.float64)
            if a.ndim == 1:
                a = a.reshape(1, -1)
            if norm is None:
                norm = signed_norm(a)
            self.drew_values = True
            self.ax.imshow(
                a,
                extent=(x0, x0 + w, y0, y0 + h),
                origin="upper",
                cmap=cmap or signed_cmap(),
                norm=norm,
                interpolation="nearest",
                aspect="auto",
                zorder=1,
            )
            face = "none"
            if glyphs:
                at = 0.5 if glyphs is True else float(glyphs)
                self.sign_glyphs(x0, y0, w, h, a, norm, at=at)
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

    def sign_glyphs(self, x0, y0, w, h, a, norm, at=0.5):
        """A + or − in every cell large enough to hold one, so that the sign is readable
        without colour (cells of at least GLYPH_MIN_IN inches, at most GLYPH_MAX_CELLS);
        ``at``: the glyph's horizontal place in its cell (0 left, 1 right)."""
        rows, cols = a.shape
        cw, ch = w / cols, h / rows
        if min(cw, ch) < GLYPH_MIN_IN or a.size > GLYPH_MAX_CELLS:
            return
        size = min(SMALL_SIZE, 0.7 * 72 * min(cw, ch))
        big = max(abs(norm.vmin), abs(norm.vmax)) or 1.0
        for i in range(rows):
            for j in range(cols):
                v = a[i, j]
                if not np.isfinite(v) or v == 0:
                    continue
                self.ax.text(
                    x0 + (j + at) * cw,
                    y0 + h - (i + 0.5) * ch,
                    "+" if v > 0 else "−",
                    fontsize=size,
                    ha="center",
                    va="center",
                    color="white" if abs(v) > 0.6 * big else "black",
                    zorder=3,
                    gid="sign",
                )
