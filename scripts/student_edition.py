"""The student edition (``make student``): the chapters without their solutions.

Writes the book's chapters (the notebooks and the markdown pages of ``_toc.yml``) to
``_build/student/`` with

* every sphinx-exercise ``solution`` directive removed (colon or backtick fence), and
  every gated solution (``solution-start`` ... ``solution-end``, the markdown and the code
  cells between) removed;
* every ``exercise-answer`` code cell (the reference answer of a "write it yourself"
  exercise: its first line the ``def`` line, its second ``# Hint: <one line>``) replaced by
  a stub: the def line, the hint, and ``raise NotImplementedError("<hint>")``, tagged
  ``exercise-stub`` instead (and no longer hidden);
* the outputs of the stubs and of every ``exercises.check(...)`` cell cleared;

plus its own ``_config.yml`` (title "... (student edition)") and ``_toc.yml``, and the
rest of ``book/`` (styles, data); the teacher's guide is left out. Then it builds that
edition's HTML into
``_build/student/_build/html`` with ``jupyter-book build``.

Execution: by default the student edition is NOT executed (``execute_notebooks: off``):
every other cell keeps the output stored in the teacher's edition, and the cleared check
cells show nothing until a student runs them. ``--execute`` runs every notebook instead,
with ``allow_errors: true`` and ``raise_on_error: false``, so that a cell that calls a
stub (NotImplementedError) cannot fail the build. ``--no-html`` skips the HTML build.

Usage: python scripts/student_edition.py [--src .] [--out _build/student] [--execute]
       [--no-html]
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]

ANSWER_TAG = "exercise-answer"
STUB_TAG = "exercise-stub"
CHECK_CALL = "exercises.check("
# Pages for the teacher only: left out of the student edition (and of its _toc.yml).
TEACHER_ONLY = ("book/teachers-guide",)
# The opening of a solution directive: a colon or backtick fence and the directive name.
FENCE_OPEN = re.compile(r"^\s*(?P<fence>:{3,}|`{3,})\{(?P<kind>solution(?:-start|-end)?)\}")
HINT = re.compile(r"^(?P<indent>\s*)#\s*Hint:\s*(?P<hint>.*\S)\s*$")


class EditionError(Exception):
    """A chapter breaks the exercises convention (said where and how)."""


@dataclass
class Removed:
    """What the student edition took out of one chapter (for the report and the tests)."""

    solutions: list = field(default_factory=list)  # the text of each removed solution
    answers: list = field(default_factory=list)  # the source of each replaced answer cell
    stubs: list = field(default_factory=list)  # the source of each stub written
    gated: list | None = None  # what an open {solution-start} holds so far


def _closing(lines: list[str], start: int, fence: str) -> int:
    """The index of the line closing the fence opened at ``start`` (the last line when the
    fence is never closed, as MyST reads it)."""
    char = fence[0]
    for k in range(start + 1, len(lines)):
        s = lines[k].strip()
        if s and set(s) == {char} and len(s) >= len(fence):
            return k
    return len(lines) - 1


def strip_solutions(text: str, removed: Removed) -> str:
    """``text`` without its solution directives and without what lies inside a gated
    solution (which may have opened in an earlier cell: ``removed.gated`` is then the
    list of what it holds so far)."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if m:
            j = _closing(lines, i, m["fence"])
            block = "\n".join(lines[i : j + 1])
            if m["kind"] == "solution":
                (removed.gated if removed.gated is not None else removed.solutions).append(block)
            elif m["kind"] == "solution-start":
                removed.gated = [block]
            elif removed.gated is not None:  # solution-end
                removed.gated.append(block)
                removed.solutions.append("\n".join(removed.gated))
                removed.gated = None
            i = j + 1
            continue
        if removed.gated is not None:
            removed.gated.append(lines[i])
        else:
            out.append(lines[i])
        i += 1
    return "\n".join(out)


def stub_source(source: str, where: str) -> str:
    """The stub for an answer cell: its def line, its hint, and raise NotImplementedError."""
    lines = source.split("\n")
    if len(lines) < 2 or not lines[0].startswith("def ") or not HINT.match(lines[1]):
        raise EditionError(
            f"{where}: a cell tagged {ANSWER_TAG!r} must start with its `def ...:` line and "
            "then a `# Hint: <one line>` comment (the exercises convention); it starts with "
            f"{lines[:2]!r}."
        )
    h = HINT.match(lines[1])
    indent = h["indent"] or "    "
    hint = h["hint"]
    message = hint.replace("\\", "\\\\").replace('"', '\\"')
    return f'{lines[0]}\n{indent}# Hint: {hint}\n{indent}raise NotImplementedError("{message}")'


def student_notebook(nb, where: str) -> tuple[object, Removed]:
    """A copy of the notebook ``nb`` made into the student edition."""
    nb = copy.deepcopy(nb)
    removed = Removed()
    cells = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            text = strip_solutions(cell.source, removed)
            if text.strip() or text == cell.source:  # a cell left empty goes
                cell.source = text
                cells.append(cell)
            continue
        if removed.gated is not None:  # a code cell inside a gated solution
            removed.gated.append(cell.source)
            continue
        tags = list(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and ANSWER_TAG in tags:
            removed.answers.append(cell.source)
            cell.source = stub_source(cell.source, f"{where}, cell {k}")
            removed.stubs.append(cell.source)
            cell.metadata["tags"] = [t for t in tags if t not in (ANSWER_TAG, "hide-input")] + [
                STUB_TAG
            ]
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "code" and CHECK_CALL in cell.source:
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    if removed.gated is not None:
        raise EditionError(f"{where}: a {{solution-start}} is never closed by {{solution-end}}.")
    nb.cells = cells
    return nb, removed


def student_markdown(text: str, where: str) -> tuple[str, Removed]:
    removed = Removed()
    text = strip_solutions(text, removed)
    if removed.gated is not None:
        raise EditionError(f"{where}: a {{solution-start}} is never closed by {{solution-end}}.")
    return text, removed


def toc_files(src: Path) -> list[Path]:
    """The book's pages, in the order of ``_toc.yml`` (with their extensions)."""
    toc = yaml.safe_load((src / "_toc.yml").read_text("utf-8"))
    names = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in toc.items() if k != "root"})
    files = []
    for name in names:
        if name in TEACHER_ONLY:
            continue
        for ext in (".ipynb", ".md"):
            if (src / f"{name}{ext}").exists():
                files.append(Path(f"{name}{ext}"))
                break
        else:
            raise EditionError(f"_toc.yml lists {name!r} but neither {name}.ipynb nor .md exists")
    return files


def student_config(src: Path, execute: bool) -> dict:
    config = yaml.safe_load((src / "_config.yml").read_text("utf-8"))
    config["title"] = f"{config.get('title', 'Book')} (student edition)"
    ex = config.setdefault("execute", {})
    if execute:
        ex.update(execute_notebooks="force", allow_errors=True, raise_on_error=False)
    else:
        ex["execute_notebooks"] = "off"
    return config


def write_edition(src: Path, out: Path, execute: bool = False) -> dict[str, Removed]:
    """Write the student edition of the book at ``src`` into ``out``; returns what was
    removed from each page."""
    src, out = Path(src).resolve(), Path(out).resolve()
    files = toc_files(src)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for top in {f.parts[0] for f in files if len(f.parts) > 1}:
        shutil.copytree(
            src / top,
            out / top,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "_build"),
        )
    report = {}
    for f in files:
        target = out / f
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.suffix == ".ipynb":
            nb, removed = student_notebook(nbformat.read(src / f, as_version=4), str(f))
            nbformat.write(nb, target)
        else:
            text, removed = student_markdown((src / f).read_text("utf-8"), str(f))
            target.write_text(text, "utf-8")
        report[str(f)] = removed
    (out / "_config.yml").write_text(
        "# The student edition (written by scripts/student_edition.py): no solutions.\n"
        + yaml.safe_dump(student_config(src, execute), sort_keys=False, allow_unicode=True),
        "utf-8",
    )
    (out / "_toc.yml").write_text(student_toc((src / "_toc.yml").read_text("utf-8")), "utf-8")
    for name in TEACHER_ONLY:
        for ext in (".md", ".ipynb"):
            (out / f"{name}{ext}").unlink(missing_ok=True)
    return report


def student_toc(text: str) -> str:
    """The table of contents without the teacher-only pages (its comments kept)."""
    pattern = "|".join(re.escape(n) for n in TEACHER_ONLY)
    return re.sub(rf"^\s*- file: (?:{pattern})\s*\n", "", text, flags=re.M)


def build_html(out: Path) -> int:
    """``jupyter-book build`` of the edition at ``out`` (strict: -n -W --keep-going)."""
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(out), "-n", "-W"]
    return subprocess.call(cmd + ["--keep-going"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student")
    parser.add_argument("--execute", action="store_true", help="run the notebooks too")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML build")
    args = parser.parse_args(argv)
    try:
        report = write_edition(args.src, args.out, execute=args.execute)
    except EditionError as e:
        print(f"student edition: {e}", file=sys.stderr)
        return 2
    n_sol = sum(len(r.solutions) for r in report.values())
    n_stub = sum(len(r.stubs) for r in report.values())
    print(
        f"student edition: {len(report)} pages written to {args.out}, "
        f"{n_sol} solutions removed, {n_stub} answers replaced by stubs"
    )
    print(json.dumps({p: len(r.stubs) for p, r in report.items() if r.stubs}, indent=1))
    if args.no_html:
        return 0
    status = build_html(args.out)
    if status == 0:
        print(f"Open {args.out / '_build' / 'html' / 'index.html'} (no solutions in it).")
    return status


if __name__ == "__main__":
    sys.exit(main())
