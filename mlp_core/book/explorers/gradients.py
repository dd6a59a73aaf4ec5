"""Chapters 6 to 9: the output error and the batched gradients, one row, one entry, one
example, one gate at a time.

* :func:`output_rows` (chapter 6): example i's row of Δ^L = A^L − Y beside its rows of
  A^L and Y (``batched.forward`` and ``batched.backward``).
* :func:`bias_column` (chapter 7): one column of Δ^L summed, example by example, into one
  entry of ∂J/∂b^L (``batched.bias_gradient`` on the first i rows, the rest zero).
* :func:`outer_products` (chapter 8): the per-example gradients a^{l-1} (δ^l)^T of
  ``single.backprop_single`` summed, i = 1 … m, until their mean equals
  ``batched.backprop``'s (1/m) (A^{l-1})^T Δ^l.
* :func:`relu_gate` (chapter 9): Δ^{l+1} (W^{l+1})^T, the gate σ'(Z^l) and their product
  Δ^l, as the activation and a shift of b^l change: ``batched.hidden_error`` with σ' = 1
  for the first, the activation's ``sigma_prime`` for the second, ``batched.backward``
  for the third.

Every setting is computed in float64 when the book is built and printed to 4 significant
digits (what reproduces on any BLAS kernel).
"""

from __future__ import annotations

import functools

import numpy as np

from ...core.activations import get_hidden_activation
from ...core.batched import backprop, backward, bias_gradient, forward, hidden_error
from ...core.data import load_digits, one_hot
from ...core.params import Params, default_init, init_params
from ...core.single import backprop_single
from ._base import Control, Explorer
from ._draw import CELL, TEXT_CELL, fmt, heatmap, matrix_rows

# ----------------------------------------------------------------------------- chapter 6

OUTPUT_START = 1000  # chapter 6's batch: digits 1000 … 1007


def output_tables(m: int = 8) -> dict:
    """``delta``: Δ^L (m, C) of digits :data:`OUTPUT_START` … + m − 1 as a heatmap;
    ``bars``: per example i and class c, a^L, y and Δ^L; ``readout`` per example."""
    ds = load_digits()
    rows = slice(OUTPUT_START, OUTPUT_START + m)
    X, labels = ds.X[rows], ds.labels[rows]
    Y = one_hot(labels, 10)
    params = _digits_batch(1)[2]
    cache = forward(X, params)
    A_L = cache.A[params.L]
    delta = backward(Y, params, cache)[2][params.L]
    bars, lines = [], []
    for i in range(m):
        for c in range(10):
            for what, v in (("a[L]", A_L[i, c]), ("y", Y[i, c]), ("Δ[L] = a − y", delta[i, c])):
                bars.append(dict(i=i + 1, c=c, what=what, v=float(fmt(v))))
        total = float(delta[i].sum())
        lines.append(
            dict(
                i=i + 1,
                readout=(
                    f"example {i + 1}: digit {labels[i]}, predicted {int(np.argmax(A_L[i]))}; "
                    f"Δ[L] = a − 1 = {fmt(delta[i, labels[i]])} at the label, a ≥ 0 elsewhere; "
                    "the row sums to " + ("0 (to round-off)" if abs(total) < 1e-12 else fmt(total))
                ),
            )
        )
    cells = matrix_rows(delta)
    for cell in cells:
        cell["c"] -= 1  # columns are the classes 0 … 9
    return {"delta": cells, "bars": bars, "readout": lines}


def _output_chart(data, p):
    import altair as alt

    m, C = 8, 10
    mat = alt.Chart(data["delta"])
    cells = heatmap(mat, "Δ[L] = A[L] − Y: row i, class c", "error", m, C, text=False)
    ring = (
        mat.transform_filter("datum.r === i")
        .mark_rect(fill=None, stroke="black", strokeWidth=2)
        .encode(x=alt.X("c:O"), y=alt.Y("r:O"))
    )
    bars = (
        alt.Chart(data["bars"])
        .transform_filter("datum.i === i")
        .mark_bar()
        .encode(
            x=alt.X("c:O", title="class c", axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("what:N", sort=["a[L]", "y", "Δ[L] = a − y"]),
            y=alt.Y("v:Q", title=None, scale=alt.Scale(domain=[-1, 1])),
            color=alt.Color(
                "what:N",
                sort=["a[L]", "y", "Δ[L] = a − y"],
                scale=alt.Scale(range=["#1f77b4", "#7b4fa6", "#c0282d"]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
        )
        .properties(width=360, height=220, title="row i: a[L], y and their difference")
    )
    line = (
        alt.Chart(data["readout"])
        .transform_filter("datum.i === i")
        .mark_text(align="left", fontSize=13)
        .encode(x=alt.value(0), y=alt.value(8), text="readout:N")
        .properties(width=560, height=16)
    )
    return alt.vconcat(alt.hconcat(alt.layer(cells, ring), bars, spacing=30), line)


def output_rows(i: int = 1) -> Explorer:
    """Chapter 6's explorer: which example's row of Δ^L = A^L − Y to read."""
    return Explorer(
        key="output-error",
        title="the output error, row by row",
        description=(
            f"The output error of 8 digits as an 8 by 10 heatmap with row {i} outlined; "
            f"beside it, example {i}'s predicted probabilities, its one-hot target and their "
            "difference, class by class."
        ),
        controls=(Control("i", "example i (row of Δ)", tuple(range(1, 9)), i),),
        frame=lambda **_: output_tables(),
        chart=_output_chart,
        grid=output_tables,
    )


# ----------------------------------------------------------------------------- chapter 7


@functools.lru_cache(maxsize=4)
def _digits_batch(m: int):
    """The first m digits, float64, one-hot, and the digits network's initial parameters."""
    ds = load_digits()
    X, Y = ds.X[:m], one_hot(ds.labels[:m], 10)
    return X, Y, init_params((64, 32, 10), seed=0)


def bias_tables(m: int = 8) -> dict:
    """``delta``: the entries of Δ^L (m, C) of the first m digits; ``sums``: per unit k
    and count i, (1/m) Σ_{i' ≤ i} Δ^L_{i'k} (``bias_gradient`` of Δ^L with rows after i
    set to 0) beside ∂J/∂b^L_k (``backprop``), as numbers and as the readout line."""
    X, Y, params = _digits_batch(m)
    L = params.L
    delta = backward(Y, params, forward(X, params))[2][L]
    _, db = backprop(X, Y, params)
    sums = []
    for i in range(1, m + 1):
        partial = bias_gradient(np.where(np.arange(m)[:, None] < i, delta, 0.0))
        for k in range(1, delta.shape[1] + 1):
            sums.append(
                dict(
                    k=k,
                    i=i,
                    partial=float(fmt(partial[k - 1])),
                    full=float(fmt(db[L][k - 1])),
                    readout=(
                        f"unit k = {k}: (1/m) × (rows 1 to {i} of column {k}) = "
                        f"{fmt(partial[k - 1])}; all m = {m} rows: db[{L}][{k}] = "
                        f"{fmt(db[L][k - 1])}"
                    ),
                )
            )
    return {"delta": matrix_rows(delta), "sums": sums}


def _bias_chart(data, p):
    import altair as alt

    m = 8
    C = 10
    mat = alt.Chart(data["delta"]).transform_calculate(inrow="datum.r <= i", incol="datum.c === k")
    cells = heatmap(mat, "Δ[L] (m, C): row i is example i, column k is unit k", "error", m, C)
    ring = (
        mat.transform_filter("datum.incol && datum.inrow")
        .mark_rect(fill=None, stroke="black", strokeWidth=2)
        .encode(x=alt.X("c:O"), y=alt.Y("r:O"))
    )
    fade = (
        mat.transform_filter("!datum.inrow")
        .mark_rect(fill="white", opacity=0.7)
        .encode(x=alt.X("c:O"), y=alt.Y("r:O"))
    )
    left = alt.layer(cells, fade, ring)
    sums = alt.Chart(data["sums"]).transform_filter("datum.i === i")
    bars = sums.mark_bar().encode(
        x=alt.X("k:O", title="unit k", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("full:Q", title="db[L]"),
        color=alt.condition("datum.k === k", alt.value("#2a9d3a"), alt.value("#b7dfbe")),
    )
    partial = (
        sums.transform_filter("datum.k === k")
        .mark_tick(color="black", thickness=3, size=22)
        .encode(x="k:O", y="partial:Q")
    )
    right = alt.layer(bars, partial).properties(
        width=C * CELL, height=m * TEXT_CELL[1], title="db[L]; black: the sum so far"
    )
    line = (
        sums.transform_filter("datum.k === k")
        .mark_text(align="left", fontSize=13)
        .encode(x=alt.value(0), y=alt.value(8), text="readout:N")
        .properties(width=560, height=16)
    )
    return alt.vconcat(alt.hconcat(left, right, spacing=30), line)


def bias_column(m: int = 8, k: int = 4, i: int = 3) -> Explorer:
    """Chapter 7's explorer: the unit k and how many rows i of its column are summed."""
    tables = functools.partial(bias_tables, m)
    return Explorer(
        key="bias-column",
        title="one column of Δ summed into one bias entry",
        description=(
            f"The output error Δ[L] of {m} digits as a heatmap; column {k} (unit {k}), rows "
            f"1 to {i}, summed and divided by m, beside the bias gradient db[L], whose entry "
            f"{k} that sum reaches when all {m} rows are in."
        ),
        controls=(
            Control("k", "unit k (column of Δ)", tuple(range(1, 11)), k),
            Control("i", "rows summed, i", tuple(range(1, m + 1)), i),
        ),
        frame=lambda **_: tables(),
        chart=_bias_chart,
        grid=tables,
    )


# ----------------------------------------------------------------------------- chapter 8

SMALL = (5, 4, 3)  # h: no two dimensions equal, so a wrong transpose shows
SMALL_M = 7


@functools.lru_cache(maxsize=2)
def _small_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((SMALL_M, SMALL[0]))
    Y = one_hot(rng.integers(0, SMALL[-1], SMALL_M), SMALL[-1])
    return X, Y, init_params(SMALL, seed=seed)


def outer_tables(l: int = 2) -> dict:
    """``term``: example i's ∂ℓ_i/∂W^l = a^{l-1} (δ^l)^T (``backprop_single``); ``sum``:
    (1/m) Σ_{i' ≤ i} of them; ``target``: ∂J/∂W^l (``backprop``), all on the target's
    scale; ``readout``: the largest |sum − target| after i examples."""
    X, Y, params = _small_problem()
    m = X.shape[0]
    terms = [backprop_single(X[i][:, None], Y[i][:, None], params)[0][l] for i in range(m)]
    target = backprop(X, Y, params)[0][l]
    lim = float(np.max(np.abs(target)))
    term_lim = max(float(np.max(np.abs(t))) for t in terms)
    out = {"term": [], "sum": [], "target": matrix_rows(target, lim), "readout": []}
    running = np.zeros_like(target)
    for i in range(m + 1):
        if i > 0:
            running = running + terms[i - 1] / m
            out["term"] += matrix_rows(terms[i - 1], term_lim, i=i)
        out["sum"] += matrix_rows(running, lim, i=i)
        gap = float(np.max(np.abs(running - target)))
        gap_text = "0 to round-off (below 1e-12)" if gap < 1e-12 else fmt(gap)
        out["readout"].append(
            dict(
                i=i,
                readout=f"after {i} of {m} examples: largest |sum − dW[{l}]| = {gap_text}",
            )
        )
    return out


def _outer_chart(data, p, l=2):
    import altair as alt

    hp, hl = SMALL[l - 1], SMALL[l]
    term = heatmap(
        alt.Chart(data["term"]).transform_filter("datum.i === i"),
        f"example i: a[{l - 1}] δ[{l}]ᵀ",
        "grad",
        hp,
        hl,
    )
    running = heatmap(
        alt.Chart(data["sum"]).transform_filter("datum.i === i"),
        "(1/m) × the sum over examples 1…i",
        "grad",
        hp,
        hl,
    )
    target = heatmap(
        alt.Chart(data["target"]), f"dW[{l}] = (1/m) A[{l - 1}]ᵀ Δ[{l}]", "grad", hp, hl
    )
    line = (
        alt.Chart(data["readout"])
        .transform_filter("datum.i === i")
        .mark_text(align="left", fontSize=13)
        .encode(x=alt.value(0), y=alt.value(8), text="readout:N")
        .properties(width=560, height=16)
    )
    return alt.vconcat(alt.hconcat(term, running, target, spacing=40), line)


def outer_products(i: int = 2) -> Explorer:
    """Chapter 8's explorer: how many examples' outer products are summed."""
    return Explorer(
        key="outer-products",
        title="outer products summed example by example until they equal Aᵀ Δ",
        description=(
            f"For h = {SMALL} and m = {SMALL_M}: example {i}'s outer product a[1] δ[2]ᵀ "
            f"(4 by 3), the mean of the first {i} of them so far, and the batched "
            "gradient dW[2] = (1/m) A[1]ᵀ Δ[2], which the sum reaches at i = m."
        ),
        controls=(Control("i", "examples summed, i", tuple(range(0, SMALL_M + 1)), i),),
        frame=lambda **_: outer_tables(),
        chart=_outer_chart,
        grid=outer_tables,
    )


# ----------------------------------------------------------------------------- chapter 9

GATE_SIZES = (5, 8, 3)
SHIFTS = (-1.0, -0.5, 0.0, 0.5, 1.0)
GATE_ACTIVATIONS = ("relu", "sigmoid", "tanh")


def gate_frame(activation="relu", shift=0.0) -> dict:
    """For h = :data:`GATE_SIZES` with b^1 shifted by ``shift``: ``back`` = Δ^2 (W^2)^T
    (``hidden_error`` with σ' = 1), ``gate`` = σ'(Z^1), ``delta`` = Δ^1 (``backward``),
    and the readout: how many entries the gate closes."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((SMALL_M, GATE_SIZES[0]))
    Y = one_hot(rng.integers(0, GATE_SIZES[-1], SMALL_M), GATE_SIZES[-1])
    p0 = init_params(GATE_SIZES, seed=0, scheme=default_init(activation))
    params = Params(dict(p0.W), {1: p0.b[1] + shift, 2: p0.b[2]})
    cache = forward(X, params, activation)
    delta = backward(Y, params, cache, activation)[2]
    back = hidden_error(delta[2], params.W[2], cache.Z[1], np.ones_like)
    gate = get_hidden_activation(activation).sigma_prime(cache.Z[1])
    closed = int(np.sum(gate == 0))
    total = gate.size
    readout = (
        f"{activation}, b[1] shifted by {shift:+g}: σ'(Z[1]) is 0 at {closed} of {total} "
        f"entries (Δ[1] is 0 there); largest σ' = {fmt(gate.max())}, smallest = {fmt(gate.min())}"
    )
    return {
        "back": matrix_rows(back, text=False),
        "gate": matrix_rows(gate, 1.0, text=False),
        "delta": matrix_rows(delta[1], float(np.max(np.abs(back))), text=False),
        "readout": [dict(readout=readout)],
    }


def _gate_chart(data, p):
    import altair as alt

    m, h = SMALL_M, GATE_SIZES[1]

    def table(name):
        return alt.Chart(data[name]).transform_filter(
            "datum.activation === activation && datum.shift === shift"
        )

    back = heatmap(table("back"), "Δ[2] W[2]ᵀ (m, h1)", "error", m, h, text=False)
    gate = heatmap(table("gate"), "⊙ σ'(Z[1]): the gate", "data", m, h, text=False)
    delta = heatmap(table("delta"), "= Δ[1]", "error", m, h, text=False)
    line = (
        table("readout")
        .mark_text(align="left", fontSize=13)
        .encode(x=alt.value(0), y=alt.value(8), text="readout:N")
        .properties(width=560, height=16)
    )
    return alt.vconcat(alt.hconcat(back, gate, delta, spacing=30), line)


def relu_gate(activation="relu", shift=0.0) -> Explorer:
    """Chapter 9's explorer: the activation and a shift of b^1 open and close the gate."""
    return Explorer(
        key="relu-gate",
        title="the gate σ'(Z) on Δ Wᵀ",
        description=(
            f"For h = {GATE_SIZES} and m = {SMALL_M}, {activation}, b[1] shifted by "
            f"{shift:g}: the back-propagated Δ[2] W[2]ᵀ, the gate σ'(Z[1]) and their "
            "entrywise product Δ[1], as heatmaps; where the gate is 0, Δ[1] is 0."
        ),
        controls=(
            Control("activation", "activation σ", GATE_ACTIVATIONS, activation, kind="radio"),
            Control(
                "shift",
                "shift of b[1]",
                SHIFTS,
                shift,
                kind="select",
                labels=tuple(f"{s:+g}" for s in SHIFTS),
            ),
        ),
        frame=gate_frame,
        chart=_gate_chart,
    )
