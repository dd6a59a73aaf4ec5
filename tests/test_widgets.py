"""The widgets of chapters 1, 5 and 11: the explorers' three faces in one output, and the
training behind the learning curves."""

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
    check_bundle(live, "Explorer")
    with pytest.raises(ConfigError):
        widgets.shapes_explorer(hidden=(1, 2, 3))


def test_learning_curves_explorer_bundle():
    live = widgets.learning_curves_explorer(batch_size=32, lr=0.1, epochs=2)
    check_bundle(live, "learning curves")


def test_live_figure_handles_tuple_bundles():
    class Fake:
        def _repr_mimebundle_(self, **kw):
            return ({WIDGET_KEY: {"model_id": "x"}, "text/plain": "Fake()"}, {})

    live = widgets.LiveFigure(Fake(), PNG_MAGIC + b"rest", "one line")
    b = live._repr_mimebundle_()
    assert b[WIDGET_KEY] == {"model_id": "x"} and b["text/plain"] == "one line"
    assert base64.b64decode(b["image/png"]).startswith(PNG_MAGIC)


def test_shapes_explorer_html_is_the_live_explorer():
    data = widgets.shapes_explorer(m=7, n=5, hidden=(4,), C=3)._repr_mimebundle_()
    assert 'class="mlp-explorer"' in data["text/html"]
    assert '"name":"m (examples)"' in data["text/html"]  # a labelled control for m
    assert base64.b64decode(data["image/png"])[:8] == PNG_MAGIC


def test_train_curves_raises_when_the_library_stops_a_run():
    from mlp_core.core.errors import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="loss went from"):
        widgets.train_curves("full", 5.0, 6)


def test_learning_curves_explorer_offers_what_chapter_11_asks_for():
    """Ch. 11 asks for the largest η at B = 8 and at B = 256, and Ex. 11.4 for η ≈ 4.5."""
    live = widgets.learning_curves_explorer(batch_size=256, lr=0.1, epochs=1)
    controls = live.widget.children[0].children
    bs, eta, epochs, train = controls
    assert train.description == "Train" and epochs.value == 1
    values = [v for _, v in bs.options]
    assert 8 in values and 256 in values and "full" in values
    assert bs.value == 256
    assert eta.max >= math.log10(4.5) and eta.min <= -2
    k = round((math.log10(4.5) - eta.min) / eta.step)
    assert abs(10 ** (eta.min + k * eta.step) - 4.5) < 0.05  # a slider position near 4.5
