"""A Sphinx extension: the explorers' JavaScript, offline, on the pages that have one.

Listed in ``_config.yml`` (``sphinx.config.extensions``). On an HTML build it writes
Vega-Embed with Vega and Vega-Lite (``vl_convert.javascript_bundle``: the libraries
bundled in the vl-convert wheel, no CDN) to ``_static/explorers/vega.min.js``, and adds
it, ``explorers.js`` and ``explorers.css`` (from ``book/_static``) to each page whose body
holds an explorer.
"""

from __future__ import annotations

from pathlib import Path

VEGA_JS = "explorers/vega.min.js"
MARKER = 'class="mlp-explorer"'


def vega_bundle() -> str:
    """``window.vegaEmbed`` (with the Vega it runs). The bundle's ``vega`` binding is
    empty when Vega is asked for alone, so the page reaches Vega through Vega-Embed. The
    bundle declares top-level constants (``_``, ...): wrapped in a function, they cannot
    clash with the page's other scripts."""
    import vl_convert as vlc

    bundle = vlc.javascript_bundle(snippet="window.vegaEmbed = vegaEmbed;")
    return "(function () {\n" + bundle + "\n})();\n"


def _write_vega(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / VEGA_JS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(vega_bundle(), encoding="utf-8")


def _per_page(app, pagename, templatename, context, doctree) -> None:
    if MARKER in (context.get("body") or ""):
        app.add_js_file(VEGA_JS, loading_method="defer")
        app.add_js_file("explorers.js", loading_method="defer")
        app.add_css_file("explorers.css")


def setup(app):
    app.connect("html-page-context", _per_page)
    app.connect("build-finished", _write_vega)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
