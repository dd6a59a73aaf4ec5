"""Chapters 12 and 13: why batches are fast, as the batch grows, from the recordings.

Both explorers read the recording their chapter's figures read (``book/data/part3-cpu.json``,
written by ``make record``; :func:`mlp_core.bench.record.load_recording`), so a figure and
its explorer agree number for number, and nothing is timed when the book is built.

* :func:`roofline` (chapter 12): the recorded roofline (the measured GEMM rate as the
  roof, main memory's and the caches' measured bandwidths as slopes, the peak from the
  processor's data) and the measured rate of Z = A W for each recorded m, the point for
  the chosen m marked beside where the model (``experiments.roofline``) puts it.
* :func:`launch_cost` (chapter 13): the recorded CPU epoch against the batch size B
  beside the GPU cost model (:func:`mlp_core.bench.gpu_model.predict_epoch`): the host's
  time, the device's time and the epoch, eagerly and as a CUDA graph, and the predicted
  crossover (``experiments.crossover_batch``).
"""

from __future__ import annotations

from ...bench import experiments, gpu_model
from ._base import Control, Explorer
from ._draw import fmt

# ----------------------------------------------------------------------------- chapter 12

MEASURED = "#1f77b4"  # the measured points, as in fig-12-roofline (matplotlib's C0)
NOW = "#c0282d"  # the chosen setting
CACHE_LEVELS = ("L2", "L3")  # the cache roofs drawn, lowest level first


def _roof_rows(name: str, peak: float, gbs: float, lo: float, hi: float) -> list[dict]:
    """A roof min(peak, gbs · I) over [lo, hi] as its corners (straight on log-log axes):
    the slope's foot, the ridge point (where the slope meets the peak), the roof's end."""
    ridge = min(max(peak / gbs, lo), hi)
    return [
        dict(roof=name, k=k, I=float(fmt(i)), gflops=float(fmt(experiments.roofline(peak, gbs, i))))
        for k, i in enumerate((lo, ridge, hi))
    ]


def roofline_tables(part3: dict) -> dict:
    """From a recording of ``make record`` (``part3-cpu.json``): ``roofs``, the memory and
    cache roofs under the measured GEMM rate; ``peak``, the peak from the processor's data;
    ``points``, per recorded m its intensity, its measured rate and the model's roof there;
    ``readout``, two lines per m."""
    peak = part3["gemm"]["gflops"]["float32"]
    roofs = part3["roofs"]
    rows = part3["matmul_rates"]["rows"]
    lo = min(0.01, min(r["intensity"] for r in rows) / 2)
    hi = max(1000.0, max(r["intensity"] for r in rows) * 4)
    levels = [("memory", "main memory")] + [(c, c) for c in CACHE_LEVELS if c in roofs]
    roof_rows = []
    for key, name in levels:
        label = f"{name}, {fmt(roofs[key]['gbs'])} GB/s"
        roof_rows += _roof_rows(label, peak, roofs[key]["gbs"], lo, hi)
    points, readout = [], []
    for r in rows:
        m, I, g = r["m"], r["intensity"], r["gflops"]
        model = float(experiments.roofline(peak, roofs["memory"]["gbs"], I))
        points.append(dict(m=m, I=float(fmt(I)), gflops=float(fmt(g)), model=float(fmt(model))))
        at = ", ".join(
            f"{name} {fmt(experiments.roofline(peak, roofs[key]['gbs'], I))}"
            for key, name in levels
        )
        readout += [
            dict(
                m=m,
                line=1,
                text=(
                    f"m = {m}: intensity {fmt(I)} FLOP/byte, measured {fmt(g)} GFLOP/s, "
                    f"{100 * g / peak:.0f}% of the measured peak"
                ),
            ),
            dict(m=m, line=2, text=f"the roofs at this intensity: {at} GFLOP/s"),
        ]
    formula = part3["peak_gflops"]["float32"]
    return {
        "roofs": roof_rows,
        "peak": [
            dict(
                I=float(fmt(i)),
                gflops=float(fmt(formula)),
                text=f"peak from the data, {fmt(formula)} GFLOP/s",
            )
            for i in (lo, hi)
        ],
        "points": points,
        "readout": readout,
    }


def _readout(data, key: str, lines: int, width: int = 560):
    """The readout under a chart: the chosen setting's lines, one text mark each."""
    import altair as alt

    return (
        alt.Chart(data)
        .transform_filter(f"datum.{key} === {key}")
        .mark_text(align="left", baseline="middle", fontSize=13)
        .encode(
            x=alt.value(0),
            y=alt.Y("line:O", axis=None, scale=alt.Scale(domain=list(range(1, lines + 1)))),
            text="text:N",
        )
        .properties(width=width, height=18 * lines)
    )


def _roofline_chart(data, p):
    import altair as alt

    x = alt.X("I:Q", scale=alt.Scale(type="log"), title="arithmetic intensity (FLOP/byte)")
    y = alt.Y("gflops:Q", scale=alt.Scale(type="log"), title="GFLOP/s")
    names = list(dict.fromkeys(r["roof"] for r in data["roofs"].values))
    roofs = (
        alt.Chart(data["roofs"])
        .mark_line()
        .encode(
            x=x,
            y=y,
            order="k:Q",
            color=alt.Color(
                "roof:N",
                scale=alt.Scale(domain=names, range=["black"] + ["#888888"] * (len(names) - 1)),
                legend=alt.Legend(title="roof (measured bandwidth)", orient="bottom"),
            ),
            strokeDash=alt.StrokeDash(
                "roof:N",
                scale=alt.Scale(domain=names, range=[[1, 0], [6, 2], [2, 2]][: len(names)]),
                legend=None,
            ),
            strokeWidth=alt.condition(alt.datum.roof == names[0], alt.value(2.2), alt.value(1.2)),
        )
    )
    peak = alt.Chart(data["peak"])
    formula = peak.mark_line(color="#d62728", strokeDash=[5, 3], strokeWidth=1).encode(x=x, y=y)
    formula_text = (
        peak.transform_filter("datum.I < 1")
        .mark_text(align="left", dy=-8, fontSize=11, color="#d62728")
        .encode(x=x, y=y, text="text:N")
    )
    pts = alt.Chart(data["points"])
    trail = pts.mark_line(point=True, color=MEASURED).encode(x=x, y=y, order="m:Q")
    chosen = pts.transform_filter("datum.m === m")
    now = chosen.mark_point(size=170, filled=True, color=NOW).encode(x=x, y=y)
    model = chosen.mark_point(size=170, filled=False, strokeWidth=2, color=NOW).encode(
        x=x, y=alt.Y("model:Q")
    )
    label = (
        chosen.transform_calculate(mtext="'m = ' + datum.m + ', measured'")
        .mark_text(dx=12, dy=-10, align="left", fontSize=12)
        .encode(x=x, y=y, text="mtext:N")
    )
    model_label = chosen.mark_text(dx=12, dy=10, align="left", fontSize=12, color=NOW).encode(
        x=x, y=alt.Y("model:Q"), text=alt.value("model: on the roofline")
    )
    plot = alt.layer(
        roofs, formula, formula_text, trail, model, now, label, model_label
    ).properties(width=520, height=300)
    return alt.vconcat(plot, _readout(data["readout"], "m", 2))


def roofline(part3: dict, m: int = 1) -> Explorer:
    """Chapter 12's explorer: m, the rows of A, moves the measured point of Z = A W along
    (under) the roofline recorded in ``part3`` (``book/data/part3-cpu.json``, the
    recording of fig-12-roofline). The filled point is measured; the hollow one is where
    the model min(peak, bandwidth · I) of main memory puts it."""
    rates = part3["matmul_rates"]
    tables = roofline_tables(part3)
    m_values = tuple(r["m"] for r in rates["rows"])
    meta = part3["meta"]
    return Explorer(
        key="roofline",
        title="the roofline, as the batch grows",
        description=(
            f"The roofline recorded on {meta['cpu']} ({meta['cores']} cores), float32, on "
            f"log-log axes: the measured GEMM rate "
            f"{fmt(part3['gemm']['gflops']['float32'])} GFLOP/s as the roof, the peak from "
            f"the processor's data dashed, main memory's and the caches' measured bandwidths "
            f"as slopes, and the measured rate of Z = A W for h = ({rates['h_in']}, "
            f"{rates['h_out']}) at m = {m_values[0]} … {m_values[-1]} rows; the point for "
            f"m = {m} is marked, filled where it was measured, hollow where the model puts it."
        ),
        controls=(Control("m", "m (rows of A)", m_values, m, kind="select"),),
        frame=lambda **_: tables,
        chart=_roofline_chart,
        grid=lambda: tables,
    )


# ----------------------------------------------------------------------------- chapter 13

CPU_SERIES = "CPU epoch (recorded)"
SERIES = (
    (CPU_SERIES, "#2a9d3a", [1, 0]),
    ("GPU host's calls (model)", "#c0282d", [6, 3]),
    ("GPU device's kernels (model)", "#1f77b4", [2, 2]),
    ("GPU epoch (model)", "black", [1, 0]),
)
PATHS = (("eager", "GPU eager"), ("graph", "GPU as a CUDA graph"))


def _model_rows(sweep: dict, gpu, graph: bool, b_values) -> list[dict]:
    return [
        dict(
            batch_size=B,
            **gpu_model.predict_epoch(sweep["m"], tuple(sweep["sizes"]), B, gpu, graph=graph),
        )
        for B in b_values
    ]


def _verdict(cpu_s: float, gpu_s: float) -> str:
    ratio = cpu_s / gpu_s

    def times(r):
        return f"{r:.2f}" if r < 10 else f"{r:.0f}"

    if ratio >= 1:
        return f"{times(ratio)} times as fast as the CPU"
    return f"{times(1 / ratio)} times slower than the CPU"


def launch_tables(part3: dict, gpu=gpu_model.H100_SXM) -> dict:
    """From a recording of ``make record`` (``part3-cpu.json``, its ``speed_vs_batch``):
    ``curves``, per path (eager, graph) and B the recorded CPU epoch and the model's host
    time, device time and epoch on ``gpu`` (ms; the model at every power of two from the
    smallest to the largest recorded B); ``readout``, four lines per recorded B, the last
    the crossovers ``experiments.crossover_batch`` predicts."""
    sweep = part3["speed_vs_batch"]
    cpu = {r["batch_size"]: r for r in sweep["rows"]}
    recorded = sorted(cpu)
    powers = (2**k for k in range(recorded[-1].bit_length()))
    b_values = sorted(set(recorded) | {b for b in powers if b >= recorded[0]})
    curves, model = [], {}
    for path, _ in PATHS:
        rows = _model_rows(sweep, gpu, path == "graph", b_values)
        model[path] = {r["batch_size"]: r for r in rows}
        for B in recorded:
            curves.append(
                dict(
                    path=path,
                    what=CPU_SERIES,
                    B=B,
                    ms=float(fmt(cpu[B]["seconds_per_epoch"] * 1e3)),
                )
            )
        for r in rows:
            for (what, _, _), key in zip(SERIES[1:], ("host_s", "device_s", "seconds")):
                curves.append(
                    dict(path=path, what=what, B=r["batch_size"], ms=float(fmt(r[key] * 1e3)))
                )
    cross = {
        path: experiments.crossover_batch(sweep["rows"], [model[path][B] for B in recorded])
        for path, _ in PATHS
    }
    crossing = ", ".join(
        f"{name} from B = {cross[path]}" if cross[path] is not None else f"{name}: none"
        for path, name in (("eager", "eager"), ("graph", "CUDA graph"))
    )
    readout = []
    for B in recorded:
        cpu_s = cpu[B]["seconds_per_epoch"]
        e, g = model["eager"][B], model["graph"][B]
        lines = [
            f"B = {B}: the CPU's epoch {fmt(cpu_s * 1e3)} ms (recorded); the {gpu.name}'s, "
            "predicted by the model:",
            f"eager: host {fmt(e['host_s'] * 1e3)} ms, device {fmt(e['device_s'] * 1e3)} ms, "
            f"epoch {fmt(e['seconds'] * 1e3)} ms ({e['bound']}-bound): "
            + _verdict(cpu_s, e["seconds"]),
            f"CUDA graph: host {fmt(g['host_s'] * 1e3)} ms, device {fmt(g['device_s'] * 1e3)} "
            f"ms, epoch {fmt(g['seconds'] * 1e3)} ms: " + _verdict(cpu_s, g["seconds"]),
            f"predicted crossover: {crossing}",
        ]
        readout += [dict(B=B, line=k, text=t) for k, t in enumerate(lines, 1)]
    return {"curves": curves, "readout": readout, "crossover": cross}


def _launch_chart(data, p):
    import altair as alt

    recorded = sorted({r["B"] for r in data["readout"].values})
    x = alt.X(
        "B:Q",
        scale=alt.Scale(type="log", base=2),
        axis=alt.Axis(values=recorded),
        title="batch size B",
    )
    y = alt.Y("ms:Q", scale=alt.Scale(type="log"), title="ms per epoch")
    names = [n for n, _, _ in SERIES]
    legend = alt.Legend(
        title=None,
        orient="bottom",
        columns=2,
        symbolType="stroke",
        symbolOpacity=1,
        symbolStrokeWidth=3,
    )
    colour = alt.Color(
        "what:N", scale=alt.Scale(domain=names, range=[c for _, c, _ in SERIES]), legend=legend
    )
    dash = alt.StrokeDash(
        "what:N", scale=alt.Scale(domain=names, range=[d for _, _, d in SERIES]), legend=legend
    )
    epoch = SERIES[-1][0]

    def panel(path, title):
        base = alt.Chart(data["curves"]).transform_filter(f"datum.path === '{path}'")
        enc = dict(x=x, y=y, color=colour, strokeDash=dash, order="B:Q")
        # the epoch is the longer of host and device: a wide band under them, not hiding them
        band = base.transform_filter(f"datum.what === '{epoch}'").mark_line(
            strokeWidth=6, opacity=0.35
        )
        parts = base.transform_filter(f"datum.what !== '{epoch}'").mark_line(
            strokeWidth=2, point=alt.OverlayMarkDef(size=22)
        )
        chosen = base.transform_filter("datum.B === B")
        rule = chosen.mark_rule(color="#555555", strokeDash=[2, 2]).encode(x=x)
        now = chosen.mark_point(size=110, filled=True).encode(x=x, y=y, color=colour)
        return alt.layer(band.encode(**enc), parts.encode(**enc), rule, now).properties(
            width=250, height=250, title=title
        )

    panels = alt.hconcat(*(panel(path, f"{name} (model), CPU (recorded)") for path, name in PATHS))
    panels = panels.resolve_scale(y="shared", color="shared", strokeDash="shared")
    return alt.vconcat(panels, _readout(data["readout"], "B", 4))


def launch_cost(part3: dict, gpu=gpu_model.H100_SXM, B: int = 1) -> Explorer:
    """Chapter 13's explorer: the batch size B against the epoch of the recorded CPU sweep
    (``part3["speed_vs_batch"]``, ``book/data/part3-cpu.json``) and the GPU cost model's
    (:func:`mlp_core.bench.gpu_model.predict_epoch` on ``gpu``) host time, device time and
    epoch, eagerly and as a CUDA graph. A model, not a measurement."""
    sweep = part3["speed_vs_batch"]
    tables = launch_tables(part3, gpu)
    shown = {k: tables[k] for k in ("curves", "readout")}
    recorded = tuple(sorted(r["batch_size"] for r in sweep["rows"]))
    return Explorer(
        key="launch-cost",
        title="the GPU's host and device time against the CPU as the batch grows",
        description=(
            f"Per epoch of m = {sweep['m']} examples through h = {tuple(sweep['sizes'])}, "
            f"float32, on log axes against the batch size B: the CPU's epoch recorded on "
            f"{part3['meta']['cpu']} and, predicted for the {gpu.name} by the cost model (not "
            "measured), the host's time issuing the calls, the device's time running the "
            "kernels and the epoch, eagerly (left) and as a CUDA graph (right); "
            f"B = {B} is marked."
        ),
        controls=(Control("B", "batch size B", recorded, B, kind="select"),),
        frame=lambda **_: shown,
        chart=_launch_chart,
        grid=lambda: shown,
    )
