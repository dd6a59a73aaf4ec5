"""Chapter 11: learning curves over the batch size B, the learning rate η and the epochs.

Every curve is a run of :func:`mlp_core.book.widgets.train_curves` (``mc.train`` on the
digits, h = (64, 32, 10), ReLU, float32, seed 0). A run of E epochs is the first E epochs
of the longest run (the same seed gives the same batches), so the grid stores one run of
:data:`MAX_EPOCHS` per (B, η) and the epochs control cuts it. The grid takes minutes, so
``scripts/record_explorers.py`` computes it once into :data:`GRID_FILE`;
tests/test_explorers.py recomputes a few of its settings and compares them exactly.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np

from ...core.data import load_digits, one_hot, train_test_split
from ...core.errors import ConfigError, TrainingDiverged
from ...core.params import init_params
from ...training import History, train
from ..plots import run_colour

BATCH_SIZES = (1, 8, 32, 128, 256, "full")
# η = 3 and 4.5 are the values chapter 11 discusses (η = 3 breaks B = 32; 4.5 is η = 0.1
# scaled linearly to full batches, Exercise 11.4)
ETAS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 4.5, 5.0)
MAX_EPOCHS = 40
DIGITS = 4  # significant digits stored: what reproduces on any x86-64 BLAS kernel
SERIES = ("train_loss", "val_loss", "train_acc", "val_acc")
GRID_FILE = Path(__file__).resolve().parents[3] / "book" / "data" / "explorers" / "curves.json"


def stable(x: float) -> float:
    """``x`` to :data:`DIGITS` significant digits (what the book stores and shows)."""
    return float(f"{x:.{DIGITS}g}")


@functools.lru_cache(maxsize=1)
def digits_split():
    """The digits as chapter 11 splits them (20 % held out, seed 0), float32, one-hot:
    ``(X_tr, Y_tr, X_te, Y_te)``."""
    ds = load_digits(dtype=np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(ds.X, ds.labels, 0.2, seed=0)
    return (X_tr, one_hot(y_tr, 10, dtype=np.float32), X_te, one_hot(y_te, 10, dtype=np.float32))


@functools.lru_cache(maxsize=64)
def train_run(batch_size, lr, epochs, seed=0) -> tuple[History, str | None]:
    """Train h = (64, 32, 10), ReLU, float32 on :func:`digits_split` with mini-batch SGD
    (``mc.train``); ``batch_size`` is an int or "full" (all training rows).

    Returns ``(history, None)``, or, when the library stops a diverging run
    (:class:`TrainingDiverged`), the history of the epochs completed before it and the
    library's message. Cached: the same arguments give the same objects.
    """
    X_tr, Y_tr, X_te, Y_te = digits_split()
    B = X_tr.shape[0] if batch_size == "full" else int(batch_size)
    params = init_params((64, 32, 10), seed=seed, dtype=np.float32, device="cpu")
    seen = {"history": History()}

    def keep(epoch, history):
        seen["history"] = history

    try:
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
            on_epoch=keep,
        )
    except TrainingDiverged as exc:
        return seen["history"], str(exc)
    return history, None


def run_record(batch_size, lr, epochs=MAX_EPOCHS, seed=0) -> dict:
    """One run as stored in the grid: the four series to :data:`DIGITS` significant
    digits, and ``diverged``, the library's message when training stopped early
    (the series then hold the epochs completed before it)."""
    history, diverged = train_run(batch_size, lr, epochs, seed)
    rec = {"B": batch_size, "eta": lr, "diverged": diverged}
    for key in SERIES:
        rec[key] = [stable(v) for v in getattr(history, key)]
    return rec


def record_grid(progress=print) -> dict:
    """Every (B, η) of the grid, :data:`MAX_EPOCHS` epochs each, with the machine facts."""
    from ...bench.machine import machine_info

    runs = []
    for B in BATCH_SIZES:
        for eta in ETAS:
            runs.append(run_record(B, eta))
            progress(f"B = {B}, η = {eta}: {len(runs[-1]['train_loss'])} epochs")
    meta = machine_info()
    meta["settings"] = dict(
        sizes=[64, 32, 10],
        dtype="float32",
        data="digits, split seed 0",
        seed=0,
        max_epochs=MAX_EPOCHS,
        significant_digits=DIGITS,
    )
    return {"meta": meta, "runs": runs}


def load_grid(path=GRID_FILE) -> dict:
    """The recorded grid; a clear error when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path} is missing: record it with `python scripts/record_explorers.py curves` "
            "(about half an hour on one core)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def find_run(grid: dict, batch_size, lr) -> dict:
    """The stored run for (B, η)."""
    for run in grid["runs"]:
        if run["B"] == batch_size and math.isclose(run["eta"], lr):
            return run
    raise ConfigError(
        f"the recorded grid has no run for B = {batch_size}, η = {lr}; it has "
        f"B in {BATCH_SIZES} and η in {ETAS}"
    )


__all__ = [
    "BATCH_SIZES",
    "ETAS",
    "GRID_FILE",
    "MAX_EPOCHS",
    "SERIES",
    "digits_split",
    "find_run",
    "load_grid",
    "record_grid",
    "run_record",
    "stable",
    "train_run",
]


# ----------------------------------------------------------------------------- the explorer


def short_reason(message: str | None) -> str | None:
    """The first clause of the library's :class:`TrainingDiverged` message."""
    if message is None:
        return None
    return "mc.train stopped this run: " + message.split(": ")[0].split(" (")[0]


def _run_row(rec: dict) -> dict:
    n = len(rec["train_loss"])
    B = digits_split()[0].shape[0] if rec["B"] == "full" else rec["B"]
    return dict(
        B=rec["B"],
        eta=rec["eta"],
        colour=run_colour(B, rec["eta"]),  # the run's colour in every learning-curve figure
        epoch=list(range(1, n + 1)),
        last=n,
        stopped=short_reason(rec["diverged"]),
        **{k: rec[k] for k in SERIES},
    )


def _grid_tables() -> dict:
    return {"runs": [_run_row(r) for r in load_grid()["runs"]]}


def _frame(B, eta, epochs) -> dict:
    return {"runs": [_run_row(run_record(B, eta, epochs))]}


def readout(rec: dict, epochs: int) -> str:
    """The line the explorer prints for a run cut at ``epochs`` (numbers as stored)."""
    e = min(epochs, len(rec["train_loss"]))
    if e == 0:
        return "no epoch completed"
    i = e - 1
    return (
        f"epoch {e}: training loss {rec['train_loss'][i]!r}, held-out loss "
        f"{rec['val_loss'][i]!r}, held-out accuracy {rec['val_acc'][i]!r}"
    )


READOUT_EXPR = (
    "'epoch ' + datum.epoch + ': training loss ' + datum.train_loss + ', held-out loss '"
    " + datum.val_loss + ', held-out accuracy ' + datum.val_acc"
)


def _chart(data, p):
    import altair as alt

    run = alt.Chart(data["runs"]).transform_filter(
        (alt.datum.B == p["B"]) & (alt.datum.eta == p["eta"])
    )
    points = run.transform_flatten(["epoch", *SERIES]).transform_filter(
        "datum.epoch !== null && datum.epoch <= epochs"
    )
    dash = alt.StrokeDash(
        "set:N",
        scale=alt.Scale(domain=["training", "held-out"], range=[[1, 0], [6, 3]]),
        legend=alt.Legend(title=None, orient="bottom"),
    )

    def panel(prefix, title, fmt):
        return (
            points.transform_fold([f"train_{prefix}", f"val_{prefix}"], as_=["key", "value"])
            .transform_calculate(set="indexof(datum.key, 'train') === 0 ? 'training' : 'held-out'")
            .mark_line()
            .encode(
                color=alt.Color("colour:N", scale=None, legend=None),
                x=alt.X(
                    "epoch:Q",
                    title="epoch",
                    scale=alt.Scale(domain=[1, MAX_EPOCHS]),
                    axis=alt.Axis(tickMinStep=1),
                ),
                y=alt.Y("value:Q", title=title, axis=alt.Axis(format=fmt)),
                strokeDash=dash,
                order="epoch:Q",
            )
            .properties(width=270, height=200, title=title)
        )

    loss = panel("loss", "mean loss J", "")
    acc = panel("acc", "accuracy", ".0%")
    line = (
        points.transform_filter("datum.epoch === min(epochs, datum.last)")
        .transform_calculate(text=READOUT_EXPR)
        .mark_text(align="left", fontSize=13)
        .encode(x=alt.value(0), y=alt.value(8), text="text:N")
        .properties(width=560, height=16)
    )
    stopped = (
        run.transform_filter("datum.stopped !== null")
        .mark_text(align="left", fontSize=13, color="#b00020")
        .encode(x=alt.value(0), y=alt.value(8), text="stopped:N")
        .properties(width=560, height=16)
    )
    return alt.vconcat(alt.hconcat(loss, acc), line, stopped, spacing=4)


def _widget_controls(batch_size, lr, epochs):
    def make():
        import ipywidgets as widgets

        style = {"description_width": "initial"}
        return {
            "B": widgets.Dropdown(
                options=[(str(b), b) for b in BATCH_SIZES],
                value=batch_size,
                description="batch size B",
                style=style,
            ),
            "eta": widgets.FloatLogSlider(
                value=lr,
                base=10,
                min=-3.0,
                max=0.7,
                step=0.05,
                description="learning rate η",
                style=style,
            ),
            "epochs": widgets.IntSlider(epochs, 1, 100, description="epochs", style=style),
        }

    return make


def learning_curves(batch_size=32, lr=0.1, epochs=20):
    """The learning-curve explorer (chapter 11): B, η and the epochs. The HTML reads the
    recorded grid; JupyterLab trains any setting live (η on a log slider up to 5)."""
    from ._base import Control, Explorer

    n_train = digits_split()[0].shape[0]
    controls = (
        Control(
            "B",
            "batch size B",
            BATCH_SIZES,
            batch_size,
            kind="select",
            labels=tuple(f"full (N = {n_train})" if b == "full" else str(b) for b in BATCH_SIZES),
        ),
        Control(
            "eta", "learning rate η", ETAS, lr, kind="select", labels=tuple(f"{e:g}" for e in ETAS)
        ),
        Control("epochs", "epochs", tuple(range(1, MAX_EPOCHS + 1)), epochs),
    )
    return Explorer(
        key="learning-curves",
        title="learning curves over the batch size, the learning rate and the epochs",
        description=(
            f"Mean loss and accuracy per epoch, training (solid) and held-out (dashed), for "
            f"the digits network h = (64, 32, 10) trained with batch size {batch_size}, "
            f"learning rate {lr:g}, {epochs} epochs."
        ),
        controls=controls,
        frame=_frame,
        chart=_chart,
        grid=_grid_tables,
        widget_controls=_widget_controls(batch_size, lr, epochs),
        train_button=True,
    )
