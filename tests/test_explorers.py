"""The explorers: every number they show is the library's, and their faces carry it.

The browser side (controls moved with the keyboard in Chromium, the shape rule over a grid
of sizes) is tests/book/test_explorers.py.
"""

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("altair")
pytest.importorskip("vl_convert")

from mlp_core.bench import experiments, gpu_model  # noqa: E402
from mlp_core.bench.allreduce import ring_allreduce_seconds  # noqa: E402
from mlp_core.book import explorers  # noqa: E402
from mlp_core.book.diagrams import shape_table  # noqa: E402
from mlp_core.book.explorers import Control, curves, gradients, ring, speed  # noqa: E402
from mlp_core.book.explorers import network_shapes as shapes  # noqa: E402
from mlp_core.book.explorers.sphinx_ext import MARKER, _per_page  # noqa: E402
from mlp_core.core import batched  # noqa: E402
from mlp_core.core.activations import relu_prime  # noqa: E402
from mlp_core.core.errors import ConfigError  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- controls


def test_control_refuses_a_default_that_is_not_a_setting():
    with pytest.raises(ConfigError, match="not a setting"):
        Control("B", "batch size", (1, 8), 4)


def test_range_control_needs_evenly_spaced_integers():
    with pytest.raises(ConfigError, match="evenly spaced"):
        Control("m", "m", (1, 2, 4), 1)
    assert Control("m", "m", (0, 2, 4), 2).binding()["step"] == 2


# ----------------------------------------------------------------------------- shapes


def resolve(symbol, m, sizes):
    """What the page's lookup does: the size a symbol names."""
    return {"m": m, "one": 1}.get(symbol) or sizes[int(symbol[1:])]


@pytest.mark.parametrize("sizes", [(5, 4, 3), (784, 256, 10), (5, 4, 6, 3), (1, 1, 1, 1)])
@pytest.mark.parametrize("m", [1, 7, 256])
def test_symbolic_shapes_resolve_to_shape_table(sizes, m):
    L = len(sizes) - 1
    expected = {(r["l"], k): r[k] for r in shape_table(sizes, m) for k, *_ in shapes.COLUMNS}
    got = {}
    for row in shapes.symbolic_tables()["cells"]:
        if row["L"] == L:
            dims = [row["d0"]] + ([row["d1"]] if row["d1"] else [])
            got[(row["l"], row["key"])] = tuple(resolve(d, m, sizes) for d in dims)
    assert got == expected


def test_symbolic_stack_is_the_forward_chain():
    stack = [r for r in shapes.symbolic_tables()["stack"] if r["L"] == 3]
    names = [r["name"] for r in sorted(stack, key=lambda r: r["k"])]
    assert names == ["A[0]", "W[1]", "A[1]", "W[2]", "A[2]", "W[3]", "A[3]"]
    sizes, m = (5, 4, 6, 3), 7
    dims = {r["name"]: (resolve(r["d0"], m, sizes), resolve(r["d1"], m, sizes)) for r in stack}
    assert dims["A[0]"] == (7, 5) and dims["W[2]"] == (4, 6) and dims["A[3]"] == (7, 3)


# ----------------------------------------------------------------------------- chapter 11


def test_grid_covers_every_setting():
    grid = curves.load_grid()
    assert {(r["B"], r["eta"]) for r in grid["runs"]} == {
        (B, eta) for B in curves.BATCH_SIZES for eta in curves.ETAS
    }
    assert grid["meta"]["settings"]["max_epochs"] == curves.MAX_EPOCHS
    for r in grid["runs"]:
        n = len(r["train_loss"])
        assert all(len(r[k]) == n for k in curves.SERIES)
        assert (n == curves.MAX_EPOCHS) == (r["diverged"] is None)


@pytest.mark.parametrize(("B", "eta"), [(32, 0.1), (256, 0.5), (8, 0.02), ("full", 2.0)])
def test_recorded_runs_recompute_exactly(B, eta):
    """A run of 3 epochs is the start of the stored run (same seed, same batches)."""
    stored = curves.find_run(curves.load_grid(), B, eta)
    fresh = curves.run_record(B, eta, epochs=3)
    for k in curves.SERIES:
        assert fresh[k] == stored[k][:3], k


def test_a_diverged_run_is_recorded_with_the_library_message():
    stored = curves.find_run(curves.load_grid(), "full", 5.0)
    fresh = curves.run_record("full", 5.0)
    assert stored["diverged"] is not None and fresh["diverged"] == stored["diverged"]
    assert fresh["train_loss"] == stored["train_loss"]
    assert "stopped this run" in curves.short_reason(stored["diverged"])


def test_the_comparison_can_fail():
    """Negative control: another seed gives other numbers than the recording."""
    stored = curves.find_run(curves.load_grid(), 32, 0.1)
    other = curves.run_record(32, 0.1, epochs=3, seed=1)
    assert other["train_loss"] != stored["train_loss"][:3]


def test_find_run_names_the_grid_when_a_setting_is_missing():
    with pytest.raises(ConfigError, match="no run for B = 7"):
        curves.find_run(curves.load_grid(), 7, 0.1)


def test_readout_uses_the_stored_numbers():
    rec = curves.find_run(curves.load_grid(), 32, 0.1)
    line = curves.readout(rec, 20)
    assert line.startswith("epoch 20: ") and repr(rec["val_acc"][19]) in line


# ----------------------------------------------------------------------------- chapters 6–9


def test_output_rows_are_a_minus_y():
    tables = gradients.output_tables()
    ds = gradients.load_digits()
    labels = ds.labels[gradients.OUTPUT_START : gradients.OUTPUT_START + 8]
    for i in range(1, 9):
        row = {(b["c"], b["what"]): b["v"] for b in tables["bars"] if b["i"] == i}
        for c in range(10):
            a, y, d = (row[c, w] for w in ("a[L]", "y", "Δ[L] = a − y"))
            assert y == (1.0 if c == labels[i - 1] else 0.0)
            assert d == pytest.approx(a - y, abs=2e-4)  # each printed to 4 digits
            assert (d < 0) == (c == labels[i - 1])  # negative only at the label
        line = tables["readout"][i - 1]["readout"]
        assert f"digit {labels[i - 1]}" in line and line.endswith("0 (to round-off)")


def test_bias_column_ends_at_the_library_bias_gradient():
    m = 8
    X, Y, params = gradients._digits_batch(m)
    _, db = batched.backprop(X, Y, params)
    delta = batched.backward(Y, params, batched.forward(X, params))[2][params.L]
    sums = gradients.bias_tables(m)["sums"]
    for k in range(1, 11):
        last = next(r for r in sums if r["k"] == k and r["i"] == m)
        assert last["partial"] == last["full"] == float(gradients.fmt(db[params.L][k - 1]))
        first = next(r for r in sums if r["k"] == k and r["i"] == 1)
        assert first["partial"] == float(gradients.fmt(delta[0, k - 1] / m))  # one row alone


def test_outer_products_sum_to_the_batched_gradient():
    tables = gradients.outer_tables()
    X, Y, params = gradients._small_problem()
    cache = batched.forward(X, params)
    delta = batched.backward(Y, params, cache)[2]
    lines = {r["i"]: r["readout"] for r in tables["readout"]}
    assert "0 to round-off" in lines[gradients.SMALL_M]
    assert all("round-off" not in lines[i] for i in range(gradients.SMALL_M))  # control
    # example 3's term is the outer product of row 3 of A^1 and of Δ^2
    term = [r for r in tables["term"] if r["i"] == 3]
    outer = np.outer(cache.A[1][2], delta[2][2])
    assert [r["text"] for r in term] == [gradients.fmt(v) for v in outer.ravel()]


@pytest.mark.parametrize("shift", gradients.SHIFTS)
def test_gate_counts_the_closed_entries(shift):
    frame = gradients.gate_frame("relu", shift)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((gradients.SMALL_M, gradients.GATE_SIZES[0]))
    p = gradients.init_params(gradients.GATE_SIZES, seed=0)
    Z1 = X @ p.W[1] + p.b[1] + shift
    closed = int(np.sum(relu_prime(Z1) == 0))
    assert f"is 0 at {closed} of {Z1.size} entries" in frame["readout"][0]["readout"]
    # Δ^1 is zero exactly where the gate is closed
    for g, d in zip(frame["gate"], frame["delta"]):
        if g["scaled"] == 0:
            assert d["scaled"] == 0


def test_sigmoid_never_closes_the_gate():
    assert "is 0 at 0 of" in gradients.gate_frame("sigmoid", -1.0)["readout"][0]["readout"]


# ----------------------------------------------------------------------------- chapters 12–14


def part3_recording(peak=70.0, formula=160.0, sweep_m=2048):
    """A recording shaped like ``make record``'s part3-cpu.json, every number different."""
    rows = [
        dict(m=m, gflops=g, intensity=experiments.matmul_intensity(784, 256, m))
        for m, g in ((1, 11.0), (2, 23.0), (4, 31.0), (8, 47.0), (16, 61.0))
    ]
    speed_rows = [
        dict(batch_size=B, seconds_per_epoch=s, examples_per_s=sweep_m / s)
        for B, s in ((1, 0.9), (4, 0.3), (16, 0.08), (64, 0.05))
    ]
    return dict(
        meta=dict(cpu="Test CPU", cores=3),
        peak_gflops=dict(float32=formula),
        gemm=dict(n=1024, gflops=dict(float32=peak)),
        roofs=dict(memory=dict(gbs=13.0), L2=dict(gbs=41.0), L3=dict(gbs=29.0)),
        matmul_rates=dict(h_in=784, h_out=256, rows=rows),
        speed_vs_batch=dict(
            m=sweep_m, sizes=[784, 256, 128, 10], batch_sizes=[1, 4, 16, 64], rows=speed_rows
        ),
    )


def test_roofline_shows_the_recording_and_the_library_roofs():
    rec = part3_recording()
    t = speed.roofline_tables(rec)
    assert [(p["m"], p["gflops"]) for p in t["points"]] == [
        (r["m"], r["gflops"]) for r in rec["matmul_rates"]["rows"]
    ]
    for row in rec["matmul_rates"]["rows"]:
        m, I = row["m"], row["intensity"]
        first, second = (r["text"] for r in t["readout"] if r["m"] == m)
        assert f"measured {speed.fmt(row['gflops'])} GFLOP/s" in first
        assert f"{100 * row['gflops'] / 70.0:.0f}% of the measured peak" in first
        for level, name in (("memory", "main memory"), ("L2", "L2"), ("L3", "L3")):
            roof = experiments.roofline(70.0, rec["roofs"][level]["gbs"], I)
            assert f"{name} {speed.fmt(roof)}" in second
        model = next(p["model"] for p in t["points"] if p["m"] == m)
        assert model == float(speed.fmt(experiments.roofline(70.0, 13.0, I)))
    # every roof is flat at the measured GEMM rate and the dashed line is the formula's peak
    assert {r["gflops"] for r in t["roofs"] if r["k"] == 2} == {70.0}
    assert {r["gflops"] for r in t["peak"]} == {160.0}


def test_roofline_reads_the_book_recording():
    """The explorer of chapter 12 shows fig-12-roofline's numbers: the recorded rates, the
    measured GEMM rate as the roof, the recorded bandwidths as the slopes."""
    from mlp_core.bench import record

    rec = record.load_recording(ROOT / "book" / "data" / "part3-cpu.json")
    t = speed.roofline_tables(rec)
    four = lambda x: float(speed.fmt(x))  # noqa: E731
    assert [(p["m"], p["I"], p["gflops"]) for p in t["points"]] == [
        (r["m"], four(r["intensity"]), four(r["gflops"])) for r in rec["matmul_rates"]["rows"]
    ]
    peak = rec["gemm"]["gflops"]["float32"]
    assert {r["gflops"] for r in t["roofs"] if r["k"] == 2} == {four(peak)}
    for level, r in rec["roofs"].items():
        name = "main memory" if level == "memory" else level
        foot = next(x for x in t["roofs"] if x["roof"].startswith(name + ",") and x["k"] == 0)
        assert foot["gflops"] == four(r["gbs"] * foot["I"]), level


def test_roofline_readout_follows_the_recording():
    """Negative control: another recording's rate gives another readout line."""
    rec = part3_recording()
    other = part3_recording()
    other["matmul_rates"]["rows"][0]["gflops"] = 12.0
    line = next(r["text"] for r in speed.roofline_tables(rec)["readout"] if r["m"] == 1)
    changed = next(r["text"] for r in speed.roofline_tables(other)["readout"] if r["m"] == 1)
    assert line != changed


def test_speed_explorers_time_nothing(monkeypatch):
    """Built from a recording, the explorers of chapters 12 and 13 never run a timing."""

    def refuse(*args, **kwargs):
        raise AssertionError("an explorer timed something while the book was built")

    for name in ("time_call", "gemm_rate", "copy_bandwidth", "matmul_rates", "speed_vs_batch"):
        monkeypatch.setattr(experiments, name, refuse)
    rec = part3_recording()
    assert explorers.roofline(rec).all_tables()["points"]
    assert explorers.launch_cost(rec).all_tables()["curves"]
    # negative control: the guard does catch a timing
    with pytest.raises(AssertionError, match="timed"):
        experiments.gemm_rate()


def test_launch_cost_is_the_gpu_model_against_the_recorded_cpu():
    rec = part3_recording()
    sweep = rec["speed_vs_batch"]
    t = speed.launch_tables(rec)
    sizes = tuple(sweep["sizes"])
    for B in sweep["batch_sizes"]:
        lines = [r["text"] for r in t["readout"] if r["B"] == B]
        cpu = next(r for r in sweep["rows"] if r["batch_size"] == B)
        assert f"the CPU's epoch {speed.fmt(cpu['seconds_per_epoch'] * 1e3)} ms" in lines[0]
        for line, graph in ((lines[1], False), (lines[2], True)):
            e = gpu_model.predict_epoch(sweep["m"], sizes, B, gpu_model.H100_SXM, graph=graph)
            for key, word in (("host_s", "host"), ("device_s", "device"), ("seconds", "epoch")):
                assert f"{word} {speed.fmt(e[key] * 1e3)} ms" in line
    # the curves: the model at every power of two, the CPU at the recorded batch sizes
    curves = t["curves"]
    cpu_B = {r["B"] for r in curves if r["what"] == speed.CPU_SERIES}
    assert cpu_B == set(sweep["batch_sizes"])
    assert {r["B"] for r in curves if r["what"] != speed.CPU_SERIES} == {1, 2, 4, 8, 16, 32, 64}
    # the crossover is the library's, and the readout says it
    for path, graph in (("eager", False), ("graph", True)):
        model = [
            dict(batch_size=B, **gpu_model.predict_epoch(sweep["m"], sizes, B, graph=graph))
            for B in sweep["batch_sizes"]
        ]
        assert t["crossover"][path] == experiments.crossover_batch(sweep["rows"], model)
    assert t["readout"][3]["text"] == (
        f"predicted crossover: eager from B = {t['crossover']['eager']}, "
        f"CUDA graph from B = {t['crossover']['graph']}"
    )
    # negative control: the graph removes the host's calls, so its host time is not eager's
    eager_host = [r["ms"] for r in curves if r["path"] == "eager" and "host" in r["what"]]
    graph_host = [r["ms"] for r in curves if r["path"] == "graph" and "host" in r["what"]]
    assert eager_host != graph_host and len(set(graph_host)) == 1


def test_launch_cost_reads_the_book_recording():
    """The chapter's recording gives the chapter's numbers: the same crossover as
    ``bench.crossover_batch`` on the model's rows, the same CPU epochs."""
    from mlp_core.bench import record

    rec = record.load_recording(ROOT / "book" / "data" / "part3-cpu.json")
    t = speed.launch_tables(rec)
    sweep = rec["speed_vs_batch"]
    eager = [
        dict(batch_size=B, **gpu_model.predict_epoch(sweep["m"], tuple(sweep["sizes"]), B))
        for B in sweep["batch_sizes"]
    ]
    assert t["crossover"]["eager"] == experiments.crossover_batch(sweep["rows"], eager)
    shown = {r["B"]: r["ms"] for r in t["curves"] if r["what"] == speed.CPU_SERIES}
    assert shown == {
        r["batch_size"]: float(speed.fmt(r["seconds_per_epoch"] * 1e3)) for r in sweep["rows"]
    }


@pytest.mark.parametrize("P", ring.P_VALUES)
def test_ring_ends_with_the_sum_on_every_rank(P):
    states, buffers, total = ring.ring_states(P)
    assert len(states) == 2 * (P - 1) + 1
    final = states[-1]
    assert final["held"].all()
    np.testing.assert_allclose(final["values"], np.broadcast_to(total, buffers.shape), rtol=1e-12)
    # negative control: one step before the end, some chunk is still incomplete
    assert not states[-2]["held"].all()
    # after the reduce-scatter, rank r holds the complete chunk (r + 1) mod P
    mid = states[P - 1]["held"]
    assert all(mid[r, (r + 1) % P].all() for r in range(P))


def test_ring_time_is_the_library_model_at_the_end():
    model = ring.recorded_model()
    tables = ring.ring_tables(**model)
    P = 4
    last = next(r for r in tables["readout"] if r["P"] == P and r["s"] == 2 * (P - 1))
    total = ring_allreduce_seconds(model["nbytes"], P, model["alpha"], model["beta"])
    assert last["readout"].endswith(f"{speed.fmt(total * 1e6)} µs of {speed.fmt(total * 1e6)} µs")


# ----------------------------------------------------------------------------- the faces


def test_html_embeds_a_vega_spec_bound_to_labelled_controls():
    ex = explorers.outer_products()
    html = ex.html()
    assert 'class="mlp-explorer"' in html and "</script>" not in html.split("<script")[1][:-9]
    spec = json.loads(re.search(r'mlp-explorer-spec">(.*)</script>', html).group(1))
    bound = {s["name"]: s["bind"] for s in spec["signals"] if "bind" in s}
    assert bound == {
        "i": {"input": "range", "min": 0, "max": 7, "step": 1, "name": "examples summed, i"}
    }
    assert spec["description"] == ex.description


def test_live_figure_carries_the_three_faces():
    bundle = explorers.relu_gate().live()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert 'class="mlp-explorer"' in bundle["text/html"]
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)
    assert bundle["text/plain"].startswith("Explorer: ")


def test_widget_redraws_with_the_library():
    ex = explorers.bias_column()
    box = ex.widget()
    k, i = box.children[0].children
    out = box.children[1]
    before = out.outputs[0]["data"]["image/svg+xml"]
    assert out.outputs[1]["text"] == "unit k (column of Δ) = 4; rows summed, i = 3\n"
    k.value = 5
    after = out.outputs[0]["data"]["image/svg+xml"]
    expected = next(r for r in gradients.bias_tables()["sums"] if r["k"] == 5 and r["i"] == 3)
    assert before != after and "db[2][5] = " + gradients.fmt(expected["full"]) in after


class _App:
    def __init__(self):
        self.js, self.css = [], []

    def add_js_file(self, name, **kw):
        self.js.append(name)

    def add_css_file(self, name, **kw):
        self.css.append(name)


def test_sphinx_extension_loads_vega_only_where_there_is_an_explorer():
    app = _App()
    _per_page(app, "book/01-notation", "page.html", {"body": "<p>no explorer</p>"}, None)
    assert app.js == [] and app.css == []
    _per_page(app, "book/07", "page.html", {"body": f"<div {MARKER}></div>"}, None)
    assert app.js == ["explorers/vega.min.js", "explorers.js"] and app.css == ["explorers.css"]
