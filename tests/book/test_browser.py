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
loaded; every "dropdown" admonition (exercise solutions) collapsed; and an
accessibility audit (WCAG 2.1 A and AA): axe-core, from npm
(tests/book/package.json, installed by `make test` into tests/book/node_modules,
injected into each page from that file, never from a CDN), finds no serious or
critical violation, and every <img> has an alt text that says something (not
empty, not a file name). All of axe's findings, of every impact, are written to
artifacts/axe-report.json.

Waiting: a loaded laptop can take far longer than 30 s for a step, so no step
waits a fixed time. Each wait polls for the condition the next check needs
(the page's article present and the document loaded, MathJax's typesetting
done, web fonts loaded, every image complete), capped per wait by
BOOK_BROWSER_WAIT_S (default 300 s) and for the whole walk by
BOOK_BROWSER_BUDGET_S (default 1800 s). A page that still does not get there is
reported by test_every_page_loads, not as an error of every test.

Chromium: Debian's package (`apt-get install chromium`), driven by Playwright's
Python API with executable_path; `playwright install` is never needed.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

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
RAW_TEX_MARKERS = ("$$", "\\[", "\\(", "\\begin{", "$\\")

AXE_JS = Path(os.environ.get("AXE_CORE_JS") or ROOT / "tests/book/node_modules/axe-core/axe.min.js")
AXE_MISSING_MSG = (
    f"axe-core not found at {AXE_JS}: install it with `npm ci --prefix tests/book` "
    "(`make test` does), or set AXE_CORE_JS=/path/to/axe.min.js"
)
# The rules of WCAG 2.1 levels A and AA (axe's tags; 2.1 includes 2.0's).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = ("serious", "critical")
AXE_REPORT = ROOT / "artifacts" / "axe-report.json"
IMAGE_SUFFIX_RE = re.compile(r"\.(?:png|jpe?g|gif|svg|webp|bmp|tiff?|avif)\b", re.I)
HASH_RE = re.compile(r"[0-9a-f]{12,}", re.I)


class Budget:
    """One deadline for the whole walk, and a cap for each single wait (in ms)."""

    def __init__(self) -> None:
        self.total_s = float(os.environ.get("BOOK_BROWSER_BUDGET_S", "1800"))
        self.wait_s = float(os.environ.get("BOOK_BROWSER_WAIT_S", "300"))
        self.deadline = time.monotonic() + self.total_s

    def ms(self) -> float:
        """The timeout for the next wait: the cap, or what is left of the budget."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"the browser walk used up its budget of {self.total_s:.0f} s "
                "(BOOK_BROWSER_BUDGET_S)"
            )
        return 1000 * min(self.wait_s, left)


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
    load_problems: list[str] = field(default_factory=list)
    axe_violations: list[dict] = field(default_factory=list)
    alt_problems: list[str] = field(default_factory=list)
    audited: bool = False
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


# Polled (never awaited): false while MathJax is loading or typesetting, then
# "done" or the error it ended with.
_MATHJAX_DONE = """
() => {
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return false;
  if (!window.__bookMathJax) {
    window.__bookMathJax = 'pending';
    MathJax.startup.promise.then(
      () => { window.__bookMathJax = 'done'; },
      (e) => { window.__bookMathJax = 'error: ' + e; });
  }
  return window.__bookMathJax === 'pending' ? false : window.__bookMathJax;
}
"""

# The page's own document is there and loaded (its article in the DOM).
_PAGE_READY = """
() => document.readyState === 'complete' && !!document.querySelector('article.bd-article')
"""

_FONTS_READY = "() => document.fonts.status === 'loaded'"

_IMAGES_COMPLETE = """
() => Array.from(document.images).every(img => { img.loading = 'eager'; return img.complete; })
"""

_AXE_RUN = """
async (tags) => {
  // Every rule for these tags, the experimental ones included (for instance
  // label-content-name-mismatch, WCAG 2.5.3): axe leaves those out of a run by tag.
  const rules = axe.getRules(tags).map(r => r.ruleId);
  const result = await axe.run(document, {
    runOnly: {type: 'rule', values: rules},
    resultTypes: ['violations'],
    // No CSSOM preload: axe would re-fetch the theme's stylesheets and resolve their
    // @import against the page (a 404 for /basic.css); only an experimental rule needs it.
    preload: false,
  });
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, tags: v.tags,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 200),
                              summary: (n.failureSummary || '').slice(0, 300)})),
  }));
}
"""

_IMAGE_ALTS = """
() => Array.from(document.images).map(img => ({
  src: img.getAttribute('src') || '', alt: img.getAttribute('alt'),
  where: (img.closest('[id]') || {id: ''}).id,
}))
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
() => {
  const imgs = Array.from(document.images);
  const bad = [];
  for (const img of imgs) {
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


def _wait(page, budget: Budget, condition: str):
    """Poll `condition` (a JS function) every 250 ms until it is truthy; its value."""
    return page.wait_for_function(condition, polling=250, timeout=budget.ms()).json_value()


def looks_like_file_name(alt: str, src: str) -> bool:
    """An alt text that only names the image file (what a screen reader would read out)."""
    alt = alt.strip()
    name = PurePosixPath(unquote(urlsplit(src).path)).name
    return bool(
        alt == src
        or (name and alt in (name, PurePosixPath(name).stem))
        # a path has slashes and no spaces; a sentence may say "1/4" or "dJ/db"
        or (("/" in alt or "\\" in alt) and " " not in alt)
        or IMAGE_SUFFIX_RE.search(alt)
        or HASH_RE.fullmatch(alt.split(".")[0])
    )


def alt_problems(images: list[dict]) -> list[str]:
    problems = []
    for img in images:
        alt, src = img["alt"], img["src"]
        where = f" (in #{img['where']})" if img["where"] else ""
        if alt is None:
            problems.append(f"no alt attribute: {src}{where}")
        elif not alt.strip():
            problems.append(f"empty alt text: {src}{where}")
        elif looks_like_file_name(alt, src):
            problems.append(f"alt text is a file name ({alt!r}): {src}{where}")
    return problems


def _audit_page(page, report: PageReport) -> None:
    """axe-core's WCAG 2.1 A/AA rules, and every image's alt text."""
    if not AXE_JS.is_file():
        report.axe_violations.append(
            {"id": "axe-core-missing", "impact": "critical", "help": AXE_MISSING_MSG, "nodes": []}
        )
        return
    page.add_script_tag(path=str(AXE_JS))
    report.axe_violations = page.evaluate(_AXE_RUN, AXE_TAGS)
    report.alt_problems = alt_problems(page.evaluate(_IMAGE_ALTS))
    report.audited = True


def _check_page(page, report: PageReport, budget: Budget) -> None:
    has_mathjax = page.evaluate("() => !!document.querySelector('script[src*=\"mathjax\" i]')")
    if has_mathjax:
        try:
            state = _wait(page, budget, _MATHJAX_DONE)
            if state != "done":
                report.math_problems.append(f"MathJax failed: {state}")
        except Exception as exc:  # noqa: BLE001 - record and go on checking the rest of the page
            report.math_problems.append(f"MathJax did not finish: {exc}")
    math = page.evaluate(_MATH_REPORT)
    report.math_count = math["count"]
    if math["count"] and not has_mathjax:
        report.math_problems.append(f"{math['count']} math elements but MathJax is not loaded")
    report.math_problems += [f"not typeset: {t!r}" for t in math["untypeset"]]
    report.math_problems += [f"MathJax error: {e!r}" for e in math["errors"]]
    report.math_problems += [f"raw TeX in text: {h!r}" for h in _raw_tex(math["text"])]

    try:
        _wait(page, budget, _IMAGES_COMPLETE)
    except Exception as exc:  # noqa: BLE001 - the report below names the images
        report.image_problems.append(f"images still loading: {exc}")
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

    budget = Budget()
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(
                executable_path=chromium_path,
                args=CHROMIUM_ARGS,
                headless=True,
                timeout=budget.ms(),
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
        # Any Playwright call without its own timeout gets the per-wait cap.
        page.set_default_timeout(1000 * budget.wait_s)
        page.set_default_navigation_timeout(1000 * budget.wait_s)
        page.on("console", on_console)
        page.on("pageerror", on_pageerror)
        page.on("requestfailed", on_requestfailed)
        page.on("response", on_response)

        # The landing page index.html redirects (meta refresh) to the root page.
        try:
            page.goto(f"{origin}/index.html", wait_until="commit", timeout=budget.ms())
            page.wait_for_url(f"{origin}/{walk.expected[0]}.html", timeout=budget.ms())
            _wait(page, budget, _PAGE_READY)
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
            walk.forward.append(docname)
            walk.pages.append(report)
            try:
                page.goto(url, wait_until="domcontentloaded", timeout=budget.ms())
                _wait(page, budget, _PAGE_READY)
            except Exception as exc:  # noqa: BLE001 - reported by test_every_page_loads
                report.load_problems.append(f"did not load: {exc}")
                break
            try:
                _check_page(page, report, budget)
                _wait(page, budget, _FONTS_READY)
                _audit_page(page, report)
                n = len(walk.forward)
                name = docname[len("book/") :] if docname.startswith("book/") else docname
                shot = SCREENSHOTS / f"{n:02d}-{name.replace('/', '_')}.png"
                page.screenshot(path=str(shot), full_page=True, timeout=budget.ms())
                report.screenshot = shot
            except Exception as exc:  # noqa: BLE001 - reported by test_every_page_loads
                report.load_problems.append(f"checking the page failed: {exc}")
            nxt = page.query_selector("a.right-next")
            url = nxt.evaluate("a => a.href") if nxt else None
            url = url.split("#")[0] if url else None
        current["report"] = None

        # Backward along "previous", from the last page reached.
        if walk.forward:
            url = f"{origin}/{walk.forward[-1]}.html"
            while url and len(walk.backward) < limit:
                try:
                    page.goto(url, wait_until="domcontentloaded", timeout=budget.ms())
                    _wait(page, budget, _PAGE_READY)
                except Exception as exc:  # noqa: BLE001 - recorded as the walk's error
                    walk.other_errors.append(f"walking back, {url} did not load: {exc}")
                    break
                walk.backward.append(_docname(origin, url))
                prev = page.query_selector("a.left-prev")
                url = prev.evaluate("a => a.href") if prev else None
                url = url.split("#")[0] if url else None

        context.close()
        browser.close()
    AXE_REPORT.parent.mkdir(parents=True, exist_ok=True)
    AXE_REPORT.write_text(
        json.dumps(
            {
                "axe_core": str(AXE_JS),
                "tags": AXE_TAGS,
                "pages": {
                    p.docname: {"violations": p.axe_violations, "alt_problems": p.alt_problems}
                    for p in walk.pages
                },
            },
            indent=1,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
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


def test_axe_core_is_installed():
    """Reported as FAILED (never skipped) when axe-core was not installed from npm."""
    assert AXE_JS.is_file(), AXE_MISSING_MSG


def test_every_page_loads(browser_walk):
    """Each page reached its checks within the waiting budget (see the module docstring)."""
    msg = _fmt(browser_walk, "load_problems")
    assert not msg, f"pages that did not load or could not be checked:\n{msg}"


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


def _axe_lines(walk: Walk, impacts) -> list[str]:
    lines = []
    for p in walk.pages:
        for v in p.axe_violations:
            if v["impact"] not in impacts:
                continue
            targets = ", ".join(n["target"] for n in v["nodes"][:5])
            more = f" (+{len(v['nodes']) - 5} more)" if len(v["nodes"]) > 5 else ""
            lines.append(
                f"  {p.docname}: [{v['impact']}] {v['id']} x{len(v['nodes'])}: {v['help']}"
                f"\n      {targets}{more}"
            )
    return lines


def test_no_serious_accessibility_violations(browser_walk):
    """axe-core, WCAG 2.1 A and AA rules: no serious or critical violation on any page."""
    audited = {p.docname for p in browser_walk.pages if p.audited}
    missing = [d for d in browser_walk.expected if d not in audited]
    assert not missing, f"pages the audit did not reach: {missing}"
    lines = _axe_lines(browser_walk, FAILING_IMPACTS)
    assert not lines, (
        f"serious/critical WCAG 2.1 A/AA violations (axe-core; all findings in {AXE_REPORT}):\n"
        + "\n".join(lines)
    )


def test_every_image_has_alt_text(browser_walk):
    """Every <img> has an alt text that describes it (not empty, not its file name)."""
    msg = _fmt(browser_walk, "alt_problems")
    assert not msg, f"images without a real alt text:\n{msg}"


@pytest.mark.parametrize(
    ("alt", "src", "bad"),
    [
        ("../_images/3994ab12cd34ef56.png", "../_images/3994ab12cd34ef56.png", True),
        ("3994ab12cd34ef5678", "../_images/3994ab12cd34ef5678.png", True),
        ("figure.svg", "../_images/figure.svg", True),
        ("loss_curve", "loss_curve.png", True),
        ("Training loss falls from 2.3 to 0.1 over 40 epochs.", "../_images/ab12.png", False),
        ("The sigmoid's derivative is a bump of height 1/4; dJ/db is a row.", "x/ab.png", False),
        ("images/loss", "../_images/ab12.png", True),
    ],
)
def test_file_name_alt_texts_are_recognised(alt, src, bad):
    assert looks_like_file_name(alt, src) is bad
