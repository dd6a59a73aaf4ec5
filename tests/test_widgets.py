"""Widget callbacks are plain functions; each widget carries a static PNG for the book."""

import base64
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("ipywidgets")

from mlp_core.book import widgets  # noqa: E402
from mlp_core.core.errors import ConfigError  # noqa: E402
from mlp_core.training import History  # noqa: E402

WIDGET_KEY = "application/vnd.jupyter.widget-view+json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_render_shapes_one_hidden_layer():
    html, fig = widgets.render_shapes(7, 5, 4, 0, 3)
    for s in [
        "(5, 4)",
        "(4, 3)",
        "(7, 5)",
        "(7, 4)",
        "(7, 3)",
        "(4, 1)",
        "(3, 1)",
        "(4,)",
        "(3,)",
        "m = 7",
    ]:
        assert s in html
    labels = [p.get_label() for p in fig.axes[0].patches if p.get_label().startswith("matrix:")]
    assert labels == [
        "matrix:A^{0}",
        "matrix:W^{1}",
        "matrix:A^{1}",
        "matrix:W^{2}",
        "matrix:A^{2}",
    ]


def test_render_shapes_two_hidden_layers():
    html, fig = widgets.render_shapes(7, 5, 4, 6, 3)
    for s in ["(5, 4)", "(4, 6)", "(6, 3)", "(7, 6)", "(6, 1)"]:
        assert s in html
    assert widgets.sizes_from(5, 4, 6, 3) == (5, 4, 6, 3)
    assert widgets.sizes_from(5, 4, 0, 3) == (5, 4, 3)


def test_train_curves_history_and_determinism():
    h = widgets.train_curves(32, 0.1, 3)
    assert isinstance(h, History)
    assert h.epoch == [1, 2, 3] and len(h.train_loss) == len(h.val_acc) == 3
    assert h.train_loss[-1] < h.train_loss[0]
    widgets.train_curves.cache_clear()
    again = widgets.train_curves(32, 0.1, 3)
    assert again is not h and again.as_dict() == h.as_dict()
    full = widgets.train_curves("full", 0.5, 2)
    assert len(full.epoch) == 2


def check_bundle(live, words):
    bundle = live._repr_mimebundle_()
    assert WIDGET_KEY in bundle and "model_id" in bundle[WIDGET_KEY]
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)
    assert "\n" not in bundle["text/plain"] and words in bundle["text/plain"]
    only = live._repr_mimebundle_(include={"image/png"})
    assert set(only) == {"image/png"}
    assert WIDGET_KEY not in live._repr_mimebundle_(exclude={WIDGET_KEY})


def test_shapes_explorer_bundle():
    live = widgets.shapes_explorer(m=7, n=5, hidden=(4,), C=3)
    check_bundle(live, "Interactive")
    with pytest.raises(ConfigError):
        widgets.shapes_explorer(hidden=(1, 2, 3))


def test_learning_curves_explorer_bundle():
    live = widgets.learning_curves_explorer(batch_size=32, lr=0.1, epochs=2)
    check_bundle(live, "Train")


def test_live_figure_handles_tuple_bundles():
    class Fake:
        def _repr_mimebundle_(self, **kw):
            return ({WIDGET_KEY: {"model_id": "x"}, "text/plain": "Fake()"}, {})

    live = widgets.LiveFigure(Fake(), PNG_MAGIC + b"rest", "one line")
    b = live._repr_mimebundle_()
    assert b[WIDGET_KEY] == {"model_id": "x"} and b["text/plain"] == "one line"
    assert base64.b64decode(b["image/png"]).startswith(PNG_MAGIC)


def test_shapes_explorer_static_html_shows_the_table_and_the_figure():
    live = widgets.shapes_explorer(m=7, n=5, hidden=(4,), C=3)
    data = live._repr_mimebundle_()
    html = data["text/html"]
    assert "(7, 4)" in html and "(5, 4)" in html  # Z^1 and W^1 from the table
    assert 'src="data:image/png;base64,' in html
    assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "application/vnd.jupyter.widget-view+json" in data
    plt.close("all")


def test_learning_curves_explorer_offers_what_chapter_11_asks_for():
    """Ch. 11 asks for the largest η at B = 8 and at B = 256, and Ex. 11.4 for η ≈ 4.5."""
    live = widgets.learning_curves_explorer(batch_size=256, lr=0.1, epochs=1)
    controls = live.widget.children[0].children
    bs, eta = controls[0], controls[1]
    values = [v for _, v in bs.options]
    assert 8 in values and 256 in values and "full" in values
    assert bs.value == 256
    assert eta.max >= math.log10(4.5) and eta.min <= -2
    k = round((math.log10(4.5) - eta.min) / eta.step)
    assert abs(10 ** (eta.min + k * eta.step) - 4.5) < 0.05  # a slider position near 4.5
