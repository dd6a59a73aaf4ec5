"""The nbgrader course (``make assignments``): the write-it-yourself exercises, to grade.

Writes an nbgrader course directory (default ``_build/assignments``) with one assignment
per chapter that has write-it-yourself exercises, named after the chapter
(``07-bias-gradient``), each one notebook:

* the chapter's title and what to do;
* the chapter's setup cell (its imports), locked;
* for every exercise: its text, taken from the chapter's ``{exercise}`` directive (roles
  made plain, the equations it cites written out); a **solution cell** holding the
  chapter's answer cell with its body between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (nbgrader replaces the region with ``raise NotImplementedError()`` in
  the released version); and a locked, **autograded test cell** built on
  ``exercises.check``: it prints the checker's message (the feedback the student gets) and
  fails unless the check passed, worth :data:`POINTS` points.

plus ``nbgrader_config.py`` (written only when missing: the teacher may edit it). Then it
runs ``nbgrader generate_assignment`` for each assignment, which writes the student
version into ``release/``. Everything runs offline.

Running it again rewrites the chapters' assignments in ``source/`` and ``release/`` only:
the gradebook, the submissions, the autograded work, the feedback and any other
assignment stay.

Usage: python scripts/assignments.py [--src .] [--out _build/assignments] [--no-generate]
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from student_edition import (  # noqa: E402 - the sibling script, found through sys.path
    ANSWER_TAG,
    CHECK_NAME,
    EditionError,
    answer_parts,
    chapter_number,
    check_folders,
    defined_names,
)

ROOT = Path(__file__).resolve().parents[1]
COURSE_ID = "vectorized-backprop"
MARKER = ".nbgrader-course"  # marks a course folder this script wrote (so it may update it)
ASSIGNMENTS = "[0-9][0-9]-*"  # the glob of the chapters' assignment names, for nbgrader
# Points per exercise, by checker name: a one-line formula 1, the rest by their size.
POINTS = {"sgd_step": 2, "skip_layer": 2, "backprop_single": 3, "backprop": 3}
EXERCISE = re.compile(
    r"^(?P<fence>:{3,}|`{3,})\{exercise\}[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$", re.M | re.S
)
EQUATION = re.compile(r"^\$\$[ \t]*\n((?:(?!\$\$).)*?)\n\$\$\s*\((eq-[\w-]+)\)", re.M | re.S)
ROLE = re.compile(r"\{(?P<role>\w+)\}`(?P<text>[^`]*)`")
CONFIG = f'''# nbgrader's configuration of this course (written by scripts/assignments.py once;
# edit it freely: the script does not overwrite it).
c = get_config()  # noqa: F821 - nbgrader provides it
c.CourseDirectory.course_id = "{COURSE_ID}"
# A student's function that never returns is stopped by the check itself after
# mlp_core.book.exercises.TIME_LIMIT seconds; a cell gets this long in all.
c.ExecutePreprocessor.timeout = 300
# With JupyterHub on the classroom's own server, the exchange is a shared folder on it:
# c.Exchange.root = "/srv/nbgrader/exchange"
'''


def points(name: str) -> int:
    return POINTS.get(name, 1)


def plain_roles(text: str, chapters: dict) -> str:
    """MyST roles as a notebook shows them: {doc}`08-weight-gradient` as "chapter 8",
    {eq}`eq-x` as "equation (eq-x)" (written out below the text), others as code."""

    def plain(m):
        role, target = m["role"], m["text"].split("<")[-1].rstrip(">")
        if role == "doc" and chapter_number(target) is not None:
            return f"chapter {chapter_number(target)}"
        if role == "eq":
            return f"equation ({target})"
        return f"`{m['text']}`"

    return ROLE.sub(plain, text)


def exercise_text(markdown: str, equations: dict) -> str:
    """The text of the last {exercise} directive of ``markdown``, as a notebook shows it,
    followed by the equations it cites."""
    found = list(EXERCISE.finditer(markdown))
    if not found:
        return ""
    body = "\n".join(
        line for line in found[-1]["body"].split("\n") if not re.match(r"^:\w+:", line)
    ).strip()
    cited = [label for label in re.findall(r"\{eq\}`([\w-]+)`", body) if label in equations]
    text = plain_roles(body, {})
    for label in dict.fromkeys(cited):
        text += f"\n\n$$\n{equations[label]}\n\\tag{{{label}}}\n$$"
    return text


def solution_source(answer: str, where: str) -> str:
    """The chapter's answer cell with its body inside nbgrader's solution region."""
    def_line, hint, body = answer_parts(answer, where)
    indent = hint["indent"] or "    "
    return (
        f"{def_line}\n{hint.string}\n{indent}### BEGIN SOLUTION\n"
        + "\n".join(body)
        + f"\n{indent}### END SOLUTION"
    )


def check_source(name: str, function: str) -> str:
    """The autograded test: the check's message is the feedback; no pass, no points."""
    return (
        f'result = exercises.check("{name}", {function})\n'
        "print(result.message)\n"
        'assert result.passed, "not yet: see the message above"'
    )


def _cell(kind: str, source: str, grade_id: str | None = None, **nbgrader):
    cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source)
    if grade_id is not None:
        cell.metadata["nbgrader"] = {
            "grade": False,
            "solution": False,
            "locked": False,
            "grade_id": grade_id,
            "schema_version": 3,
            **nbgrader,
        }
    return cell


def _title(nb) -> str:
    for cell in nb.cells:
        m = re.search(r"^# (.+)$", cell.source, re.M) if cell.cell_type == "markdown" else None
        if m:
            return m.group(1).strip()
    return "?"


def assignment(nb, page: Path) -> tuple[object, list[str]] | None:
    """The assignment notebook of the chapter ``nb`` (None when it has no write-it-yourself
    exercise) and the names of its exercises."""
    cells = nb.cells
    answers = [k for k, c in enumerate(cells) if ANSWER_TAG in c.metadata.get("tags", [])]
    if not answers:
        return None
    number = chapter_number(page)
    markdown = "\n\n".join(c.source for c in cells if c.cell_type == "markdown")
    equations = {label: tex.strip() for tex, label in EQUATION.findall(markdown)}
    setup = next(c.source for c in cells if c.cell_type == "code")
    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    out.cells = [
        _cell(
            "markdown",
            f"# Chapter {number}: {_title(nb)}\n\n"
            f"The write-it-yourself exercises of chapter {number} of *Vectorized "
            "Backpropagation*, to hand in. Read the chapter first. Run the setup cell, then, "
            "for each exercise, write the function where it says `# YOUR CODE HERE` (delete "
            "the `raise NotImplementedError()` line), run its cell, and run the check below "
            "it: the check names the likely mistake, and it is how your work is graded. Do "
            "not change the setup and check cells.",
        ),
        _cell(
            "code",
            f"{setup}\nfrom mlp_core.book import exercises",
            f"ch{number:02d}-setup",
            locked=True,
        ),
    ]
    names = []
    for k in answers:
        where = f"{page}, cell {k}"
        checks = [CHECK_NAME.search(c.source) for c in cells[k + 1 :]]
        name = next((m.group(1) for m in checks if m), None)
        if name is None:
            raise EditionError(f"{where}: no exercises.check(...) cell follows the answer cell.")
        function = defined_names(cells[k].source)[0]
        before = [c.source for c in cells[:k] if c.cell_type == "markdown"]
        text = exercise_text(before[-1] if before else "", equations)
        n = points(name)
        out.cells += [
            _cell(
                "markdown",
                f"## Exercise: `{function}` ({n} point{'s' if n > 1 else ''})\n\n{text}",
            ),
            _cell(
                "code",
                solution_source(cells[k].source, where),
                f"{name}-answer",
                solution=True,
            ),
            _cell(
                "code",
                check_source(name, function),
                f"{name}-check",
                grade=True,
                locked=True,
                points=n,
            ),
        ]
        names.append(name)
    return out, names


def assignment_id(page: Path) -> str:
    """The chapter's file name, ``07-bias-gradient``: matched by :data:`ASSIGNMENTS`."""
    return page.stem


def write_course(src: Path, out: Path) -> dict[str, list[str]]:
    """Write the course's ``source/`` (and its config when missing) at ``out`` from the
    book at ``src``; returns {assignment: the exercise names}."""
    src, out = Path(src).resolve(), Path(out).resolve()
    files = check_folders(src, out, MARKER)
    made = {}
    for page in files:
        if page.suffix != ".ipynb":
            continue
        built = assignment(nbformat.read(src / page, as_version=4), page)
        if built is not None:
            made[assignment_id(page)] = built
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("Written by scripts/assignments.py: it may update it.\n")
        with tempfile.TemporaryFile(dir=out):
            pass
        if not (out / "nbgrader_config.py").exists():
            (out / "nbgrader_config.py").write_text(CONFIG, "utf-8")
        for name, (nb, _) in made.items():
            if (out / "source" / name).exists():
                shutil.rmtree(out / "source" / name)
            (out / "source" / name).mkdir(parents=True)
            nbformat.write(nb, out / "source" / name / f"{name}.ipynb")
    except OSError as e:
        raise EditionError(
            f"--out {out}: cannot write there ({e.strerror or e}); give a folder you can write to."
        ) from None
    return {name: names for name, (_, names) in made.items()}


def nbgrader(*args: str, cwd: Path, **run) -> subprocess.CompletedProcess:
    """Run the ``nbgrader`` command of this Python's environment in the course ``cwd``
    (with that environment's commands first on PATH: nbgrader calls ``alembic``)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["nbgrader", *args], cwd=cwd, env=env, **run)


def generate(out: Path) -> int:
    """``nbgrader generate_assignment`` for the chapters' assignments (their release
    versions), in one run: a glob of their names."""
    return nbgrader("generate_assignment", ASSIGNMENTS, "--force", cwd=out).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "assignments")
    parser.add_argument(
        "--no-generate", action="store_true", help="write source/ only, not the release"
    )
    args = parser.parse_args(argv)
    try:
        made = write_course(args.src, args.out)
    except EditionError as e:
        print(f"assignments: {e}", file=sys.stderr)
        return 2
    total = sum(points(n) for names in made.values() for n in names)
    print(
        f"assignments: {len(made)} assignments written to {args.out / 'source'} "
        f"({sum(len(v) for v in made.values())} exercises, {total} points in all)"
    )
    if args.no_generate:
        return 0
    status = generate(args.out.resolve())
    if status == 0:
        print(f"assignments: the student versions are in {args.out / 'release'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
