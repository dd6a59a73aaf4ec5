/* The book's explorers, live in the static HTML with no kernel and no network.
 *
 * Each explorer is a <div class="mlp-explorer"> written by mlp_core.book.explorers: a
 * group for its controls, a place for its chart, and its Vega spec (compiled from
 * Vega-Lite in Python, every number computed by the library when the book was built) in
 * a <script type="application/json">. Vega, through Vega-Embed (explorers/vega.min.js,
 * from the vl-convert wheel, loaded before this file on the pages that have an explorer),
 * draws the chart as
 * SVG and binds each parameter to a native, labelled <input> or <select> in the
 * controls' group; moving one redraws the chart. Nothing here computes a number of the
 * book: the browser filters the precomputed rows (and, for the shapes, looks sizes up).
 *
 * Each explorer element gets `mlpView` (the Vega view, for the tests) and the attribute
 * data-explorer-ready once drawn, or data-explorer-error with the reason.
 */
(function () {
  "use strict";

  function render(el) {
    var source = el.querySelector("script.mlp-explorer-spec");
    var chart = el.querySelector(".mlp-explorer-chart");
    var controls = el.querySelector(".mlp-explorer-controls");
    if (!source || !chart || !controls) return;
    if (!window.vegaEmbed) {
      el.setAttribute("data-explorer-error", "Vega (explorers/vega.min.js) did not load");
      return;
    }
    chart.textContent = "";
    window
      .vegaEmbed(chart, JSON.parse(source.textContent), {
        mode: "vega",
        renderer: "svg",
        actions: false,
        defaultStyle: false,
        bind: controls
      })
      .then(
      function (result) {
        el.mlpView = result.view;
        el.setAttribute("data-explorer-ready", "");
      },
      function (err) {
        el.setAttribute("data-explorer-error", String(err));
        throw err;
      }
    );
  }

  function renderAll() {
    document.querySelectorAll("div.mlp-explorer").forEach(render);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderAll);
  } else {
    renderAll();
  }
})();
