"""The student edition shows no answer: the leak test.

For every write-it-yourself exercise, the answer is taken from the library, not typed: the
body of each library function that answers it and its key lines
(``exercises.answer_bodies`` / ``exercises.answer_lines``, from the checkers' table), and
the lines of the reference answer cells of the teacher's chapters. The test looks for each
of them, spacing ignored, in every page of the student edition: cell sources, stored
outputs (a ``show_source`` listing included) and markdown; and, in the test marked
``book``, in the student HTML. It also looks for solutions that a sphinx-exercise
directive does not mark (an ``admonition`` titled Solution), and for the teacher's promise
of solutions behind a toggle. A negative control plants each kind of leak and sees it
caught.
"""

from __future__ import annotations

import html
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mlp_core.book import exercises
from mlp_core.book.show import show_source

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "student_edition", ROOT / "scripts/student_edition.py"
)
se = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("student_edition", se)
_spec.loader.exec_module(se)

# A solution written as a plain admonition, which the sphinx-exercise convention replaces.
SOLUTION_ADMONITION = re.compile(
    r"^\s*(?::{3,}|`{3,})\{admonition\}\s*(?:Solution|Answer)", re.I | re.M
)
# In the HTML: a sphinx-exercise solution, or an admonition titled Solution.
SOLUTION_HTML = re.compile(
    r'class="[^"]*\bsolution\b[^"]*"|class="admonition-title">\s*(?:Solution|Answer)', re.I
)
TOGGLE_PROMISE = re.compile(r"solutions?\s+behind\s+a\s+toggle", re.I)


def flat(text: str) -> str:
    """Text as compared: HTML tags dropped, entities decoded, all spacing removed."""
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return re.sub(r"\s+", "", text)


def reference_answer_lines(src: Path) -> dict[str, list[str]]:
    """{page: the key lines of its reference answer cells} of the teacher's chapters at
    ``src`` (the same rule as the library's key lines)."""
    found = {}
    for page in se.toc_files(src):
        if page.suffix != ".ipynb":
            continue
        nb = nbformat.read(src / page, as_version=4)
        for cell in nb.cells:
            if se.ANSWER_TAG in cell.metadata.get("tags", []):
                found.setdefault(str(page), []).extend(exercises.key_lines(cell.source))
    return found


def answers(src: Path = ROOT) -> list[tuple[str, str]]:
    """[(whose answer, the text)]: the library's answer bodies and key lines for every
    exercise, and the key lines of the chapters' reference answer cells."""
    out = []
    for name in exercises.NAMES:
        out += [(f"{name} (its whole body)", text) for text in exercises.answer_bodies(name)]
        out += [(name, text) for text in exercises.answer_lines(name)]
    for page, lines in reference_answer_lines(src).items():
        out += [(f"the answer cell of {page}", line) for line in lines]
    return out


def visible_parts(path: Path) -> list[tuple[str, str]]:
    """[(where, text)] of everything a reader sees on a page: each cell's source and each
    stored output of a notebook, a markdown page whole, an HTML page whole."""
    if path.suffix != ".ipynb":
        return [("page", path.read_text("utf-8"))]
    parts = []
    for k, cell in enumerate(nbformat.read(path, as_version=4).cells):
        parts.append((f"cell {k} ({cell.cell_type})", cell.source))
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [str(v) for v in out.get("data", {}).values()]
            parts.append((f"cell {k} output", "\n".join(texts)))
    return parts


def leaks(pages: list[Path], root: Path, src: Path = ROOT) -> list[str]:
    """Every answer, solution admonition or toggle promise found on ``pages``, one line
    each: '<page>, <where>: <what>'."""
    wanted = [(whose, text, flat(text)) for whose, text in answers(src)]
    found = []
    for path in pages:
        page = path.relative_to(root)
        for where, text in visible_parts(path):
            text_flat = flat(text)
            for whose, answer, answer_flat in wanted:
                if answer_flat in text_flat:
                    first = answer.split("\n")[0]
                    found.append(f"{page}, {where}: the answer of {whose}: {first!r}")
            if SOLUTION_ADMONITION.search(text) or (
                path.suffix == ".html" and SOLUTION_HTML.search(text)
            ):
                found.append(f"{page}, {where}: a solution")
            if TOGGLE_PROMISE.search(text):
                found.append(f"{page}, {where}: says the solutions are behind a toggle")
    return found


def edition_pages(out: Path) -> list[Path]:
    return [out / page for page in se.toc_files(out)]


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("leaks") / "student"
    se.write_edition(ROOT, out)
    return out


def test_there_is_an_answer_to_look_for_in_every_exercise():
    whose = {w for w, _ in answers()}
    assert set(exercises.NAMES) - {"skip_layer"} <= whose  # skip_layer: not in the library
    assert any(w.startswith("the answer cell of") for w in whose)


# Answers that the prose of a chapter states, which the student edition cannot strip by
# itself: (chapter, the answer as a finding quotes it). Each needs a change in the chapter;
# the tests fail when one is no longer found (then remove it here).
def assert_no_answer(found: list[str], what: str) -> None:
    assert not found, f"the student {what} shows answers:\n" + "\n".join(found)


def test_no_answer_in_the_student_notebooks(edition):
    assert_no_answer(leaks(edition_pages(edition), edition), "notebooks")


def test_negative_control_each_kind_of_leak_is_caught(edition, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(edition, leaky, ignore=shutil.ignore_patterns("_build"))
    chapter = leaky / "book/05-stacking.ipynb"
    nb = nbformat.read(chapter, as_version=4)
    listing = show_source(exercises.CHECKERS["bias_gradient"].answer[0])
    cell = nbformat.v4.new_code_cell("show_source(batched.bias_gradient)")
    cell.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            {"text/plain": repr(listing), "text/html": listing._repr_html_()},
            execution_count=1,
        )
    ]
    line = exercises.answer_lines("hidden_error")[0]
    nb.cells += [
        cell,
        nbformat.v4.new_markdown_cell(f"Spaced out: `{'  '.join(line.split())}`"),
        nbformat.v4.new_markdown_cell(":::{admonition} Solution\n:class: dropdown\nIt is.\n:::"),
    ]
    nbformat.write(nb, chapter)
    intro = leaky / "book/intro.md"
    intro.write_text(intro.read_text("utf-8") + "\nEach has its solution behind a toggle.\n")
    found = set(leaks(edition_pages(leaky), leaky)) - set(leaks(edition_pages(edition), edition))
    page = "book/05-stacking.ipynb"
    n = len(nb.cells)
    assert any(
        f.startswith(f"{page}, cell {n - 3} output: the answer of bias_gradient") for f in found
    )
    assert f"{page}, cell {n - 2} (markdown): the answer of hidden_error: {line!r}" in found
    assert f"{page}, cell {n - 1} (markdown): a solution" in found
    assert "book/intro.md, page: says the solutions are behind a toggle" in found
    planted = tuple(f"{page}, cell {k} " for k in (n - 3, n - 2, n - 1)) + ("book/intro.md",)
    assert all(f.startswith(planted) for f in found), found  # nothing else is new


@pytest.mark.book
def test_no_answer_in_the_student_html(edition):
    """The student edition built as HTML (the stored outputs, not executed), searched
    page by page; and the search catches an answer planted in a page."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter-book")), "build", str(edition)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html_root = edition / "_build" / "html"
    pages = sorted(html_root.rglob("*.html"))
    assert len(pages) >= len(se.toc_files(edition))
    assert_no_answer(leaks(pages, html_root), "HTML")
    # negative control: the listing of a library answer, highlighted as the book shows it
    planted = html_root / "planted.html"
    listing = show_source(exercises.CHECKERS["weight_gradient"].answer[0])._repr_html_()
    planted.write_text(f"<html><body>{listing}</body></html>", "utf-8")
    assert leaks([planted], html_root)
