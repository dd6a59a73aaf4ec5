"""Plots for the book: learning curves, digit images, decision boundaries (chapters 4, 10, 11).

Every function returns a :class:`matplotlib.figure.Figure` that is not registered with
pyplot (nothing shows twice in a notebook; no figure needs closing).
"""

from __future__ import annotations

import zlib

import numpy as np
from matplotlib.figure import Figure

from ..bench import record_spread, recorded_label, roofline
from ..core.backend import to_device, to_numpy
from ..core.batched import predict
from ..core.errors import ConfigError, ShapeError

__all__ = [
    "decision_boundary",
    "digits_grid",
    "learning_curves",
    "loop_vs_batched_chart",
    "allreduce_chart",
    "recorded_spread",
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


def roofline_chart(
    peak_gflops,
    bandwidth_gbs,
    points=(),
    *,
    measured=(),
    roofs=None,
    formula_peak=None,
    title=None,
) -> Figure:
    """The roofline min(peak, bandwidth · I) on log-log axes (eq-intensity), main memory's
    ``bandwidth_gbs`` as its slope. ``roofs``: ``{name: GB/s}``, further slopes (the
    caches), drawn thinner up to the peak; ``formula_peak``: the peak computed from the
    processor's data (eq-peak), dashed, beside the measured one; ``measured``: rows with
    ``intensity`` and ``gflops`` (and ``m``: :func:`mlp_core.bench.matmul_rates`), drawn as
    filled dots joined by a line; ``points``: ``(label, intensity)`` placed *on* the roof,
    what the model predicts, drawn hollow and labelled as a model."""

    fig = Figure(figsize=(7.5, 4.6), dpi=DPI, facecolor="white")
    ax = fig.subplots()
    I = np.logspace(-2, 3, 200)
    ax.loglog(I, roofline(peak_gflops, bandwidth_gbs, I), "k-", lw=2, label="roofline (memory)")
    for k, (name, gbs) in enumerate((roofs or {}).items()):
        ax.loglog(
            I,
            roofline(peak_gflops, gbs, I),
            color="0.5",
            lw=1,
            ls=(0, (4, 1 + k)),
            label=f"roof from {name} ({gbs:.0f} GB/s)",
        )
    if formula_peak is not None:
        ax.axhline(
            formula_peak,
            color="C3",
            ls="--",
            lw=1,
            label=f"peak from the data, {formula_peak:.0f} GFLOP/s",
        )
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
    if len(measured):
        ms = [r.get("m") for r in measured]
        ax.loglog(
            [r["intensity"] for r in measured],
            [r["gflops"] for r in measured],
            "o-",
            color="C0",
            ms=5,
            label=f"measured Z = A W, m = {ms[0]}…{ms[-1]}" if ms[0] is not None else "measured",
        )
    for k, (label, intensity) in enumerate(points):
        y = float(roofline(peak_gflops, bandwidth_gbs, intensity))
        ax.plot(
            intensity,
            y,
            "o",
            ms=9,
            mfc="none",
            mew=1.6,
            color=f"C{(k + 1) % 10}",
            label=f"{label} (model: on the roof)",
        )
    ax.set(
        xlabel="arithmetic intensity (FLOP/byte)",
        ylabel="GFLOP/s",
        title=title or "roofline of this machine",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")
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
    predicted=(),
    title=None,
) -> Figure:
    """Speed against the batch size: measured runs ``live`` (a list of ``(label, rows)``
    from :func:`mlp_core.bench.speed_vs_batch`, live or recorded) and ``predicted`` ones
    (``(label, rows)`` of :func:`mlp_core.bench.gpu_model.predict_epoch` results with
    ``batch_size``; dashed, hollow, labelled as a model) on the left; recorded benchmark
    results (from :func:`mlp_core.bench.load_recorded`) on the right, one line per file and
    contender, labelled with the hardware and date. With no recorded results, the left
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
    for k, (label, rows) in enumerate(predicted):
        ax_live.loglog(
            [r["batch_size"] for r in rows],
            [r["examples_per_s"] for r in rows],
            "o--",
            mfc="none",
            color=f"C{(len(live) + k) % 10}",
            label=f"{label} (model, not measured)",
        )
    ax_live.set(
        xlabel="batch size $B$",
        ylabel="examples per second (one epoch)",
        title="measured and predicted" if predicted else "live, on this machine",
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


def recorded_spread(result, *, dtype="float32", contenders=None, title=None) -> Figure:
    """Seconds per epoch of each contender on each size of one recorded benchmark, one
    panel per size (log axis): the median as a dot, the middle half of the timed epochs
    (quartiles) as a thick bar, the fastest to the slowest as a thin line: the spread of
    the measurement, not a bar from an arbitrary baseline. Titled with the hardware and
    date; an extrapolated contender (the loop on the large sizes) is marked with *."""
    recs = [
        r
        for r in result["records"]
        if r["dtype"] == dtype and (contenders is None or r["contender"] in contenders)
    ]
    sizes = list(dict.fromkeys(r["size"] for r in recs))
    names = list(dict.fromkeys(r["contender"] for r in recs))
    fig = Figure(figsize=(10, 1.2 + 0.32 * len(names) * 1.0), dpi=DPI, facecolor="white")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(sizes)), sharey=True))
    for ax, size in zip(axes, sizes):
        by = {r["contender"]: r for r in recs if r["size"] == size}
        for k, name in enumerate(names):
            r = by.get(name)
            sp = record_spread(r) if r else None
            if sp is None:
                continue
            y = len(names) - 1 - k
            ax.plot([sp["min"], sp["max"]], [y, y], "-", color=f"C{k % 10}", lw=1)
            ax.plot([sp["q1"], sp["q3"]], [y, y], "-", color=f"C{k % 10}", lw=5, alpha=0.6)
            ax.plot(sp["median"], y, "o", color=f"C{k % 10}", ms=6)
        ax.set_xscale("log")
        ax.set(xlabel="seconds per epoch", title=size)
        ax.grid(alpha=0.3, axis="x", which="both")
    labels = []
    for name in names:
        r = next(r for r in recs if r["contender"] == name)
        extra = any(x["extrapolated"] for x in recs if x["contender"] == name)
        labels.append(r["label"] + (" *" if extra else ""))
    axes[0].set_yticks(range(len(names)), labels[::-1], fontsize=8)
    fig.suptitle(title or f"recorded: {recorded_label(result)}, {dtype}", fontsize=10)
    fig.tight_layout()
    return fig


def allreduce_chart(result, *, title=None) -> Figure:
    """Chapter 14's recording (:func:`mlp_core.bench.allreduce.run`) against the number
    of ranks P: left, each rank's compute (solid) and the all-reduce (dashed) per step,
    for every network and batch size; right, the speed-up of a step, t(1) / t(P) with
    t = compute + all-reduce, beside the ideal P. Ranks beyond the cores
    (``oversubscribed``) are drawn hollow on a grey band: they are not speed figures."""
    blocks = result["per_P"]
    Ps = [b["P"] for b in blocks]
    over = [b["P"] for b in blocks if b.get("oversubscribed")]
    keys = list(dict.fromkeys((r["network"], r["B"]) for b in blocks for r in b["rows"]))
    rows = {(r["P"], r["network"], r["B"]): r for b in blocks for r in b["rows"]}
    fig = Figure(figsize=(10.5, 4.2), dpi=DPI, facecolor="white")
    ax_t, ax_s = fig.subplots(1, 2)
    for k, (net, B) in enumerate(keys):
        c = f"C{k % 10}"
        got = [P for P in Ps if (P, net, B) in rows]
        comp = [rows[P, net, B]["compute_s"] * 1e3 for P in got]
        comm = [rows[P, net, B]["allreduce_s"] * 1e3 for P in got]
        step = [a + b for a, b in zip(comp, comm)]
        fill = ["none" if P in over else c for P in got]
        ax_t.plot(got, comp, "-", color=c, label=f"{net}, B = {B}")
        ax_t.scatter(got, comp, facecolors=fill, edgecolors=c, zorder=3)
        multi = [i for i, P in enumerate(got) if P > 1]
        ax_t.plot([got[i] for i in multi], [comm[i] for i in multi], "--", color=c)
        ax_t.scatter(
            [got[i] for i in multi],
            [comm[i] for i in multi],
            marker="s",
            facecolors=[fill[i] for i in multi],
            edgecolors=c,
            zorder=3,
        )
        if got and got[0] == 1:
            ax_s.plot(got, [step[0] / t for t in step], "o-", color=c, mfc="none" if over else c)
    for ax in (ax_t, ax_s):
        if over:
            ax.axvspan(min(over) - 0.5, max(over) + 0.5, color="0.9", zorder=0)
        ax.set_xticks(Ps)
        ax.grid(alpha=0.3, which="both")
    ax_t.set(
        yscale="log",
        xlabel="processes P",
        ylabel="ms per step",
        title="compute (o, solid) and all-reduce (□, dashed)",
    )
    ax_s.plot(Ps, Ps, ":", color="grey", label="ideal: P")
    ax_s.set(
        xlabel="processes P",
        ylabel="speed-up of a step, t(1) / t(P)",
        title="speed-up" + (" (grey: more ranks than cores)" if over else ""),
    )
    ax_t.legend(fontsize=7)
    ax_s.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
