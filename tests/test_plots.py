"""The book's plots: learning curves, digit grids and decision boundaries."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mlp_core.book import plots  # noqa: E402
from mlp_core.core.data import xor  # noqa: E402
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
