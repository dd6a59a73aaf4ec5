"""Interactive figures for the live notebooks, with their faces for the HTML book and PDF.

A widget is wrapped in :class:`LiveFigure`, whose ``_repr_mimebundle_`` carries the
ipywidgets view (``application/vnd.jupyter.widget-view+json``), which JupyterLab renders;
``text/html``, which the HTML book shows (it is configured to drop the widget mime type,
so no widget JavaScript is needed): for an explorer, its live Vega version
(:mod:`mlp_core.book.explorers`); a PNG of the default state, which the PDF shows; and a
one-line ``text/plain`` description.

The explorers of chapters 1, 5 and 11 keep their names here: :func:`shapes_explorer` and
:func:`learning_curves_explorer`; :func:`train_curves` is the training behind the
learning curves. This module imports ipywidgets; ``mlp_core`` itself does not import
this module.
"""

from __future__ import annotations

import base64
import io

from ..core.errors import ConfigError, TrainingDiverged
from .explorers import curves, learning_curves, shapes

__all__ = [
    "LiveFigure",
    "figure_png",
    "learning_curves_explorer",
    "shapes_explorer",
    "show_in",
    "train_curves",
]

BATCH_SIZES = curves.BATCH_SIZES  # chapter 11 asks for 8 and 256


def figure_png(fig, dpi=100) -> bytes:
    """The PNG bytes of a matplotlib figure (white background)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight")
    return buf.getvalue()


class LiveFigure:
    """A widget plus its faces for the static book.

    ``_repr_mimebundle_`` merges the widget's own bundle (its view key) with ``image/png``
    (base64, the default state: the PDF's figure) and ``text/plain`` (``description``);
    when ``html`` is given (an explorer's live HTML), also ``text/html``, which the HTML
    book shows instead of the PNG.
    """

    def __init__(self, widget, static, description: str, html: str | None = None):
        self.widget = widget
        self.png = static if isinstance(static, (bytes, bytearray)) else figure_png(static)
        self.description = description
        self.html = html

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_()
        if isinstance(bundle, tuple):  # (data, metadata) in some versions
            bundle = bundle[0]
        data = dict(bundle or {})
        data["image/png"] = base64.b64encode(self.png).decode("ascii")
        data["text/plain"] = self.description
        if self.html is not None:
            data["text/html"] = self.html
        if include is not None:
            data = {k: v for k, v in data.items() if k in include}
        if exclude is not None:
            data = {k: v for k, v in data.items() if k not in exclude}
        return data

    def __repr__(self) -> str:
        return self.description


# ----------------------------------------------------------------------------- explorers


def show_in(out, *objects) -> None:
    """Replace what the Output widget ``out`` shows by ``objects``.

    Setting the widget's outputs directly (rather than ``with out: display(...)``) sends
    no display message from the cell that creates the widget, so the cell's own output
    is just the widget, and re-executing the notebook reproduces it.
    """
    out.outputs = ()
    for obj in objects:
        out.append_display_data(obj)


def shapes_explorer(m=32, n=64, hidden=(16,), C=10) -> LiveFigure:
    """Sliders for m, n, h1, h2 (0 = absent) and C; every shape follows (chapters 1, 5):
    :func:`mlp_core.book.explorers.shapes`."""
    hidden = tuple(hidden)
    if not 1 <= len(hidden) <= 2:
        raise ConfigError(f"hidden must have one or two widths, got {hidden}")
    return shapes(m=m, n=n, hidden=hidden, C=C).live()


def train_curves(batch_size, lr, epochs, seed=0):
    """Train h = (64, 32, 10), ReLU, float32 on the digits (split seed 0) with mini-batch
    SGD; returns the :class:`~mlp_core.training.History`, or raises
    :class:`TrainingDiverged` (:func:`mlp_core.book.explorers.curves.train_run`, cached:
    the same arguments give the same object). ``batch_size`` is an int or "full"."""
    history, diverged = curves.train_run(batch_size, lr, epochs, seed)
    if diverged is not None:
        raise TrainingDiverged(diverged)
    return history


train_curves.cache_clear = curves.train_run.cache_clear


def learning_curves_explorer(batch_size=32, lr=0.1, epochs=20) -> LiveFigure:
    """Batch size, learning rate and epochs: the learning curves of chapter 11
    (:func:`mlp_core.book.explorers.learning_curves`)."""
    return learning_curves(batch_size=batch_size, lr=lr, epochs=epochs).live()
