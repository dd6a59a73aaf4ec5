"""Explorers: figures a reader moves, live in JupyterLab, in the static HTML and in the PDF.

Each function returns an :class:`Explorer` (see :mod:`._base`): ``.live()`` is what a
chapter's cell returns (ipywidgets in JupyterLab, the live Vega chart in the HTML book,
the default setting as a PNG in the PDF). Every number comes from the library, computed
when the book is built or read from a recording in ``book/data/explorers/``.
"""

from ._base import Control, Explorer
from .curves import learning_curves
from .gradients import bias_column, outer_products, output_rows, relu_gate
from .network_shapes import shapes
from .ring import ring_allreduce
from .speed import launch_cost, roofline

__all__ = [
    "Control",
    "Explorer",
    "bias_column",
    "launch_cost",
    "learning_curves",
    "outer_products",
    "output_rows",
    "relu_gate",
    "ring_allreduce",
    "roofline",
    "shapes",
]
