"""The book builds with warnings as errors, and the HTML is fully offline.

The build itself runs once per session (fixture ``book_build`` in conftest.py):
``jupyter-book build <root> -n -W --keep-going --all``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.book

# <link rel=...> values that do not make the browser fetch anything.
NAVIGATION_RELS = {
    "canonical",
    "alternate",
    "author",
    "license",
    "help",
    "copyright",
    "next",
    "prev",
    "previous",
    "index",
    "search",
    "first",
    "last",
    "up",
    "contents",
    "glossary",
    "top",
    "start",
    "bookmark",
    "me",
}
CSS_URL_RE = re.compile(r"""url\(\s*['"]?\s*((?:https?:)?//[^'")\s]+)""", re.I)
CSS_IMPORT_RE = re.compile(r"""@import\s+['"]((?:https?:)?//[^'"]+)""", re.I)


def is_remote(url: str | None) -> bool:
    if not url:
        return False
    url = url.strip()
    return url.lower().startswith(("http://", "https://", "//", "ftp://"))


def html_pages(html_dir: Path) -> list[Path]:
    return sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts)


def soup_of(path: Path):
    from bs4 import BeautifulSoup  # beautifulsoup4: a dependency of jupyter-book's theme

    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def remote_resources(soup) -> list[str]:
    """Every resource a browser would fetch from the network for this page."""
    found: list[str] = []

    def check(tag, attr):
        val = tag.get(attr)
        if attr.endswith("srcset") and val:
            urls = [part.strip().split()[0] for part in val.split(",") if part.strip()]
        else:
            urls = [val]
        for url in urls:
            if is_remote(url):
                found.append(f"<{tag.name} {attr}={url!r}>")

    for tag in soup.find_all("script"):
        check(tag, "src")
    for tag in soup.find_all("link"):
        rels = {r.lower() for r in (tag.get("rel") or [])}
        if not rels or not rels <= NAVIGATION_RELS:
            check(tag, "href")
    for tag in soup.find_all(
        ["img", "source", "video", "audio", "track", "iframe", "embed", "input"]
    ):
        check(tag, "src")
        check(tag, "srcset")
        check(tag, "poster")
    for tag in soup.find_all("object"):
        check(tag, "data")
    for tag in soup.find_all(["image", "use"]):  # inline SVG
        check(tag, "href")
        check(tag, "xlink:href")
    for tag in soup.find_all("style"):
        text = tag.string or ""
        found += [f"<style> url({u})" for u in CSS_URL_RE.findall(text)]
        found += [f"<style> @import {u}" for u in CSS_IMPORT_RE.findall(text)]
    for tag in soup.find_all(style=True):
        found += [f"<{tag.name} style=url({u})>" for u in CSS_URL_RE.findall(tag["style"])]
    return found


def test_build_passes(book_build):
    """`jupyter-book build . -n -W --keep-going` exits 0 with no warning/error lines."""
    if book_build.reused:
        pytest.skip("BOOK_REUSE_BUILD=1: the build was not run in this session")
    assert book_build.ok, book_build.report()
    print(f"book built in {book_build.seconds:.1f}s")


def test_every_toc_page_has_html(built_book, toc_docnames):
    missing = [d for d in toc_docnames if not (built_book.html_dir / f"{d}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML in {built_book.html_dir}: {missing}"
    assert (built_book.html_dir / "index.html").is_file(), "no index.html (landing redirect)"


def test_toc_files_exist(toc_docnames):
    root = Path(__file__).resolve().parents[2]
    missing = [
        d
        for d in toc_docnames
        if not any((root / f"{d}{ext}").is_file() for ext in (".md", ".ipynb", ".rst"))
    ]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_no_remote_resources_in_pages(built_book):
    """No script, stylesheet, image, font or frame is loaded from the network.

    Plain <a href="https://..."> links in prose are fine: they are not fetched.
    """
    problems = {}
    for page in html_pages(built_book.html_dir):
        bad = remote_resources(soup_of(page))
        if bad:
            problems[str(page.relative_to(built_book.html_dir))] = bad
    assert not problems, "remote resources in built pages:\n" + "\n".join(
        f"  {page}: {bad}" for page, bad in problems.items()
    )


def test_no_remote_urls_in_static_css(built_book):
    """Stylesheets (theme, fonts) must not pull fonts or images from the web."""
    problems = []
    for css in sorted((built_book.html_dir / "_static").rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        for url in CSS_URL_RE.findall(text) + CSS_IMPORT_RE.findall(text):
            problems.append(f"{css.relative_to(built_book.html_dir)}: {url}")
    assert not problems, "remote url()/@import in CSS:\n  " + "\n  ".join(problems)


def test_mathjax_is_local(built_book):
    """Every page with math loads MathJax 3 from _static/mathjax, and it exists."""
    html_dir = built_book.html_dir
    pages_with_math = 0
    for page in html_pages(html_dir):
        soup = soup_of(page)
        has_math = bool(soup.select(".math"))
        scripts = [
            s["src"] for s in soup.find_all("script", src=True) if "mathjax" in s["src"].lower()
        ]
        if not has_math and not scripts:
            continue
        rel = page.relative_to(html_dir)
        if has_math:
            pages_with_math += 1
            assert scripts, f"{rel} has math but loads no MathJax"
        for src in scripts:
            assert not is_remote(src), f"{rel} loads MathJax from the network: {src}"
            local = (page.parent / urlsplit(src).path).resolve()
            assert local.is_file(), f"{rel}: MathJax script {src} -> {local} does not exist"
            assert html_dir.resolve() in local.parents, f"{rel}: {src} is outside the book"
            assert "_static/mathjax/" in local.as_posix(), f"{rel}: unexpected MathJax {src}"
    assert pages_with_math, "no page contains math: is dollarmath enabled?"
    # The CommonHTML output's web fonts ship with it (MathJax loads them at run time).
    fonts = html_dir / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert fonts.is_dir() and any(fonts.glob("*.woff")), f"MathJax fonts missing under {fonts}"


def test_no_widget_javascript(built_book):
    """Widgets are shown by their static image: no widget views, no widget JS."""
    problems = []
    for page in html_pages(built_book.html_dir):
        soup = soup_of(page)
        rel = str(page.relative_to(built_book.html_dir))
        for s in soup.find_all("script"):
            src = (s.get("src") or "").lower()
            if any(
                k in src
                for k in ("require.js", "requirejs", "embed-amd", "jupyter-widgets", "html-manager")
            ):
                problems.append(f"{rel}: widget JS {src}")
            if s.get("type") == "application/vnd.jupyter.widget-view+json":
                problems.append(f"{rel}: a widget view is rendered (needs widget JS to show)")
    assert not problems, "\n".join(problems)
