"""Plots for the book: learning curves, digit images, decision boundaries (chapters 4, 10, 11).

Every function returns a :class:`matplotlib.figure.Figure` that is not registered with
pyplot (nothing shows twice in a notebook; no figure needs closing).
"""

from __future__ import annotations

import zlib

import numpy as np
from matplotlib.figure import Figure

from ..bench import recorded_label, roofline
from ..core.backend import to_device, to_numpy
from ..core.batched import predict
from ..core.errors import ConfigError, ShapeError

__all__ = [
    "decision_boundary",
    "digits_grid",
    "learning_curves",
    "loop_vs_batched_chart",
    "recorded_bars",
    "recorded_vs_live",
    "roofline_chart",
    "run_colour",
]

DPI = 100


# One colour per training configuration (batch size B, learning rate η) in every
# learning-curve figure of the book: the run B = 32, η = 0.1 is blue wherever it appears.
RUN_COLOURS = {
    (1, 0.1): "#393b79",
    (8, 0.025): "#c5b0d5",
    (8, 0.1): "#9467bd",
    (32, 0.01): "#17becf",
    (32, 0.1): "#1f77b4",
    (32, 0.5): "#2ca02c",
    (32, 3.0): "#d62728",
    (128, 0.1): "#ff7f0e",
    (128, 0.4): "#bcbd22",
    (256, 0.1): "#8c564b",
    (256, 0.8): "#e377c2",
    (1437, 0.1): "#7f7f7f",  # the digits' training set in one batch: full-batch descent
}
# A run that is not the book's mean-gradient SGD (e.g. chapter 10's summed weight gradient).
VARIANT_COLOURS = {"summed": "#000000"}
# Configurations not in the table: a fixed colour from this list, chosen by the settings.
_OTHER_COLOURS = ("#843c39", "#637939", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1")


def run_colour(batch_size, lr, variant=None) -> str:
    """The colour of the run with batch size ``batch_size`` and learning rate ``lr`` in
    every learning-curve figure (chapters 4, 10, 11 and the explorers): the same settings
    always get the same colour. ``variant`` names a run that is not the book's mean-gradient
    SGD (``"summed"``: chapter 10's missing 1/m), which gets its own colour."""
    if variant is not None:
        if variant not in VARIANT_COLOURS:
            raise ConfigError(
                f"variant must be one of {sorted(VARIANT_COLOURS)} or None, got {variant!r}"
            )
        return VARIANT_COLOURS[variant]
    key = (int(batch_size), round(float(lr), 6))
    for (b, eta), colour in RUN_COLOURS.items():
        if key == (b, round(eta, 6)):
            return colour
    return _OTHER_COLOURS[zlib.crc32(f"{key[0]}:{key[1]:g}".encode()) % len(_OTHER_COLOURS)]


def _runs(history):
    """[(label, History, colour)] from one History or a list of (label, History) or
    (label, History, colour or (B, η)) items."""
    if hasattr(history, "train_loss"):
        return [(None, history, run_colour(32, 0.1))]
    out = []
    for k, item in enumerate(history):
        if not (isinstance(item, tuple) and len(item) in (2, 3) and hasattr(item[1], "train_loss")):
            raise ConfigError(
                "history must be a History or a list of (label, History) or "
                f"(label, History, colour or (batch_size, lr)) items; got an item {item!r}"
            )
        colour = item[2] if len(item) == 3 else _OTHER_COLOURS[k % len(_OTHER_COLOURS)]
        if isinstance(colour, tuple):
            colour = run_colour(*colour)
        out.append((item[0], item[1], colour))
    return out


def learning_curves(history, *, title=None) -> Figure:
    """Mean loss J and accuracy per epoch, training (solid) and held-out (dashed).

    ``history``: a :class:`mlp_core.training.History`, or a list of ``(label, History)``
    or ``(label, History, (batch_size, lr))`` items to compare runs: with the settings,
    each run is drawn in its :func:`run_colour`, the same in every figure of the book (a
    colour string is taken as it is). The legend sits under the two panels, outside them.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    runs = _runs(history)
    fig = Figure(figsize=(10, 4.3), dpi=DPI, facecolor="white", layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    held_out = False
    for _label, h, c in runs:
        ax_loss.plot(h.epoch, h.train_loss, "-", color=c)
        ax_acc.plot(h.epoch, h.train_acc, "-", color=c)
        if h.val_loss:
            held_out = True
            ax_loss.plot(h.epoch, h.val_loss, "--", color=c)
            ax_acc.plot(h.epoch, h.val_acc, "--", color=c)
    ax_loss.set(xlabel="epoch", ylabel="mean loss $J$", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=c, lw=2.5, label=label) for label, _h, c in runs if label]
    handles.append(Line2D([], [], color="0.3", ls="-", label="training"))
    if held_out:
        handles.append(Line2D([], [], color="0.3", ls="--", label="held-out"))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(handles), 6),
        fontsize=9,
        frameon=False,
    )
    if title:
        fig.suptitle(title)
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
            ax.set_title(f"{labels[i]} → {p}", fontsize=9, color="black" if ok else "#c0282d")
    fig.tight_layout(pad=0.3)
    return fig


def decision_boundary(
    params, X, labels, activation="relu", loss="cross_entropy", *, grid=200, title=None
) -> Figure:
    """The predicted class over a grid around 2-D data (spirals, XOR), with the points.

    Uses :func:`mlp_core.batched.predict` on all grid points at once (one batch).
    """

    X = np.asarray(to_numpy(X))
    labels = np.asarray(to_numpy(labels))
    if X.ndim != 2 or X.shape[1] != 2:
        raise ShapeError(f"decision_boundary needs 2-D inputs, X of shape (m, 2); got {X.shape}")
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
    ax.contourf(
        g0,
        g1,
        cls.reshape(g0.shape),
        levels=np.arange(C + 1) - 0.5,
        cmap=ListedColormap(base),
        alpha=0.25,
    )
    for c in range(C):
        pts = X[labels == c]
        ax.scatter(
            pts[:, 0], pts[:, 1], s=12, color=base[c], edgecolor="k", lw=0.3, label=f"class {c}"
        )
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title or "decision regions")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


# ------------------------------------------------- Part III: speed (chapters 12 and 13)


def roofline_chart(peak_gflops, bandwidth_gbs, points=(), *, title=None) -> Figure:
    """The roofline min(peak, bandwidth · I) on log-log axes (eq-intensity), with
    ``points``: a list of ``(label, intensity)`` placed on the roof."""

    fig = Figure(figsize=(7.5, 4.4), dpi=DPI, facecolor="white")
    ax = fig.subplots()
    I = np.logspace(-2, 3, 200)
    ax.loglog(I, roofline(peak_gflops, bandwidth_gbs, I), "k-", lw=2, label="attainable")
    ridge = peak_gflops / bandwidth_gbs
    ax.axvline(ridge, color="grey", ls=":", lw=1)
    ax.annotate(
        f"ridge point\n{ridge:.1f} FLOP/byte",
        (ridge, peak_gflops / 30),
        xytext=(6, 0),
        textcoords="offset points",
        fontsize=8,
        color="grey",
    )
    for k, (label, intensity) in enumerate(points):
        y = float(roofline(peak_gflops, bandwidth_gbs, intensity))
        ax.plot(intensity, y, "o", ms=8, color=f"C{k % 10}", label=label)
    ax.set(
        xlabel="arithmetic intensity (FLOP/byte)",
        ylabel="attainable GFLOP/s",
        title=title or "roofline of this machine",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def loop_vs_batched_chart(rows, *, title=None) -> Figure:
    """Seconds for the gradients of m examples, one at a time and batched (left), and the
    speed-up (right), from :func:`mlp_core.bench.loop_vs_batched`. Extrapolated loop times
    are drawn as open markers."""
    m = np.array([r["m"] for r in rows], dtype=float)
    loop = np.array([r["loop_seconds"] for r in rows])
    batch = np.array([r["batched_seconds"] for r in rows])
    extra = np.array([r["loop_extrapolated"] for r in rows])
    fig = Figure(figsize=(10, 3.8), dpi=DPI, facecolor="white")
    ax_t, ax_s = fig.subplots(1, 2)
    ax_t.loglog(m, loop * 1e3, "-", color="C3")
    ax_t.loglog(m[~extra], loop[~extra] * 1e3, "o", color="C3", label="loop (single)")
    if extra.any():
        ax_t.loglog(
            m[extra],
            loop[extra] * 1e3,
            "o",
            mfc="white",
            color="C3",
            label="loop, extrapolated ×m/k",
        )
    ax_t.loglog(m, batch * 1e3, "s-", color="C0", label="batched (one call)")
    ax_t.set(xlabel="examples $m$", ylabel="milliseconds", title="time for the gradients")
    ax_s.semilogx(m, loop / batch, "o-", color="C2")
    ax_s.axhline(1, color="grey", lw=1)
    ax_s.set(
        xlabel="examples $m$",
        ylabel="loop time / batched time",
        title="speed-up of the batched path",
    )
    for ax in (ax_t, ax_s):
        ax.grid(alpha=0.3, which="both")
    ax_t.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def recorded_vs_live(
    live,
    recorded=(),
    *,
    dtype="float32",
    contenders=(
        "numpy-batched",
        "numpy-fast",
        "cupy-batched",
        "cupy-fast",
        "cupy-fast-graph",
        "gemm-numpy",
        "gemm-cupy",
    ),
    title=None,
) -> Figure:
    """Speed against the batch size: ``live`` runs (a list of ``(label, rows)`` from
    :func:`mlp_core.bench.speed_vs_batch`) on the left; recorded benchmark results
    (from :func:`mlp_core.bench.load_recorded`) on the right, one line per file and
    contender, labelled with the hardware and date. With no recorded results, the live
    panel alone."""

    recorded = list(recorded)
    fig = Figure(figsize=(11 if recorded else 6.5, 4.4), dpi=DPI, facecolor="white")
    axes = fig.subplots(1, 2 if recorded else 1)
    ax_live = axes[0] if recorded else axes
    for k, (label, rows) in enumerate(live):
        ax_live.loglog(
            [r["batch_size"] for r in rows],
            [r["examples_per_s"] for r in rows],
            "o-",
            color=f"C{k % 10}",
            label=label,
        )
    ax_live.set(
        xlabel="batch size $B$",
        ylabel="examples per second (one epoch)",
        title="live, on this machine",
    )
    ax_live.grid(alpha=0.3, which="both")
    ax_live.legend(fontsize=8)
    if recorded:
        ax = axes[1]
        styles = ["-", "--", ":", "-."]
        for f, result in enumerate(recorded):
            where = recorded_label(result)
            for k, name in enumerate(contenders):
                recs = sorted(
                    (
                        r
                        for r in result["records"]
                        if r["contender"] == name and r["dtype"] == dtype
                    ),
                    key=lambda r: r["batch"],
                )
                if not recs:
                    continue
                ax.loglog(
                    [r["batch"] for r in recs],
                    [r["gflops"] for r in recs],
                    "o" + styles[f % 4],
                    color=f"C{k % 10}",
                    label=f"{recs[0]['label']}: {where}",
                )
                for r in recs:
                    if f == 0 and k == 0:
                        ax.annotate(
                            r["size"],
                            (r["batch"], r["gflops"]),
                            fontsize=7,
                            xytext=(3, -10),
                            textcoords="offset points",
                        )
        ax.set(
            xlabel="batch size $B$ of the benchmark size",
            ylabel="GFLOP/s (matrix products)",
            title=f"recorded ({dtype})",
        )
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def recorded_bars(result, *, dtype="float32", contenders=None, title=None) -> Figure:
    """GFLOP/s of each contender on each benchmark size of one recorded result (bars),
    titled with the hardware and date."""

    recs = [
        r
        for r in result["records"]
        if r["dtype"] == dtype and (contenders is None or r["contender"] in contenders)
    ]
    sizes = list(dict.fromkeys(r["size"] for r in recs))
    names = list(dict.fromkeys(r["contender"] for r in recs))
    fig = Figure(figsize=(10, 4), dpi=DPI, facecolor="white")
    ax = fig.subplots()
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        by = {r["size"]: r for r in recs if r["contender"] == name}
        xs = [i + (k - (len(names) - 1) / 2) * width for i, s in enumerate(sizes) if s in by]
        ys = [by[s]["gflops"] for s in sizes if s in by]
        label = next(r["label"] for r in recs if r["contender"] == name)
        label += " (*extrapolated)" if any(by[s]["extrapolated"] for s in by) else ""
        ax.bar(xs, ys, width, color=f"C{k % 10}", label=label)
    ax.set_xticks(range(len(sizes)), [s for s in sizes])
    ax.set_yscale("log")
    ax.set(
        ylabel="GFLOP/s (matrix products)",
        title=title or f"recorded: {recorded_label(result)}, {dtype}",
    )
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig
