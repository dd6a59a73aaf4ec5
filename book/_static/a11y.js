/* Accessibility fixes for what the page template (sphinx-book-theme / pydata-sphinx-theme)
 * and generated HTML cannot say themselves (WCAG 2.1 AA; checked by axe-core in
 * tests/book/test_browser.py). Loaded on every page by html_js_files in _config.yml.
 *
 * 1. Label in name (WCAG 2.5.3, axe "label-content-name-mismatch"): a control whose
 *    aria-label does not contain its visible text (the theme's search button shows
 *    "Search Ctrl+K" but is named "Search") is named by its visible text, so that the name
 *    a speech-input user says and the name a screen reader reads agree; in an icon-only
 *    control (the colour-mode button) the icons are hidden and lose their titles (they
 *    would be its "visible text": Light, Dark, System Settings; axe-core 4.14 counts an
 *    SVG's <title> even when the SVG is aria-hidden). The
 *    toggles of hidden code cells (<summary aria-label="Toggle hidden content"> showing
 *    "Show code cell source") are named by their visible text the same way.
 * 2. Scrollable regions (WCAG 2.1.1, axe "scrollable-region-focusable"): an element
 *    that scrolls (wide tables and outputs) but holds nothing focusable gets
 *    tabindex="0", so it can be scrolled from the keyboard.
 * 3. Row headers (WCAG 1.3.1, axe "td-has-header"): a table whose top-left header cell
 *    is empty has its row labels in the first column: those cells become <th scope="row">.
 * All three run again whenever the page changes (see the end).
 */
(function () {
  "use strict";

  function norm(text) {
    return (text || "").replace(/\s+/g, " ").trim().toLowerCase();
  }

  function visibleText(el) {
    // the text nodes a reader sees (as axe reads them: not innerText, which adds spaces
    // around inline-block children such as <kbd>), without hidden or aria-hidden parts
    var parts = [];
    var walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      var parent = node.parentElement;
      if (parent.closest("[aria-hidden='true'], svg")) continue;
      if (window.getComputedStyle(parent).display === "none") continue;
      parts.push(node.nodeValue);
    }
    return parts.join("").replace(/\s+/g, " ").trim();
  }

  function alignLabels(root) {
    var controls = root.querySelectorAll(
      "button[aria-label], a[aria-label], [role='button'][aria-label], summary[aria-label]"
    );
    controls.forEach(function (el) {
      var label = el.getAttribute("aria-label");
      var text = visibleText(el);
      if (text) {
        if (norm(label).indexOf(norm(text)) === -1) {
          el.setAttribute("aria-label", text);
        }
      } else {
        // icon-only: the icons' titles ("Light", "Dark", ...) would count as its visible
        // text, which its name ("Color mode") does not contain; the icons are decoration
        // (FontAwesome's JS turns each <i title> into an <svg> with a <title>)
        el.querySelectorAll("i, svg, [title]").forEach(function (icon) {
          if (icon.getAttribute("aria-hidden") !== "true") icon.setAttribute("aria-hidden", "true");
          // axe-core >= 4.14 reads an SVG's <title> as visible text even inside
          // aria-hidden: the icons lose their titles (the button's tooltip names it)
          icon.removeAttribute("title");
          icon.removeAttribute("aria-labelledby");
        });
        el.querySelectorAll("svg title").forEach(function (title) {
          title.remove();
        });
      }
    });
  }

  function hasFocusable(el) {
    return !!el.querySelector(
      "a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex='-1'])"
    );
  }

  function scrolls(el) {
    var style = window.getComputedStyle(el);
    var x = /(auto|scroll)/.test(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
    var y = /(auto|scroll)/.test(style.overflowY) && el.scrollHeight > el.clientHeight + 1;
    return x || y;
  }

  function focusableScrollers(root) {
    var article = root.querySelector("main") || root.body;
    if (!article) return;
    article.querySelectorAll("div, pre, table, section, figure, mjx-container").forEach(
      function (el) {
        if (el.hasAttribute("tabindex") || !scrolls(el) || hasFocusable(el)) return;
        el.setAttribute("tabindex", "0");
        el.setAttribute("data-book-scroll-tabindex", "");
      }
    );
  }

  function rowHeaders(root) {
    root.querySelectorAll("main table").forEach(function (table) {
      var corner = table.querySelector("thead tr:first-child > th:first-child");
      if (!corner || norm(corner.textContent) !== "" || !table.tBodies.length) return;
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          var cell = row.cells[0];
          if (!cell || cell.tagName !== "TD" || norm(cell.textContent) === "") return;
          var th = document.createElement("th");
          th.setAttribute("scope", "row");
          Array.prototype.forEach.call(cell.attributes, function (a) {
            th.setAttribute(a.name, a.value);
          });
          while (cell.firstChild) th.appendChild(cell.firstChild);
          row.replaceChild(th, cell);
        });
      });
    });
  }

  function fixAll() {
    alignLabels(document);
    rowHeaders(document);
    focusableScrollers(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fixAll);
  } else {
    fixAll();
  }
  // Again whenever the page changes: the theme's scripts render its buttons, FontAwesome
  // replaces icons, MathJax typesets (new widths), a resize changes what scrolls.
  var pending = false;
  function later() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      fixAll();
    });
  }
  window.addEventListener("load", function () {
    fixAll();
    new MutationObserver(later).observe(document.body, { childList: true, subtree: true });
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(fixAll);
    }
  });
  window.addEventListener("resize", later);
})();
