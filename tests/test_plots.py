"""The book's plots: learning curves, digit grids and decision boundaries."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mlp_core.book import plots  # noqa: E402
from mlp_core.core.data import xor  # noqa: E402
from mlp_core.core.errors import ConfigError  # noqa: E402
from mlp_core.core.params import init_params  # noqa: E402
from mlp_core.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_plots():
    h = History(
        epoch=[1, 2, 3],
        train_loss=[1.0, 0.5, 0.3],
        train_acc=[0.5, 0.7, 0.8],
        val_loss=[1.1, 0.6, 0.4],
        val_acc=[0.4, 0.6, 0.7],
    )
    fig = plots.learning_curves(h, title="t")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    fig = plots.learning_curves([("a", h), ("b", h)])
    assert len(fig.axes[1].lines) == 4
    X = np.random.default_rng(0).random((30, 64))
    labels = np.arange(30) % 10
    fig = plots.digits_grid(X, labels, predictions=labels, k=20)
    assert sum(len(ax.images) for ax in fig.axes) == 20
    ds = xor(40)
    params = init_params((2, 5, 2), seed=0)
    fig = plots.decision_boundary(params, ds.X, ds.labels, grid=30)
    assert len(fig.axes[0].collections) >= 2


def _history(n=4):
    return History(
        epoch=list(range(n)),
        train_loss=[2.3 / (k + 1) for k in range(n)],
        train_acc=[0.1 * (k + 1) for k in range(n)],
        val_loss=[2.4 / (k + 1) for k in range(n)],
        val_acc=[0.1 * k for k in range(n)],
    )


def test_one_colour_per_configuration_in_every_figure():
    h = _history()
    first = plots.learning_curves([("a", h, (32, 0.1)), ("b", h, (128, 0.1))])
    second = plots.learning_curves([("c", h, (8, 0.1)), ("d", h, (32, 0.1))])
    blue = plots.run_colour(32, 0.1)
    assert {ln.get_color() for ln in first.axes[0].lines[:2]} == {blue}
    assert {ln.get_color() for ln in second.axes[0].lines[2:]} == {blue}
    assert plots.run_colour(128, 0.1) != blue != plots.run_colour(32, 0.5)
    assert plots.run_colour(32.0, 0.1000000001) == blue  # the same settings, written otherwise
    # a configuration the book does not show: a fixed colour all the same
    assert plots.run_colour(64, 0.3) == plots.run_colour(64, 0.3)
    assert plots.run_colour(256, 0.1, variant="summed") not in plots.RUN_COLOURS.values()
    with pytest.raises(ConfigError, match="variant"):
        plots.run_colour(32, 0.1, variant="sum")


def test_table_colours_are_distinct():
    colours = list(plots.RUN_COLOURS.values()) + list(plots.VARIANT_COLOURS.values())
    assert len(set(colours)) == len(colours)


def test_the_legend_is_outside_the_axes():
    h = _history()
    fig = plots.learning_curves([(f"run {k}", h, (32, lr)) for k, lr in enumerate((0.01, 0.1))])
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    for ax in fig.axes:
        assert not legend.overlaps(ax.get_window_extent()), "the legend hides curves"
        assert ax.get_legend() is None
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["run 0", "run 1", "training", "held-out"]
