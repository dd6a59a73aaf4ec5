"""An explorer: one computation of the library, three faces.

An :class:`Explorer` has controls (each a finite list of settings), a ``frame`` function
that computes, with the library, the tables one setting shows, and a ``chart`` function
that draws those tables with Vega-Lite (through Altair), filtered by one parameter per
control. From these:

* :meth:`Explorer.html`: the live explorer of the static HTML book. Every setting's
  tables are computed in Python (at build time, or read from a recording), the chart is
  compiled to a Vega spec (``vl-convert``) and embedded in the page; the page's Vega,
  served from the book's ``_static`` (:mod:`.sphinx_ext`), binds each parameter to a
  native, labelled ``<input>``/``<select>`` and redraws on every move: no kernel, no
  network, no maths in JavaScript (the browser only filters rows).
* :meth:`Explorer.widget`: ipywidgets in JupyterLab; each move computes the setting live
  with the library and draws the same chart (an SVG from ``vl-convert``).
* :meth:`Explorer.png`: the default setting as a PNG (the PDF's figure).

:meth:`Explorer.live` wraps all three in a :class:`~mlp_core.book.live.LiveFigure`.
"""

from __future__ import annotations

import html as html_lib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from ...core.errors import ConfigError

VL_VERSION = "6.4"  # the Vega-Lite that Altair 6 writes and vl-convert compiles
WIDTH = 600  # px: the chart's width, within the book's text column


@dataclass(frozen=True)
class Control:
    """One control: ``name`` (the parameter and the data column), ``label`` (what the
    reader sees), the settings offered (``values``, in order), the ``default``, and the
    text shown per setting (``labels``, for a select). ``kind``: "range" (a slider over
    integers in steps of one value), "select" or "radio"."""

    name: str
    label: str
    values: tuple
    default: object
    labels: tuple | None = None
    kind: str = "range"

    def __post_init__(self):
        if self.default not in self.values:
            raise ConfigError(f"{self.name}: the default {self.default!r} is not a setting")
        if self.kind == "range":
            steps = {b - a for a, b in zip(self.values, self.values[1:])}
            if len(steps) > 1 or not all(isinstance(v, int) for v in self.values):
                raise ConfigError(f"{self.name}: a range control needs evenly spaced integers")

    def binding(self):
        """The Vega-Lite binding: a native ``<input type="range">``, ``<select>`` or
        radio buttons, labelled with ``label``."""
        import altair as alt

        if self.kind == "range":
            step = self.values[1] - self.values[0] if len(self.values) > 1 else 1
            return alt.binding_range(
                min=self.values[0], max=self.values[-1], step=step, name=self.label
            )
        labels = list(self.labels) if self.labels else [str(v) for v in self.values]
        make = alt.binding_select if self.kind == "select" else alt.binding_radio
        return make(options=list(self.values), labels=labels, name=self.label)


@dataclass
class Explorer:
    """See the module docstring. ``frame(**setting)`` returns ``{table: [row, ...]}``;
    ``chart(data, params)`` returns an Altair chart of ``data`` (``{table: alt.Data}``)
    whose rows carry one column per control, filtered by ``params`` (``{name:
    alt.Parameter}``). ``grid`` (optional) returns every setting's tables at once (e.g.
    read from a recording) instead of calling ``frame`` per setting."""

    key: str
    title: str
    description: str
    controls: tuple[Control, ...]
    frame: Callable[..., dict]
    chart: Callable
    grid: Callable[[], dict] | None = None
    widget_controls: Callable | None = None
    train_button: bool = False
    defaults: dict = field(default_factory=dict)

    def __post_init__(self):
        self.defaults = {c.name: c.default for c in self.controls}

    # ---------------------------------------------------------------- data

    def settings(self):
        """Every setting of the controls (the product of their values), as dicts."""
        names = [c.name for c in self.controls]
        for values in itertools.product(*(c.values for c in self.controls)):
            yield dict(zip(names, values))

    def tables(self, setting: dict) -> dict:
        """``frame`` of one setting, each row tagged with the setting."""
        return {
            name: [dict(setting, **row) for row in rows]
            for name, rows in self.frame(**setting).items()
        }

    def all_tables(self) -> dict:
        """Every setting's tables, concatenated per table (what the HTML embeds)."""
        if self.grid is not None:
            return self.grid()
        out: dict = {}
        for setting in self.settings():
            for name, rows in self.tables(setting).items():
                out.setdefault(name, []).extend(rows)
        return out

    # ---------------------------------------------------------------- charts

    def vega_lite(self, tables: dict, setting: dict | None = None) -> dict:
        """The Vega-Lite spec of ``tables``: parameters bound to controls (``setting``
        None) or fixed at ``setting``."""
        import altair as alt

        data = {name: alt.Data(values=rows) for name, rows in tables.items()}
        if setting is None:
            params = {
                c.name: alt.param(name=c.name, value=c.default, bind=c.binding())
                for c in self.controls
            }
        else:
            params = {c.name: alt.param(name=c.name, value=setting[c.name]) for c in self.controls}
        chart = self.chart(data, params).add_params(*params.values())
        chart = chart.properties(description=self.description).configure_view(stroke=None)
        return chart.to_dict()

    def vega(self) -> dict:
        """The live chart compiled to Vega (what the page's Vega runs)."""
        import vl_convert as vlc

        return vlc.vegalite_to_vega(self.vega_lite(self.all_tables()), vl_version=VL_VERSION)

    def svg(self, setting: dict | None = None) -> str:
        """The chart of one setting (default: the defaults) as SVG."""
        import vl_convert as vlc

        setting = dict(self.defaults, **(setting or {}))
        spec = self.vega_lite(self.tables(setting), setting)
        return vlc.vegalite_to_svg(spec, vl_version=VL_VERSION)

    def png(self, setting: dict | None = None, scale: float = 2.0) -> bytes:
        """The chart of one setting (default: the defaults) as PNG: the PDF's figure."""
        import vl_convert as vlc

        setting = dict(self.defaults, **(setting or {}))
        spec = self.vega_lite(self.tables(setting), setting)
        return vlc.vegalite_to_png(spec, scale=scale, vl_version=VL_VERSION)

    # ---------------------------------------------------------------- faces

    def html(self) -> str:
        """The live explorer for the HTML book: a labelled group for the controls, the
        chart's place, and the compiled Vega spec (rendered by ``_static/explorers.js``)."""
        spec = json.dumps(self.vega(), separators=(",", ":"), ensure_ascii=False)
        spec = spec.replace("</", "<\\/")  # never ends the <script> element early
        title = html_lib.escape(self.title)
        return (
            f'<div class="mlp-explorer" id="explorer-{self.key}" data-explorer="{self.key}">'
            f'<div class="mlp-explorer-controls" role="group" aria-label="{title}: controls">'
            "</div>"
            f'<div class="mlp-explorer-chart" role="figure" aria-label="{title}">'
            f'<p class="mlp-explorer-fallback">{html_lib.escape(self.description)}</p></div>'
            f'<script type="application/json" class="mlp-explorer-spec">{spec}</script>'
            "</div>"
        )

    def widget(self):
        """ipywidgets: one control per :class:`Control` (or ``widget_controls()``'s,
        which may offer more settings, e.g. any η), redrawing the chart of the setting
        computed live; with ``train_button``, only when *Train* is pressed."""
        import ipywidgets as widgets
        from IPython.display import SVG

        from ..live import show_in

        controls = self.widget_controls() if self.widget_controls is not None else _ipywidgets(self)
        out = widgets.Output()

        def update(_=None):
            setting = {name: w.value for name, w in controls.items()}
            try:
                show_in(out, SVG(self.svg(setting)))
                # the setting in words too (an SVG output is an image to a screen reader)
                out.append_stdout(self.setting_text(setting) + "\n")
            except ConfigError as exc:  # a setting the library refuses: say why
                show_in(out)
                out.append_stdout(f"{type(exc).__name__}: {exc}\n")

        row = list(controls.values())
        if self.train_button:
            button = widgets.Button(description="Train", button_style="primary")
            button.on_click(update)
            row.append(button)
        else:
            for w in controls.values():
                w.observe(update, names="value")
        update()
        return widgets.VBox([widgets.HBox(row, layout=widgets.Layout(flex_flow="row wrap")), out])

    def setting_text(self, setting: dict) -> str:
        """The setting as a line: each control's label and value."""
        labels = {c.name: c.label for c in self.controls}
        return "; ".join(f"{labels.get(k, k)} = {v}" for k, v in setting.items())

    def live(self):
        """The three faces in one output: a :class:`~mlp_core.book.live.LiveFigure`."""
        from ..live import LiveFigure

        return LiveFigure(
            self.widget(),
            self.png(),
            f"Explorer: {self.title}. {self.description}",
            html=self.html(),
        )


def _ipywidgets(explorer: Explorer) -> dict:
    import ipywidgets as widgets

    style = {"description_width": "initial"}
    out = {}
    for c in explorer.controls:
        if c.kind == "range":
            step = c.values[1] - c.values[0] if len(c.values) > 1 else 1
            out[c.name] = widgets.IntSlider(
                c.default, c.values[0], c.values[-1], step, description=c.label, style=style
            )
        else:
            labels = c.labels or tuple(str(v) for v in c.values)
            out[c.name] = widgets.Dropdown(
                options=list(zip(labels, c.values)),
                value=c.default,
                description=c.label,
                style=style,
            )
    return out
