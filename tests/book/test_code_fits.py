"""Code shown on a page fits the page: nothing in a chapter scrolls sideways.

In headless Chromium at a laptop's width, on every page of the book: no code cell, no
output and no library source shown with ``show_source`` is wider than the text column (a
long line wraps, book.css; a wide table may scroll, a11y.js makes it keyboard-scrollable);
and a ``show_source`` listing keeps each source line a block of its own, so that a wrapped
line continues under itself. Uses the browser test's Chromium, server and built book
(tests/book/test_browser.py, conftest.py).
"""

from __future__ import annotations

import pytest

from .test_browser import CHROMIUM_ARGS, book_server, chromium_path  # noqa: F401 (fixtures)

pytestmark = pytest.mark.book

# Everything a chapter shows as code or output, and whether it is wider than its box.
_WIDER_THAN_THE_COLUMN = """
() => {
  const out = [];
  const sel = ['pre', 'div.highlight', 'div.cell_output > div', 'div.mlp-source'];
  document.querySelectorAll(sel.map(s => 'article.bd-article ' + s).join(', ')).forEach(el => {
    // a wide table may scroll (a11y.js makes it keyboard-scrollable); code may not
    if (el.querySelector('table')) return;
    if (el.scrollWidth > el.clientWidth + 1 && el.getClientRects().length) {
      out.push(`${el.tagName.toLowerCase()}.${el.className} is ${el.scrollWidth - el.clientWidth}`
               + ` px too wide: ${JSON.stringify((el.innerText || '').slice(0, 70))}`);
    }
  });
  return out;
}
"""
_SOURCE_LINES = """
() => Array.from(document.querySelectorAll('div.mlp-source pre')).map(
  pre => pre.querySelectorAll(':scope > span.mlp-line').length)
"""


@pytest.mark.parametrize("width", [1280, 900])
def test_no_code_scrolls_sideways(chromium_path, book_server, toc_docnames, width):  # noqa: F811
    from playwright.sync_api import sync_playwright

    problems, listings = [], 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        for doc in toc_docnames:
            page.goto(f"{book_server}/{doc}.html", wait_until="load")
            page.wait_for_function("() => document.fonts.status === 'loaded'")
            problems += [f"{doc}: {p}" for p in page.evaluate(_WIDER_THAN_THE_COLUMN)]
            lines = page.evaluate(_SOURCE_LINES)
            problems += [
                f"{doc}: a show_source listing without line blocks" for n in lines if not n
            ]
            listings += len(lines)
        browser.close()
    assert listings > 10, "the chapters show the library's source with show_source"
    assert not problems, "\n".join(problems)
