"""Plots for the book: learning curves, digit images, decision boundaries (chapters 10, 11).

Every function returns a :class:`matplotlib.figure.Figure` that is not registered with
pyplot (nothing shows twice in a notebook; no figure needs closing).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .backend import to_numpy

__all__ = ["decision_boundary", "digits_grid", "learning_curves"]

DPI = 100


def _histories(history):
    """[(label, History)] from one History or a list of (label, History)."""
    if hasattr(history, "train_loss"):
        return [(None, history)]
    out = list(history)
    for item in out:
        if not (isinstance(item, tuple) and len(item) == 2 and hasattr(item[1], "train_loss")):
            raise TypeError("history must be a History or a list of (label, History) pairs; "
                            f"got an item {item!r}")
    return out


def learning_curves(history, *, title=None) -> Figure:
    """Mean loss J and accuracy per epoch, training (solid) and held-out (dashed).

    ``history``: a :class:`mlp_core.train.History`, or a list of ``(label, History)`` to
    compare runs (one colour per run).
    """
    runs = _histories(history)
    fig = Figure(figsize=(10, 3.8), dpi=DPI, facecolor="white")
    ax_loss, ax_acc = fig.subplots(1, 2)
    colours = [f"C{k}" for k in range(10)]
    for k, (label, h) in enumerate(runs):
        c = colours[k % 10]
        name = "" if label is None else f"{label}, "
        ax_loss.plot(h.epoch, h.train_loss, "-", color=c, label=f"{name}training")
        ax_acc.plot(h.epoch, h.train_acc, "-", color=c, label=f"{name}training")
        if h.val_loss:
            ax_loss.plot(h.epoch, h.val_loss, "--", color=c, label=f"{name}held-out")
            ax_acc.plot(h.epoch, h.val_acc, "--", color=c, label=f"{name}held-out")
    ax_loss.set(xlabel="epoch", ylabel="mean loss $J$", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    from matplotlib.ticker import MaxNLocator
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def digits_grid(X, labels, predictions=None, k=20, *, image_shape=(8, 8), cols=10) -> Figure:
    """The first k rows of X (m, 64) as 8×8 images, titled with the label (and the
    prediction, red where it is wrong)."""
    X = np.asarray(to_numpy(X))
    labels = np.asarray(to_numpy(labels))
    k = min(int(k), X.shape[0])
    cols = min(cols, k)
    rows = -(-k // cols)
    fig = Figure(figsize=(cols * 0.9, rows * 1.05), dpi=DPI, facecolor="white")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= k:
            continue
        ax.imshow(X[i].reshape(image_shape), cmap="gray_r", interpolation="nearest")
        if predictions is None:
            ax.set_title(f"{labels[i]}", fontsize=9)
        else:
            p = np.asarray(to_numpy(predictions))[i]
            ok = p == labels[i]
            ax.set_title(f"{labels[i]} → {p}", fontsize=9,
                         color="black" if ok else "#c0282d")
    fig.tight_layout(pad=0.3)
    return fig


def decision_boundary(params, X, labels, activation="relu", loss="cross_entropy", *,
                      grid=200, title=None) -> Figure:
    """The predicted class over a grid around 2-D data (spirals, XOR), with the points.

    Uses :func:`mlp_core.batched.predict` on all grid points at once (one batch).
    """
    from .backend import to_device
    from .batched import predict

    X = np.asarray(to_numpy(X))
    labels = np.asarray(to_numpy(labels))
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_boundary needs 2-D inputs, X of shape (m, 2); got {X.shape}")
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0)) + 1e-9
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    G = np.column_stack([g0.ravel(), g1.ravel()]).astype(params.dtype)
    A = to_numpy(predict(to_device(G, params.device), params, activation, loss))
    cls = (A[:, 0] > 0.5).astype(int) if A.shape[1] == 1 else A.argmax(axis=1)
    C = max(int(labels.max()) + 1, A.shape[1], 2)
    fig = Figure(figsize=(5, 4.5), dpi=DPI, facecolor="white")
    ax = fig.subplots()
    from matplotlib.colors import ListedColormap
    base = [f"C{k}" for k in range(C)]
    ax.contourf(g0, g1, cls.reshape(g0.shape), levels=np.arange(C + 1) - 0.5,
                cmap=ListedColormap(base), alpha=0.25)
    for c in range(C):
        pts = X[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=12, color=base[c], edgecolor="k", lw=0.3,
                   label=f"class {c}")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title or "decision regions")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
