"""Interactive widgets for the live notebooks, each with a static view for the HTML book.

A widget is wrapped in :class:`LiveFigure`, whose ``_repr_mimebundle_`` carries both the
ipywidgets view (``application/vnd.jupyter.widget-view+json``), which JupyterLab renders,
and a PNG of the default state plus a one-line ``text/plain`` description, which the HTML
book shows (it is configured to drop the widget mime type, so no widget JavaScript is
needed and no blank space is left where there is no kernel).

The callbacks are plain functions, tested without a browser: :func:`render_shapes` and
:func:`train_curves`. This module imports ipywidgets; ``mlp_core`` itself does not import
this module.
"""

from __future__ import annotations

import base64
import functools
import io

import ipywidgets as widgets
import numpy as np
from IPython.display import HTML

from ..core.data import load_digits, one_hot, train_test_split
from ..core.errors import ConfigError
from ..core.params import init_params
from ..training import train
from . import diagrams, plots

__all__ = [
    "LiveFigure",
    "figure_png",
    "learning_curves_explorer",
    "render_shapes",
    "shapes_explorer",
    "train_curves",
]

BATCH_SIZES = (1, 8, 32, 128, 256, "full")  # chapter 11 asks for 8 and 256
LR_LOG_RANGE = (-3.0, 0.7)  # η from 0.001 to about 5: Exercise 11.4 asks for 4.5
LR_LOG_STEP = 0.05  # 10**0.65 ≈ 4.47


def figure_png(fig, dpi=100) -> bytes:
    """The PNG bytes of a matplotlib figure (white background)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight")
    return buf.getvalue()


class LiveFigure:
    """A widget plus a static rendering of its default state.

    ``_repr_mimebundle_`` merges the widget's own bundle (its view key) with ``image/png``
    (base64) and ``text/plain`` (``description``); when ``html`` is given (e.g. the shape
    table the widget shows above its figure), also ``text/html``: that HTML, the PNG as
    an image and the description as a caption, so the static book shows everything the
    widget shows in its default state.
    """

    def __init__(self, widget, static, description: str, html: str | None = None):
        self.widget = widget
        self.png = static if isinstance(static, (bytes, bytearray)) else figure_png(static)
        self.description = description
        self.html = html

    def static_html(self) -> str:
        """The default state as HTML: ``html``, the PNG, and the description."""
        png = base64.b64encode(self.png).decode("ascii")
        return (
            f'<div class="mlp-live-figure">{self.html}'
            f'<img alt="static view of the widget" src="data:image/png;base64,{png}"/>'
            f'<p class="mlp-live-figure-caption"><em>{self.description}</em></p></div>'
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_()
        if isinstance(bundle, tuple):  # (data, metadata) in some versions
            bundle = bundle[0]
        data = dict(bundle or {})
        data["image/png"] = base64.b64encode(self.png).decode("ascii")
        data["text/plain"] = self.description
        if self.html is not None:
            data["text/html"] = self.static_html()
        if include is not None:
            data = {k: v for k, v in data.items() if k in include}
        if exclude is not None:
            data = {k: v for k, v in data.items() if k not in exclude}
        return data

    def __repr__(self) -> str:
        return self.description


# ----------------------------------------------------------------------------- shapes


def show_in(out, *objects) -> None:
    """Replace what the Output widget ``out`` shows by ``objects``.

    Setting the widget's outputs directly (rather than ``with out: display(...)``) sends
    no display message from the cell that creates the widget, so the cell's own output
    is just the widget, and re-executing the notebook reproduces it.
    """
    out.outputs = ()
    for obj in objects:
        out.append_display_data(obj)


def sizes_from(n, h1, h2, C) -> tuple:
    """h = (n, h1[, h2], C); h2 = 0 means no second hidden layer."""
    return (int(n), int(h1)) + ((int(h2),) if h2 else ()) + (int(C),)


def render_shapes(m, n, h1, h2, C):
    """``(html, Figure)``: the shape table and the network as a stack of matrices for
    h = (n, h1[, h2], C) and m examples (h2 = 0: one hidden layer)."""
    sizes = sizes_from(n, h1, h2, C)
    return diagrams.shape_table_html(sizes, m), diagrams.network_stack(sizes, m=int(m))


def shapes_explorer(m=32, n=64, hidden=(16,), C=10) -> LiveFigure:
    """Sliders for m, n, h1, h2 (0 = absent) and C, showing the shape table and the
    network stack diagram (chapter 1)."""
    hidden = tuple(hidden)
    if not 1 <= len(hidden) <= 2:
        raise ConfigError(f"hidden must have one or two widths, got {hidden}")
    h1, h2 = hidden[0], (hidden[1] if len(hidden) == 2 else 0)
    style = {"description_width": "110px"}
    sl = {
        "m": widgets.IntSlider(m, 1, 256, description="m (examples)", style=style),
        "n": widgets.IntSlider(n, 1, 784, description="n (inputs)", style=style),
        "h1": widgets.IntSlider(h1, 1, 256, description="h1", style=style),
        "h2": widgets.IntSlider(h2, 0, 256, description="h2 (0 = none)", style=style),
        "C": widgets.IntSlider(C, 1, 20, description="C (classes)", style=style),
    }
    out = widgets.Output()

    def update(_=None):
        html, fig = render_shapes(*(s.value for s in sl.values()))
        show_in(out, HTML(html), fig)
        return fig

    for s in sl.values():
        s.observe(update, names="value")
    fig = update()
    box = widgets.VBox(
        [
            widgets.HBox(
                [widgets.VBox([sl["m"], sl["n"]]), widgets.VBox([sl["h1"], sl["h2"], sl["C"]])]
            ),
            out,
        ]
    )
    html, _ = render_shapes(m, n, h1, h2, C)
    return LiveFigure(
        box,
        fig,
        html=html,
        description="Interactive: change m, n and the layer widths (needs a "
        "live kernel). Static view of the default state.",
    )


# ----------------------------------------------------------------------------- training


@functools.lru_cache(maxsize=1)
def _digits_split():

    ds = load_digits(dtype=np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(ds.X, ds.labels, 0.2, seed=0)
    return (X_tr, one_hot(y_tr, 10, dtype=np.float32), X_te, one_hot(y_te, 10, dtype=np.float32))


@functools.lru_cache(maxsize=64)
def train_curves(batch_size, lr, epochs, seed=0):
    """Train h = (64, 32, 10), ReLU, float32 on the digits (split seed 0) with mini-batch
    SGD; returns the :class:`~mlp_core.train.History` (cached: the same arguments give the
    same object). ``batch_size`` is an int or "full" (all training rows)."""

    X_tr, Y_tr, X_te, Y_te = _digits_split()
    B = X_tr.shape[0] if batch_size == "full" else int(batch_size)
    params = init_params((64, 32, 10), seed=seed, dtype=np.float32, device="cpu")
    _, history = train(
        params,
        X_tr,
        Y_tr,
        X_val=X_te,
        Y_val=Y_te,
        epochs=int(epochs),
        batch_size=B,
        lr=float(lr),
        seed=seed,
        progress=False,
    )
    return history


def _curves_title(batch_size, lr, epochs):
    return f"digits, h = (64, 32, 10), batch size {batch_size}, η = {lr:g}, {epochs} epochs"


def learning_curves_explorer(batch_size=32, lr=0.1, epochs=20) -> LiveFigure:
    """Batch size, learning rate (log slider) and epochs, and a Train button showing the
    learning curves (chapter 11)."""
    bs = widgets.Dropdown(
        options=[(str(b), b) for b in BATCH_SIZES], value=batch_size, description="batch size"
    )
    eta = widgets.FloatLogSlider(
        value=lr,
        base=10,
        min=LR_LOG_RANGE[0],
        max=LR_LOG_RANGE[1],
        step=LR_LOG_STEP,
        description="η (lr)",
    )
    ep = widgets.IntSlider(epochs, 1, 100, description="epochs")
    button = widgets.Button(description="Train", button_style="primary")
    out = widgets.Output()

    def run(_=None):
        try:
            h = train_curves(bs.value, round(eta.value, 6), ep.value)
        except Exception as exc:  # noqa: BLE001 - e.g. TrainingDiverged: show the teaching message
            show_in(out)
            out.append_stdout(f"{type(exc).__name__}: {exc}\n")
            return
        show_in(out, plots.learning_curves(h, title=_curves_title(bs.value, eta.value, ep.value)))

    button.on_click(run)
    box = widgets.VBox([widgets.HBox([bs, eta, ep, button]), out])
    fig = plots.learning_curves(
        train_curves(batch_size, lr, epochs), title=_curves_title(batch_size, lr, epochs)
    )
    return LiveFigure(
        box,
        fig,
        "Interactive: choose the batch size and learning rate, then "
        "Train (needs a live kernel). Static view of the default state.",
    )
