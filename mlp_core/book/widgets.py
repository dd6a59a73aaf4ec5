"""Interactive figures for the live notebooks, with their faces for the HTML book and PDF.

A widget is wrapped in a :class:`~mlp_core.book.live.LiveFigure`, whose
``_repr_mimebundle_`` carries the ipywidgets view
(``application/vnd.jupyter.widget-view+json``), which JupyterLab renders; ``text/html``,
which the HTML book shows (it is configured to drop the widget mime type, so no widget
JavaScript is needed): for an explorer, its live Vega version
(:mod:`mlp_core.book.explorers`); a PNG of the default state, which the PDF shows; and a
one-line ``text/plain`` description.

The explorers of chapters 1, 5 and 11 keep their names here: :func:`shapes_explorer` and
:func:`learning_curves_explorer`; :func:`train_curves` is the training behind the
learning curves. The explorers import ipywidgets when a widget is made; ``mlp_core``
itself does not import this module.
"""

from __future__ import annotations

from ..core.errors import ConfigError, TrainingDiverged
from .explorers import curves, learning_curves, shapes
from .live import LiveFigure, figure_png, show_in

__all__ = [
    "LiveFigure",
    "figure_png",
    "learning_curves_explorer",
    "shapes_explorer",
    "show_in",
    "train_curves",
]

BATCH_SIZES = curves.BATCH_SIZES  # chapter 11 asks for 8 and 256


# ----------------------------------------------------------------------------- explorers


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
