"""The student edition (``make student``): the chapters without their solutions.

Writes the book's chapters (the notebooks and the markdown pages of ``_toc.yml``) to
``_build/student/`` with

* every sphinx-exercise ``solution`` directive removed (colon or backtick fence), every
  gated solution (``solution-start`` ... ``solution-end``, the markdown and the code
  cells between) removed, and every ``admonition`` titled Solution removed;
* every ``exercise-answer`` code cell (the reference answer of a "write it yourself"
  exercise: its first line the ``def`` line, its second ``# Hint: <one line>``) replaced by
  a stub: the def line, the hint, and ``raise NotImplementedError("<hint>")``, tagged
  ``exercise-stub`` instead (and no longer hidden);
* the outputs of the stubs and of every ``exercises.check(...)`` cell cleared;
* every other place that shows an answer found and taken out of sight. The answers are
  those of the checkers' table (``mlp_core.book.exercises``: the library functions that
  answer each exercise, their bodies and key lines) and the key lines of the chapters'
  answer cells. A cell whose *output* shows one (a ``show_source`` listing) becomes a
  short note; a cell whose *source* holds one (a demonstration built on the answer) keeps
  its outputs, and its code moves to ``book/_hidden/<chapter>-<cell>.py``, which the cell
  runs with ``%run -i``, so that the cells after it still work;
* the teacher's sections of the introduction replaced by a note for students;

plus its own ``_config.yml`` (title "... (student edition)") and ``_toc.yml``, and the
rest of ``book/`` (styles, data); the teacher's guide is left out. Then it builds that
edition's HTML into ``_build/student/_build/html`` with ``jupyter-book build``.

The output folder must not be, hold or lie inside what the edition reads (the source
folder, its ``book/``, ``_toc.yml``, ``_config.yml``); an existing folder is replaced only
when it is empty or an earlier student edition (it holds the marker file
``.student-edition``). Every refusal is one line on stderr and exit status 2.

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
import ast
import copy
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from mlp_core.book import exercises

ROOT = Path(__file__).resolve().parents[1]

ANSWER_TAG = "exercise-answer"
STUB_TAG = "exercise-stub"
CHECK_CALL = "exercises.check("
CHECK_NAME = re.compile(r"""exercises\.check\(\s*["'](\w+)["']""")
# Pages for the teacher only: left out of the student edition (and of its _toc.yml).
TEACHER_ONLY = ("book/teachers-guide",)
# Sections for the teacher only, by page and heading: replaced by STUDENT_NOTE.
TEACHER_SECTIONS = {"book/intro.md": "Using it in class"}
STUDENT_NOTE = """## This edition

This is the student edition: the exercises are here without their solutions. Each
*write it yourself* exercise starts as a stub, a function that raises
`NotImplementedError`; replace its body with your code and run the cell after it, which
checks your function and names the likely mistake. Where a chapter would show the
library's own code for one of these functions, this edition leaves it out.
"""
# The opening of a solution directive: a colon or backtick fence and the directive name,
# or an admonition titled Solution (which the sphinx-exercise convention replaces).
FENCE_OPEN = re.compile(
    r"^\s*(?P<fence>:{3,}|`{3,})(?:\{(?P<kind>solution(?:-start|-end)?)\}"
    r"|\{admonition\}\s*(?:Solution|Answer)\b)",
    re.IGNORECASE,
)
HINT = re.compile(r"^(?P<indent>\s*)#\s*Hint:\s*(?P<hint>.*\S)\s*$")
HIDDEN = "_hidden"  # the folder, next to the chapters, of the cells kept out of sight
MARKER = ".student-edition"  # marks a folder this script wrote (so it may replace it)


class EditionError(Exception):
    """A chapter breaks the exercises convention, or the folders are unsafe (said where
    and how, in one line)."""


@dataclass
class Removed:
    """What the student edition took out of one chapter (for the report and the tests)."""

    solutions: list = field(default_factory=list)  # the text of each removed solution
    answers: list = field(default_factory=list)  # the source of each replaced answer cell
    stubs: list = field(default_factory=list)  # the source of each stub written
    listings: list = field(default_factory=list)  # cells whose output showed an answer
    hidden: dict = field(default_factory=dict)  # {file in _hidden: the source it holds}
    gated: list | None = None  # what an open {solution-start} holds so far


@dataclass
class Answers:
    """What shows an answer: [(the exercise, the text)], compared without spacing, and the
    chapter of each exercise's check (for the notes)."""

    texts: list
    chapters: dict

    def found_in(self, text: str) -> list[str]:
        """The exercises whose answer ``text`` shows (sorted, each once)."""
        text = flat(text)
        return sorted({name for name, answer in self.texts if answer in text})

    def where(self, names) -> str:
        return ", ".join(
            f"`{n}`" + (f" (chapter {self.chapters[n]})" if n in self.chapters else "")
            for n in names
        )


def flat(text: str) -> str:
    """Text as compared with an answer: HTML tags dropped, entities decoded, no spacing."""
    return re.sub(r"\s+", "", html.unescape(re.sub(r"<[^>]+>", "", text)))


def chapter_number(page) -> int | None:
    digits = re.match(r"(\d+)-", Path(page).name)
    return int(digits.group(1)) if digits else None


def find_answers(src: Path, files: list[Path]) -> Answers:
    """The answers of the book at ``src``: for each exercise of the checkers' table, the
    bodies and key lines of the library functions that answer it; and the key lines of
    each answer cell of the chapters, under the name of the exercise its check names."""
    texts = []
    for name in exercises.NAMES:
        for text in exercises.answer_bodies(name) + exercises.answer_lines(name):
            texts.append((name, flat(text)))
    chapters = {}
    for f in files:
        if f.suffix != ".ipynb":
            continue
        cells = nbformat.read(src / f, as_version=4).cells
        for k, cell in enumerate(cells):
            checked = CHECK_NAME.search(cell.source) if cell.cell_type == "code" else None
            if checked:
                chapters.setdefault(checked.group(1), chapter_number(f))
            if ANSWER_TAG not in cell.metadata.get("tags", []):
                continue
            checks = [CHECK_NAME.search(c.source) for c in cells[k + 1 :]]
            name = next((m.group(1) for m in checks if m), None) or defined_names(cell.source)[0]
            texts += [(name, flat(line)) for line in exercises.key_lines(cell.source)]
    return Answers(texts, chapters)


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
            if m["kind"] in ("solution", None):  # None: an admonition titled Solution
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


def answer_parts(source: str, where: str):
    """An answer cell's ``def`` line, its hint (a :data:`HINT` match) and its body lines, or
    an :class:`EditionError` naming the cell when it breaks the exercises convention."""
    lines = source.split("\n")
    hint = HINT.match(lines[1]) if len(lines) > 1 else None
    if not lines[0].startswith("def ") or hint is None or len(lines) < 3:
        raise EditionError(
            f"{where}: a cell tagged {ANSWER_TAG!r} must start with its `def ...:` line, "
            "then a `# Hint: <one line>` comment, then its body (the exercises convention); "
            f"it starts with {lines[:2]!r}."
        )
    return lines[0], hint, lines[2:]


def stub_source(source: str, where: str) -> str:
    """The stub for an answer cell: its def line, its hint, and raise NotImplementedError."""
    def_line, h, _ = answer_parts(source, where)
    indent = h["indent"] or "    "
    hint = h["hint"]
    message = hint.replace("\\", "\\\\").replace('"', '\\"')
    return f'{def_line}\n{indent}# Hint: {hint}\n{indent}raise NotImplementedError("{message}")'


def defined_names(source: str) -> list[str]:
    """The functions and classes a cell defines at its top level."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [n.name for n in tree.body if isinstance(n, kinds)]


def output_text(output) -> str:
    """Every text a stored output holds (stream text, plain text, HTML, ...)."""
    return "\n".join([output.get("text", "")] + [str(v) for v in output.get("data", {}).values()])


def _listing_note(names, answers: Answers) -> str:
    return (
        f"*The student edition leaves out the code shown here: it is the answer to the "
        f"write-it-yourself exercise {answers.where(names)}.*"
    )


def _hidden_cell(names, answers: Answers, path: str, source: str) -> str:
    defined = defined_names(source)
    listed = (
        ", ".join(defined[:-1]) + " and " + defined[-1] if len(defined) > 1 else "".join(defined)
    )
    uses = f" it defines {listed}, which the cells below use" if defined else ""
    return (
        "# The student edition keeps this cell's code out of sight: it holds the answer to\n"
        f"# the write-it-yourself exercise {answers.where(names)}.\n"
        f"# Run the cell as it is:{uses}.\n"
        f"%run -i {path}"
    )


def hide_answers(cell, k: int, page: Path, answers: Answers, removed: Removed):
    """The cell as the student edition shows it, when it shows an answer: a note instead
    of a cell whose output shows one; for a cell whose source holds one, a cell that runs
    that source from a file (its outputs kept unless they show an answer)."""
    in_source = answers.found_in(cell.source)
    outputs = [output_text(out) for out in cell.get("outputs", [])]
    in_outputs = answers.found_in("\n".join(outputs))
    if in_source:
        path = f"{HIDDEN}/{page.stem}-{k}.py"
        removed.hidden[path] = cell.source
        cell.source = _hidden_cell(in_source, answers, path, cell.source)
        cell.outputs = [o for o, text in zip(cell.outputs, outputs) if not answers.found_in(text)]
        return cell
    if in_outputs:
        removed.listings.append(cell.source)
        return nbformat.v4.new_markdown_cell(_listing_note(in_outputs, answers))
    return cell


def student_notebook(nb, where: str, answers: Answers | None = None) -> tuple[object, Removed]:
    """A copy of the notebook ``nb`` made into the student edition (``answers``: what
    shows an answer, for :func:`hide_answers`; None leaves every other cell as it is)."""
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
        elif cell.cell_type == "code" and answers is not None:
            cell = hide_answers(cell, k, Path(where), answers, removed)
        cells.append(cell)
    if removed.gated is not None:
        raise EditionError(f"{where}: a {{solution-start}} is never closed by {{solution-end}}.")
    nb.cells = cells
    return nb, removed


def replace_section(text: str, heading: str, new: str, where: str) -> str:
    """``text`` with the section under the markdown heading ``heading`` (up to the next
    heading of the same or a higher level) replaced by ``new``."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^(#+)\s+(.*\S)\s*$", line)
        if m and m.group(2) == heading:
            level = len(m.group(1))
            end = next(
                (
                    j
                    for j in range(i + 1, len(lines))
                    if (h := re.match(r"^(#+)\s", lines[j])) and len(h.group(1)) <= level
                ),
                len(lines),
            )
            return "\n".join(lines[:i] + new.rstrip("\n").split("\n") + [""] + lines[end:])
    raise EditionError(
        f"{where}: the teacher's section {heading!r} is not there; update TEACHER_SECTIONS "
        "in scripts/student_edition.py to its new heading."
    )


def student_markdown(text: str, where: str) -> tuple[str, Removed]:
    removed = Removed()
    text = strip_solutions(text, removed)
    if removed.gated is not None:
        raise EditionError(f"{where}: a {{solution-start}} is never closed by {{solution-end}}.")
    if where in TEACHER_SECTIONS:
        text = replace_section(text, TEACHER_SECTIONS[where], STUDENT_NOTE, where)
    return text, removed


def toc_files(src: Path) -> list[Path]:
    """The book's pages, in the order of ``_toc.yml`` (with their extensions)."""
    try:
        toc = yaml.safe_load((src / "_toc.yml").read_text("utf-8"))
    except OSError as e:
        raise EditionError(
            f"--src {src}: cannot read its _toc.yml ({e.strerror}); give the book's root "
            "folder, the one that holds _toc.yml and _config.yml."
        ) from None
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


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


CONFIG_HEADER = "# The student edition (written by scripts/student_edition.py): no solutions."


def _written_here(out: Path, marker: str) -> bool:
    """True for a folder this script wrote: it holds the marker, or (an edition written
    before there was a marker) a _config.yml that begins with CONFIG_HEADER."""
    if (out / marker).exists():
        return True
    config = out / "_config.yml"
    return (
        marker == MARKER
        and config.is_file()
        and config.read_text("utf-8").startswith(CONFIG_HEADER)
    )


def check_folders(src: Path, out: Path, marker: str = MARKER) -> list[Path]:
    """Refuse (EditionError, one line) a missing source, or an output folder that is a
    file, or is, holds or lies inside what is read, or holds other files and no ``marker``
    of an earlier output; the book's pages when all is well. Nothing is written or
    deleted here."""
    if not src.is_dir():
        raise EditionError(
            f"--src {src}: no such folder; give the book's root folder, the one that holds "
            "_toc.yml and _config.yml."
        )
    files = toc_files(src)
    if out.exists() and not out.is_dir():
        raise EditionError(f"--out {out} is a file; give a folder (it is created if needed).")
    if _inside(src, out):
        what = "is the source folder itself" if out == src else f"holds the source {src}"
        raise EditionError(
            f"--out {out} {what}; give a folder outside it, e.g. {src}/_build/student."
        )
    read = [src / "_toc.yml", src / "_config.yml"]
    read += sorted({src / f.parts[0] for f in files if len(f.parts) > 1} | {src / f for f in files})
    for path in read:
        if _inside(out, path):
            raise EditionError(
                f"--out {out} lies inside {path}, which is read to write it; give a folder "
                f"outside it, e.g. {src}/_build/student."
            )
    if out.is_dir() and any(out.iterdir()) and not _written_here(out, marker):
        raise EditionError(
            f"--out {out} holds other files and no earlier output of this script (no "
            f"{marker} file): give a new or empty folder; nothing was deleted."
        )
    return files


def prepare_output(out: Path) -> None:
    """Make ``out`` an empty folder that holds the marker, or refuse in one line."""
    try:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        (out / MARKER).write_text("Written by scripts/student_edition.py: it may replace it.\n")
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise EditionError(
            f"--out {out}: cannot write there ({e.strerror or e}); give a folder you can write to."
        ) from None


def write_edition(src: Path, out: Path, execute: bool = False) -> dict[str, Removed]:
    """Write the student edition of the book at ``src`` into ``out``; returns what was
    removed from each page."""
    src, out = Path(src).resolve(), Path(out).resolve()
    files = check_folders(src, out)
    answers = find_answers(src, files)
    prepare_output(out)
    try:
        return _write(src, out, files, answers, execute)
    except OSError as e:
        raise EditionError(f"writing {out}: {e.strerror or e} ({e.filename}).") from None


def _write(src, out, files, answers, execute) -> dict[str, Removed]:
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
            nb, removed = student_notebook(nbformat.read(src / f, as_version=4), str(f), answers)
            nbformat.write(nb, target)
            for path, source in removed.hidden.items():
                (target.parent / path).parent.mkdir(exist_ok=True)
                (target.parent / path).write_text(source + "\n", "utf-8")
        else:
            text, removed = student_markdown((src / f).read_text("utf-8"), str(f))
            target.write_text(text, "utf-8")
        report[str(f)] = removed
    (out / "_config.yml").write_text(
        f"{CONFIG_HEADER}\n"
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
    n_listing = sum(len(r.listings) for r in report.values())
    n_hidden = sum(len(r.hidden) for r in report.values())
    print(
        f"student edition: {len(report)} pages written to {args.out}, "
        f"{n_sol} solutions removed, {n_stub} answers replaced by stubs, {n_listing} "
        f"listings of answers left out, {n_hidden} cells holding an answer run from {HIDDEN}/"
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
