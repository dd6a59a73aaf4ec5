"""A live figure: a widget for JupyterLab with its faces for the HTML book and the PDF.

:class:`LiveFigure` is what an explorer's cell returns (:mod:`mlp_core.book.explorers`,
:mod:`mlp_core.book.widgets`); :func:`show_in` fills an Output widget without sending a
display message from the cell that creates it.
"""

from __future__ import annotations

import base64
import io

__all__ = ["LiveFigure", "figure_png", "show_in"]


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


def show_in(out, *objects) -> None:
    """Replace what the Output widget ``out`` shows by ``objects``.

    Setting the widget's outputs directly (rather than ``with out: display(...)``) sends
    no display message from the cell that creates the widget, so the cell's own output
    is just the widget, and re-executing the notebook reproduces it.
    """
    out.outputs = ()
    for obj in objects:
        out.append_display_data(obj)
