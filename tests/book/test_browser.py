"""The built book in a real headless Chromium, with the network cut off.

The HTML in _build/html is served on 127.0.0.1 (random port); every request to
any other origin is blocked and counted as a failure, as it would fail in a
classroom without internet. The test walks the book from the root page along
the "next" links (which must visit exactly the pages of _toc.yml, in order),
checks each page, saves a full-page screenshot to
artifacts/screenshots/NN-<page>.png, and then walks back along "previous".

Per page: no console errors or uncaught exceptions; no failed request (network
error, HTTP status >= 400, blocked external request); all math typeset by
MathJax with no TeX errors and no raw TeX left in the text; every <img>
loaded; every "dropdown" admonition (exercise solutions) collapsed.

Chromium: Debian's package (`apt-get install chromium`), driven by Playwright's
Python API with executable_path; `playwright install` is never needed.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
NOT_FOUND_MSG = (
    "Chromium not found: install Debian's package with `sudo apt-get install chromium` "
    "(or run scripts/install_chromium.sh), or set CHROMIUM=/path/to/chrome"
)
MATHJAX_TIMEOUT_MS = 60_000
RAW_TEX_MARKERS = ("$$", "\\[", "\\(", "\\begin{", "$\\")

# ---------------------------------------------------------------- chromium


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if not path:
        pytest.fail(NOT_FOUND_MSG, pytrace=False)
    return path


# ---------------------------------------------------------------- server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(scope="session")
def book_server(built_book):
    """Serve _build/html on 127.0.0.1 at a free port; yields the origin URL."""
    handler = functools.partial(_QuietHandler, directory=str(built_book.html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- the walk


@dataclass
class PageReport:
    docname: str
    url: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    math_problems: list[str] = field(default_factory=list)
    image_problems: list[str] = field(default_factory=list)
    dropdown_problems: list[str] = field(default_factory=list)
    math_count: int = 0
    image_count: int = 0
    screenshot: Path | None = None


@dataclass
class Walk:
    expected: list[str]
    forward: list[str] = field(default_factory=list)
    backward: list[str] = field(default_factory=list)
    pages: list[PageReport] = field(default_factory=list)
    landing: str | None = None
    other_errors: list[str] = field(default_factory=list)


def _docname(origin: str, url: str) -> str:
    path = urlsplit(url).path
    assert url.startswith(origin), f"left the book: {url}"
    path = path[1:] if path.startswith("/") else path
    return path[:-5] if path.endswith(".html") else path


_WAIT_MATHJAX = """
async () => {
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return false;
  await MathJax.startup.promise;
  await document.fonts.ready;
  return true;
}
"""

_MATH_REPORT = """
() => {
  const article = document.querySelector('article.bd-article')
                  || document.querySelector('main') || document.body;
  const maths = Array.from(article.querySelectorAll('.math'));
  const untypeset = maths.filter(m => !m.querySelector('mjx-container'))
                         .map(m => m.textContent.trim().slice(0, 80));
  const errors = Array.from(document.querySelectorAll('mjx-merror, [data-mjx-error]'))
                      .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120));
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, code, kbd, samp, .highlight, .cell_input, script, style, ' +
                         'mjx-container, .linenos, textarea').forEach(n => n.remove());
  return {count: maths.length, untypeset, errors, text: clone.textContent};
}
"""

_IMAGE_REPORT = """
async () => {
  const imgs = Array.from(document.images);
  const bad = [];
  for (const img of imgs) {
    img.loading = 'eager';
    try { await img.decode(); } catch (e) { bad.push(img.currentSrc || img.src); continue; }
    const svg = /\\.svg(\\?|#|$)/i.test(img.currentSrc || img.src);
    if (!img.complete || (!svg && img.naturalWidth === 0)) bad.push(img.currentSrc || img.src);
  }
  return {count: imgs.length, bad};
}
"""

_DROPDOWN_REPORT = """
() => Array.from(document.querySelectorAll('.admonition.dropdown')).map(a => ({
  title: (a.querySelector('.admonition-title') || a).textContent.trim().slice(0, 60),
  collapsed: a.classList.contains('toggle-hidden'),
  button: !!a.querySelector('button.toggle-button'),
}))
"""


def _raw_tex(text: str) -> list[str]:
    hits = []
    for marker in RAW_TEX_MARKERS:
        for m in re.finditer(re.escape(marker), text):
            hits.append(text[max(0, m.start() - 30) : m.end() + 30].replace("\n", " "))
    return hits


def _check_page(page, report: PageReport) -> None:
    has_mathjax = page.evaluate("() => !!document.querySelector('script[src*=\"mathjax\" i]')")
    if has_mathjax:
        try:
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                timeout=MATHJAX_TIMEOUT_MS,
            )
            page.evaluate(_WAIT_MATHJAX)
        except Exception as exc:  # noqa: BLE001 - record and go on checking the rest of the page
            report.math_problems.append(f"MathJax did not finish: {exc}")
    math = page.evaluate(_MATH_REPORT)
    report.math_count = math["count"]
    if math["count"] and not has_mathjax:
        report.math_problems.append(f"{math['count']} math elements but MathJax is not loaded")
    report.math_problems += [f"not typeset: {t!r}" for t in math["untypeset"]]
    report.math_problems += [f"MathJax error: {e!r}" for e in math["errors"]]
    report.math_problems += [f"raw TeX in text: {h!r}" for h in _raw_tex(math["text"])]

    images = page.evaluate(_IMAGE_REPORT)
    report.image_count = images["count"]
    report.image_problems += [f"image did not load: {src}" for src in images["bad"]]

    for d in page.evaluate(_DROPDOWN_REPORT):
        if not (d["collapsed"] and d["button"]):
            report.dropdown_problems.append(f"dropdown {d['title']!r} is not a collapsed toggle")


@pytest.fixture(scope="session")
def browser_walk(chromium_path, book_server, toc_docnames) -> Walk:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "playwright (Python) is not installed: pip install -e '.[test]' "
            "(never `playwright install`: the tests use Debian's chromium)",
            pytrace=False,
        )

    origin = book_server
    walk = Walk(expected=list(toc_docnames))
    current: dict[str, PageReport | None] = {"report": None}

    def record(kind: str, msg: str) -> None:
        rep = current["report"]
        if rep is None:  # outside the forward walk (landing redirect, walking back)
            target, msg = walk.other_errors, f"[{kind}] {msg}"
        else:
            target = getattr(rep, kind)
        if msg not in target:
            target.append(msg)

    def on_route(route):
        url = route.request.url
        if url.startswith(origin + "/") or url == origin:
            route.continue_()
        else:
            record("failed_requests", f"BLOCKED external request: {url}")
            route.abort("blockedbyclient")

    def on_console(msg):
        if msg.type == "error":
            loc = msg.location or {}
            record(
                "console_errors",
                f"console.error: {msg.text} ({loc.get('url', '')}:{loc.get('lineNumber', '')})",
            )

    def on_pageerror(exc):
        record("console_errors", f"uncaught exception: {exc}")

    def on_requestfailed(request):
        if request.url.startswith(origin):
            record("failed_requests", f"request failed: {request.url} ({request.failure})")

    def on_response(response):
        if response.status >= 400:
            record("failed_requests", f"HTTP {response.status}: {response.url}")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(
                executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
            )
        except Exception as exc:  # noqa: BLE001 - a broken/incompatible Chromium is a failure, not a skip
            pytest.fail(
                f"could not start Chromium at {chromium_path}: {exc}\n{NOT_FOUND_MSG}",
                pytrace=False,
            )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, service_workers="block"
        )
        context.route("**/*", on_route)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("console", on_console)
        page.on("pageerror", on_pageerror)
        page.on("requestfailed", on_requestfailed)
        page.on("response", on_response)

        # The landing page index.html redirects (meta refresh) to the root page.
        page.goto(f"{origin}/index.html", wait_until="load")
        try:
            page.wait_for_url(f"{origin}/{walk.expected[0]}.html", timeout=10_000)
            page.wait_for_load_state("networkidle")
        except Exception as exc:  # noqa: BLE001 - recorded as the walk's error
            walk.other_errors.append(
                f"index.html did not redirect to {walk.expected[0]}.html: {exc}"
            )
        walk.landing = _docname(origin, page.url)

        # Forward along "next".
        url = f"{origin}/{walk.expected[0]}.html"
        limit = len(walk.expected) + 5
        while url and len(walk.forward) < limit:
            docname = _docname(origin, url)
            report = PageReport(docname=docname, url=url)
            current["report"] = report
            page.goto(url, wait_until="load")
            page.wait_for_load_state("networkidle")
            _check_page(page, report)
            page.evaluate("async () => { await document.fonts.ready; }")
            n = len(walk.forward) + 1
            name = docname[len("book/") :] if docname.startswith("book/") else docname
            shot = SCREENSHOTS / f"{n:02d}-{name.replace('/', '_')}.png"
            page.screenshot(path=str(shot), full_page=True)
            report.screenshot = shot
            walk.forward.append(docname)
            walk.pages.append(report)
            nxt = page.query_selector("a.right-next")
            url = nxt.evaluate("a => a.href") if nxt else None
            url = url.split("#")[0] if url else None
        current["report"] = None

        # Backward along "previous", from the last page reached.
        if walk.forward:
            url = f"{origin}/{walk.forward[-1]}.html"
            while url and len(walk.backward) < limit:
                page.goto(url, wait_until="load")
                page.wait_for_load_state("networkidle")
                walk.backward.append(_docname(origin, url))
                prev = page.query_selector("a.left-prev")
                url = prev.evaluate("a => a.href") if prev else None
                url = url.split("#")[0] if url else None

        context.close()
        browser.close()
    return walk


# ---------------------------------------------------------------- tests


def _fmt(walk: Walk, attr: str) -> str:
    lines = []
    for p in walk.pages:
        for item in getattr(p, attr):
            lines.append(f"  {p.docname}: {item}")
    return "\n".join(lines)


def test_chromium_is_installed():
    """Reported as FAILED (never skipped) when there is no Chromium."""
    path = find_chromium()
    assert path and Path(path).is_file(), NOT_FOUND_MSG


def test_landing_page_redirects_to_root(browser_walk):
    assert browser_walk.landing == browser_walk.expected[0]


def test_next_links_visit_toc_in_order(browser_walk):
    assert browser_walk.forward == browser_walk.expected, (
        "following 'next' from the root page did not visit the pages of _toc.yml in order"
    )


def test_previous_links_walk_back(browser_walk):
    assert browser_walk.backward == list(reversed(browser_walk.forward))


def test_no_console_errors(browser_walk):
    msg = _fmt(browser_walk, "console_errors")
    assert not msg, f"console errors:\n{msg}"


def test_no_errors_outside_the_forward_walk(browser_walk):
    """Landing redirect and the walk back along "previous" are clean too."""
    assert not browser_walk.other_errors, "\n".join(browser_walk.other_errors)


def test_no_failed_or_external_requests(browser_walk):
    msg = _fmt(browser_walk, "failed_requests")
    assert not msg, f"failed or blocked requests (the book must work offline):\n{msg}"


def test_all_math_typeset(browser_walk):
    msg = _fmt(browser_walk, "math_problems")
    assert not msg, f"math problems:\n{msg}"
    assert any(p.math_count for p in browser_walk.pages), "no math found in any page"


def test_all_images_load(browser_walk):
    msg = _fmt(browser_walk, "image_problems")
    assert not msg, f"broken images:\n{msg}"


def test_solutions_are_collapsed_toggles(browser_walk):
    msg = _fmt(browser_walk, "dropdown_problems")
    assert not msg, f"dropdown admonitions not collapsed:\n{msg}"


def test_screenshots_saved(browser_walk):
    missing = [
        p.docname for p in browser_walk.pages if not (p.screenshot and p.screenshot.is_file())
    ]
    assert not missing, f"no screenshot for {missing}"
