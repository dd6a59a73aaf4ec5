"""The student edition (scripts/student_edition.py, ``make student``).

On a small synthetic book (every form of solution the convention allows) and on the real
chapters: no solution text survives, the answer cells are gone and each became a stub
whose ``exercises.check`` fails with a helpful message, and the outputs that would give
the answer away are cleared. The HTML build of the edition is tested on the synthetic
book (marked ``book``: it runs jupyter-book).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mlp_core.book import exercises
from mlp_core.book.show import show_source
from mlp_core.core import batched

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "student_edition", ROOT / "scripts/student_edition.py"
)
se = importlib.util.module_from_spec(_spec)
sys.modules["student_edition"] = se
_spec.loader.exec_module(se)

# ------------------------------------------------------------------ the synthetic book

SECRET = [  # text that appears only inside solutions of the synthetic book
    "COLON-SOLUTION the derivative is a times one minus a",
    "BACKTICK-SOLUTION the shapes chain as (m, n)(n, h)",
    "GATED-SOLUTION-PROSE first the prose of the gated solution",
    "gated_solution_code_value = 6 * 7",
    "GATED-SOLUTION-AFTER the prose after the code",
    "PAGE-SOLUTION a solution on a markdown page",
    "return A_prev @ W + b  # the reference answer",
    "return delta.sum(axis=0) / delta.shape[0]  # reference",
    "ADMONITION-SOLUTION a solution written as a plain admonition",
]
# A demonstration built on an answer: its code holds the library's key line of hidden_error.
DEMO = (
    "def back_through(delta_next, W_next, Z, sigma_prime):\n"
    "    return (delta_next @ W_next.T) * sigma_prime(Z)\n"
    "\n"
    'print("demo defined")'
)


def md(text):
    return nbformat.v4.new_markdown_cell(text)


def code(text, tags=None, outputs=None):
    cell = nbformat.v4.new_code_cell(text)
    if tags:
        cell.metadata["tags"] = tags
    if outputs is not None:
        cell.outputs = outputs
        cell.execution_count = 1
    return cell


def stored(result):
    return [
        nbformat.v4.new_output(
            "execute_result",
            {"text/plain": repr(result), "text/html": result._repr_html_()},
            execution_count=1,
        )
    ]


def synthetic_book(root: Path) -> Path:
    """A two-chapter book using every solution form: colon and backtick solutions, a gated
    solution across a code cell, an admonition titled Solution, two answer cells with their
    checks, a markdown page; and two cells that show an answer elsewhere: the listing of a
    library answer, and a demonstration whose code holds one (used by the cell after it)."""
    (root / "book").mkdir(parents=True)
    shutil.copy2(ROOT / "_config.yml", root / "_config.yml")
    (root / "book" / "_static").mkdir()
    (root / "book" / "_static" / "book.css").write_text("/* test */\n")
    # the extensions the real _config.yml loads from the book's own folder
    shutil.copytree(ROOT / "book" / "_ext", root / "book" / "_ext")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: Part\n    numbered: true\n    chapters:\n"
        "      - file: book/01-demo\n      - file: book/02-page\n"
    )
    (root / "book" / "intro.md").write_text(
        "# Intro\n\nThe synthetic book.\n\n## Using it in class\n\nTEACHER-SECTION with "
        "its solution behind a toggle.\n\n## After\n\nStays.\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        md("# Demo chapter\n\nSome prose."),
        code("import numpy as np", outputs=[]),
        md(
            "## Exercises\n\n:::{exercise}\n:label: ex-01-colon\nA colon exercise.\n:::\n\n"
            f":::{{solution}} ex-01-colon\n:class: dropdown\n{SECRET[0]}\n\n"
            "```python\nx = 1\n```\n:::\n\n"
            "Prose between the exercises stays."
        ),
        md(
            "```{exercise}\n:label: ex-01-backtick\nA backtick exercise.\n```\n\n"
            f"```{{solution}} ex-01-backtick\n:class: dropdown\n{SECRET[1]}\n```"
        ),
        md(
            ":::{exercise}\n:label: ex-01-gated\nA gated exercise.\n:::\n\n"
            f":::{{solution-start}} ex-01-gated\n:class: dropdown\n:::\n\n{SECRET[2]}"
        ),
        code(SECRET[3], outputs=[]),
        md(f"{SECRET[4]}\n\n:::{{solution-end}}\n:::\n\nAfter the gated solution."),
        md(":::{exercise}\n:label: ex-01-linear\nWrite `linear`.\n:::"),
        code(
            "def linear(A_prev, W, b):\n"
            "    # Hint: one matrix product, then add the bias to every row\n"
            f"    {SECRET[6]}",
            tags=["hide-input", "exercise-answer"],
            outputs=[],
        ),
        code(
            'from mlp_core.book import exercises\nexercises.check("linear", linear)',
            outputs=stored(exercises.check("linear", batched.linear)),
        ),
        code(
            "def bias_gradient(delta):\n"
            '    # Hint: the "mean" over the examples (axis 0), one entry per unit\n'
            f"    {SECRET[7]}",
            tags=["hide-input", "exercise-answer"],
            outputs=[],
        ),
        code(
            'exercises.check("bias_gradient", bias_gradient)',
            outputs=stored(exercises.check("bias_gradient", batched.bias_gradient)),
        ),
    ]
    listing = show_source(batched.weight_gradient)
    nb.cells += [
        md(
            ":::{admonition} Exercise\nAn admonition exercise.\n:::\n\n"
            f":::{{admonition}} Solution\n:class: dropdown\n{SECRET[8]}\n:::"
        ),
        code(
            "from mlp_core.book.show import show_source\nshow_source(batched.weight_gradient)",
            outputs=[
                nbformat.v4.new_output(
                    "execute_result",
                    {"text/plain": repr(listing), "text/html": listing._repr_html_()},
                    execution_count=1,
                )
            ],
        ),
        code(DEMO, outputs=[nbformat.v4.new_output("stream", text="demo defined\n")]),
        code(
            "import numpy as np\n"
            "print(back_through(np.ones((2, 3)), np.ones((4, 3)), np.zeros((2, 4)), np.cos).shape)",
            outputs=[nbformat.v4.new_output("stream", text="(2, 4)\n")],
        ),
    ]
    nbformat.write(nb, root / "book" / "01-demo.ipynb")
    (root / "book" / "02-page.md").write_text(
        "# A page\n\n:::{exercise}\n:label: ex-02-page\nOn a page.\n:::\n\n"
        f":::{{solution}} ex-02-page\n:class: dropdown\n{SECRET[5]}\n:::\n\nThe end.\n"
    )
    return root


# ------------------------------------------------------------------ shared checks


def page_text(path: Path) -> str:
    """Everything a reader can see on a page: sources and outputs."""
    if path.suffix != ".ipynb":
        return path.read_text("utf-8")
    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


def solution_lines(report) -> list[str]:
    """The distinctive lines of every removed solution and answer body."""
    lines = []
    for removed in report.values():
        texts = list(removed.solutions) + ["\n".join(a.split("\n")[2:]) for a in removed.answers]
        for text in texts:
            for line in text.split("\n"):
                s = line.strip()
                if len(s) >= 12 and not s.startswith((":::", "```", ":class:", ":label:")):
                    lines.append(s)
    return lines


def assert_no_solution_survives(src: Path, out: Path, report) -> None:
    """Each solution line occurs in the student edition only as often as it occurs in the
    source edition OUTSIDE the solutions (prose or code that the book shows anyway)."""
    for page, removed in report.items():
        source, student = page_text(src / page), page_text(out / page)
        inside = "\n".join(
            list(removed.solutions) + ["\n".join(a.split("\n")[2:]) for a in removed.answers]
        )
        for line in solution_lines({page: removed}):
            allowed = source.count(line) - inside.count(line)
            assert student.count(line) <= allowed, f"{page}: solution text survives: {line!r}"


def student_cells(out: Path, report):
    for page in report:
        if page.endswith(".ipynb"):
            yield page, nbformat.read(out / page, as_version=4).cells


def imports_before(cells, k) -> dict:
    """A namespace holding what the code cells before cell k import (their top-level
    import statements), as the kernel would have it when the student runs cell k."""
    namespace: dict = {}
    for cell in cells[:k]:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics: not Python
            continue
        tree.body = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        exec(compile(tree, "<imports>", "exec"), namespace)
    return namespace


def run_stub_and_check(stub: str, check_cell: str, namespace: dict):
    """Execute a stub and the check cell after it (as a kernel would) and return the
    value of the check cell's last expression."""
    exec(compile(stub, "<stub>", "exec"), namespace)
    tree = ast.parse(check_cell)
    last = tree.body.pop()
    exec(compile(tree, "<check>", "exec"), namespace)
    assert isinstance(last, ast.Expr), "the check cell must end with the check call"
    return eval(compile(ast.Expression(last.value), "<check>", "eval"), namespace)


def assert_stubs_fail_helpfully(out: Path, report) -> int:
    n = 0
    for page, cells in student_cells(out, report):
        for k, cell in enumerate(cells):
            tags = cell.metadata.get("tags", [])
            assert se.ANSWER_TAG not in tags, f"{page}: an answer cell survives"
            if se.STUB_TAG not in tags:
                continue
            n += 1
            assert "hide-input" not in tags
            assert cell.outputs == []
            check_cell = cells[k + 1]
            assert se.CHECK_CALL in check_cell.source and check_cell.outputs == []
            result = run_stub_and_check(cell.source, check_cell.source, imports_before(cells, k))
            assert isinstance(result, exercises.CheckResult)
            assert not result.passed and result.mistake == "not-written"
            hint = se.HINT.match(cell.source.split("\n")[1])["hint"]
            assert hint in result.message and "not written yet" in result.message
    assert n == sum(len(r.stubs) for r in report.values())
    return n


# ------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    src = synthetic_book(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("edition") / "student"
    return src, out, se.write_edition(src, out)


def test_synthetic_no_solution_text_survives(synthetic):
    src, out, report = synthetic
    assert sum(len(r.solutions) for r in report.values()) == 5
    for secret in SECRET:
        assert secret in page_text(src / "book/01-demo.ipynb") + page_text(src / "book/02-page.md")
        for page in ("book/01-demo.ipynb", "book/02-page.md"):
            assert secret not in page_text(out / page)
    assert_no_solution_survives(src, out, report)
    student = page_text(out / "book/01-demo.ipynb")
    for kept in (
        "Prose between the exercises stays.",
        "After the gated solution.",
        "A gated exercise.",
    ):
        assert kept in student
    assert "{solution" not in student and "{solution" not in page_text(out / "book/02-page.md")
    assert "{exercise}" in student


def test_synthetic_answers_become_stubs_that_fail_helpfully(synthetic):
    src, out, report = synthetic
    assert assert_stubs_fail_helpfully(out, report) == 2
    stub = report["book/01-demo.ipynb"].stubs[1]
    assert stub == (
        "def bias_gradient(delta):\n"
        '    # Hint: the "mean" over the examples (axis 0), one entry per unit\n'
        "    raise NotImplementedError("
        '"the \\"mean\\" over the examples (axis 0), one entry per unit")'
    )


def test_synthetic_edition_has_its_own_config_and_toc(synthetic):
    import yaml

    src, out, _ = synthetic
    config = yaml.safe_load((out / "_config.yml").read_text("utf-8"))
    assert config["title"].endswith("(student edition)")
    assert config["execute"]["execute_notebooks"] == "off"
    assert "sphinx_exercise" in config["sphinx"]["config"]["extensions"]
    assert (out / "_toc.yml").read_text() == (src / "_toc.yml").read_text()  # no guide here
    assert (out / "book/_static/book.css").exists()
    executed = se.student_config(src, execute=True)["execute"]
    assert executed["allow_errors"] is True and executed["raise_on_error"] is False


def test_convention_breaks_are_refused(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [code("x = 1\ndef f():\n    pass", tags=["exercise-answer"])]
    with pytest.raises(se.EditionError, match="must start with its `def ...:` line"):
        se.student_notebook(nb, "bad.ipynb")
    nb.cells = [md(":::{solution-start} ex-x\n:::\n\nnever closed")]
    with pytest.raises(se.EditionError, match="never closed"):
        se.student_notebook(nb, "bad.ipynb")


def test_negative_control_the_checks_catch_a_leak(synthetic, tmp_path):
    """The leak check itself must fail when a solution is left in."""
    src, out, report = synthetic
    leaky = tmp_path / "leaky"
    shutil.copytree(out, leaky)
    page = leaky / "book/02-page.md"
    page.write_text(page.read_text() + "\n" + SECRET[5] + "\n")
    with pytest.raises(AssertionError, match="solution text survives"):
        assert_no_solution_survives(src, leaky, report)


def test_real_chapters(tmp_path):
    out = tmp_path / "student"
    report = se.write_edition(ROOT, out)
    toc = se.toc_files(ROOT)
    assert [Path(p) for p in report] == toc and len(toc) >= 17
    for f in toc:
        assert (out / f).exists()
    # the teacher's guide is for the teacher only
    assert "teachers-guide" in (ROOT / "_toc.yml").read_text()
    assert "teachers-guide" not in (out / "_toc.yml").read_text()
    assert not (out / "book/teachers-guide.md").exists()
    assert_no_solution_survives(ROOT, out, report)
    assert_stubs_fail_helpfully(out, report)
    for page in report:
        text = page_text(out / page)
        assert "{solution}" not in text and "{solution-start}" not in text, page


@pytest.mark.book
def test_synthetic_html_build_has_no_solutions(synthetic):
    src, out, report = synthetic
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("jupyter-book")),
            "build",
            str(out),
            "-n",
            "-W",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = "\n".join(p.read_text("utf-8") for p in (out / "_build/html").rglob("*.html"))
    for secret in SECRET:
        assert secret.replace('"', "&quot;") not in html and secret not in html
    assert "Exercise" in html and "NotImplementedError" in html
    # launch buttons are off by default (the book works offline)
    assert "colab.research.google.com" not in html and "git-pull" not in html


# ------------------------------------------------------------------ answers shown elsewhere


def test_synthetic_listing_of_an_answer_becomes_a_note(synthetic):
    src, out, report = synthetic
    cells = nbformat.read(out / "book/01-demo.ipynb", as_version=4).cells
    notes = [c for c in cells if "leaves out the code shown here" in c.source]
    assert len(notes) == 1 and notes[0].cell_type == "markdown"
    assert "`weight_gradient`" in notes[0].source
    assert not any("show_source(batched.weight_gradient)" in c.source for c in cells)
    assert report["book/01-demo.ipynb"].listings == [
        "from mlp_core.book.show import show_source\nshow_source(batched.weight_gradient)"
    ]


def test_synthetic_demo_holding_an_answer_runs_from_a_hidden_file(synthetic):
    src, out, report = synthetic
    cells = nbformat.read(out / "book/01-demo.ipynb", as_version=4).cells
    (k,) = [k for k, c in enumerate(cells) if "%run -i" in c.source]
    path = f"{se.HIDDEN}/01-demo-{k + 1}.py"  # numbered as in the teacher's chapter
    assert cells[k].source.endswith(f"%run -i {path}")
    assert "`hidden_error`" in cells[k].source and "defines back_through" in cells[k].source
    assert DEMO.split("\n")[1].strip() not in page_text(out / "book/01-demo.ipynb")
    assert (out / "book" / path).read_text() == DEMO + "\n"
    assert cells[k].outputs[0]["text"] == "demo defined\n"  # its output shows no answer


def test_synthetic_teachers_section_of_the_intro_is_replaced(synthetic):
    src, out, report = synthetic
    intro = (out / "book/intro.md").read_text()
    assert "TEACHER-SECTION" not in intro and "behind a toggle" not in intro
    assert "## This edition" in intro and "## After\n\nStays." in intro
    assert "The synthetic book." in intro


def test_a_renamed_teachers_section_is_refused(tmp_path):
    with pytest.raises(se.EditionError, match="teacher's section 'Using it in class'"):
        se.student_markdown("# Intro\n\n## Teaching\n\nA toggle.\n", "book/intro.md")


@pytest.mark.book
def test_synthetic_student_chapter_runs_top_to_bottom(synthetic):
    """The hidden demonstration still defines what the cells after it use, and every
    stub and check runs (a check of a stub says "not written yet", it does not raise)."""
    import nbclient

    src, out, report = synthetic
    nb = nbformat.read(out / "book/01-demo.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, resources={"metadata": {"path": str(out / "book")}}
    )
    client.execute()
    (k,) = [k for k, c in enumerate(nb.cells) if "%run -i" in c.source]
    assert nb.cells[k].outputs[0]["text"] == "demo defined\n"
    assert nb.cells[k + 1].outputs[0]["text"] == "(2, 4)\n"


# ------------------------------------------------------------------ the folders


def run_main(capsys, *argv):
    """main(argv): its exit status and its stderr."""
    status = se.main([*map(str, argv), "--no-html"])
    return status, capsys.readouterr().err


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def book(tmp_path):
    return synthetic_book(tmp_path / "src")


@pytest.mark.parametrize(
    "where, needle",
    [
        (".", "is the source folder itself"),
        ("..", "holds the source"),
        ("book", "lies inside"),
        ("book/student", "lies inside"),
        ("_toc.yml", "is a file"),
        ("book/01-demo.ipynb", "is a file"),
    ],
)
def test_an_output_folder_that_would_harm_the_source_is_refused(book, capsys, where, needle):
    before = snapshot(book)
    status, err = run_main(capsys, "--src", book, "--out", book / where)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("student edition: --out ") and needle in err
    assert snapshot(book) == before  # nothing deleted, nothing written


def test_an_output_folder_with_other_files_is_kept(book, tmp_path, capsys):
    other = tmp_path / "home"
    other.mkdir()
    (other / "thesis.tex").write_text("three years of work")
    status, err = run_main(capsys, "--src", book, "--out", other)
    assert status == 2 and err.count("\n") == 1 and "nothing was deleted" in err
    assert (other / "thesis.tex").read_text() == "three years of work"


def test_an_earlier_edition_is_replaced(book, tmp_path, capsys):
    out = tmp_path / "edition"
    assert run_main(capsys, "--src", book, "--out", out)[0] == 0
    (out / "book" / "left-over.txt").write_text("from the first run")
    assert run_main(capsys, "--src", book, "--out", out)[0] == 0
    assert not (out / "book" / "left-over.txt").exists()
    assert (out / se.MARKER).exists() and (out / "book/01-demo.ipynb").exists()
    # the default place, inside the source folder but outside what the edition reads
    assert run_main(capsys, "--src", book, "--out", book / "_build" / "student")[0] == 0
    # an edition written before there was a marker: recognised by its _config.yml
    (out / se.MARKER).unlink()
    assert run_main(capsys, "--src", book, "--out", out)[0] == 0


@pytest.mark.parametrize("src", ["missing", "empty"])
def test_a_missing_source_is_one_line(tmp_path, capsys, src):
    (tmp_path / "empty").mkdir()
    status, err = run_main(capsys, "--src", tmp_path / src, "--out", tmp_path / "out")
    assert status == 2 and err.count("\n") == 1 and err.startswith("student edition: --src ")
    assert "_toc.yml" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture
def unwritable(tmp_path):
    """A folder this process cannot write into: a read-only temporary folder, or, for
    root (whom permissions do not stop), Linux's sysfs."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if not os.access(folder, os.W_OK):
            yield folder
        elif Path("/sys/kernel").is_dir() and not _can_create(Path("/sys/kernel")):
            yield Path("/sys/kernel")
        else:
            pytest.skip("no folder here that this process cannot write to")
    finally:
        folder.chmod(0o755)


def _can_create(folder: Path) -> bool:
    try:
        (folder / "mlp-core-probe").mkdir()
    except OSError:
        return False
    (folder / "mlp-core-probe").rmdir()
    return True


def test_an_output_folder_that_cannot_be_written_is_one_line(book, unwritable, capsys):
    status, err = run_main(capsys, "--src", book, "--out", unwritable / "student")
    assert status == 2 and err.count("\n") == 1
    assert err.startswith(f"student edition: --out {unwritable / 'student'}: cannot write there")


@pytest.mark.book
def test_real_student_chapters_with_hidden_cells_run(tmp_path):
    """Each student chapter whose demonstration moved to a hidden file (chapter 3's bug
    demonstration, today) runs from top to bottom without an error."""
    import nbclient

    out = tmp_path / "student"
    report = se.write_edition(ROOT, out)
    pages = [page for page, removed in report.items() if removed.hidden]
    assert pages
    for page in pages:
        nb = nbformat.read(out / page, as_version=4)
        folder = str((out / page).parent)
        nbclient.NotebookClient(nb, timeout=600, resources={"metadata": {"path": folder}}).execute()
