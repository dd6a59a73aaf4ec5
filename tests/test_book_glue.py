"""Every number glued in a chapter is used by its prose, and every glued name it uses exists.

The book's prose takes the numbers it states from the computation (myst-nb ``glue``):
a code cell runs ``glue("ch11-acc-b128", acc, display=False)`` and a markdown cell says
{glue:text}`ch11-acc-b128:.2f`. A typo in either name, a glue cell deleted, or a sentence
rewritten without its number fails only late (the strict book build) or not at all (a
glued number nobody reads). This test reads the notebooks' sources (no execution, well
under a second) and fails on:

* a name referenced in markdown (the roles ``{glue}``, ``{glue:}``, ``{glue:any}``,
  ``{glue:text}``, ``{glue:md}``, the directives ``{glue:figure}``, ``{glue:math}``,
  ``{glue:md}``, ``{glue:}``, ``{glue}``, or a figure caption in the cell metadata) but
  glued in no code cell of the same notebook (for myst-nb's cross-document form
  ``path::name``: of the notebook that path names);
* a name glued but referenced nowhere;
* a name given to ``glue`` that the test cannot read (not a string literal or an
  f-string), or glued twice in one notebook, or not prefixed with its chapter (``chNN-``,
  NN the notebook's number), as the team's convention says.

An f-string name (``glue(f"ch11-acc-b{B}", ...)``) counts as a pattern: its literal parts
must match, each ``{...}`` matches one or more characters.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

# {glue}`key`, {glue:}`key`, {glue:any}`key`, {glue:text}`key:.2f`, {glue:md}`key`
ROLE_RE = re.compile(r"\{glue(?::(?P<kind>[a-z]*))?\}`(?P<content>[^`]+)`")
# ```{glue:figure} key    :::{glue:math} key    ```{glue} key
DIRECTIVE_RE = re.compile(
    r"^[ \t]*(?:`{3,}|~{3,}|:{3,})[ \t]*\{glue(?::(?P<kind>[a-z]*))?\}[ \t]+(?P<content>\S+)",
    re.M,
)
CHAPTER_RE = re.compile(r"^(\d\d)-")


@dataclass(frozen=True)
class Ref:
    """One use of a glued name in markdown."""

    doc: str  # the document whose glue it reads (posix path relative to the book root)
    key: str
    where: str  # "<file> cell N"


@dataclass
class Glued:
    """The names one notebook glues."""

    names: dict[str, list[str]] = field(default_factory=dict)  # name -> ["cell N", ...]
    patterns: dict[str, tuple[re.Pattern, str]] = field(default_factory=dict)  # shown -> ...
    problems: list[str] = field(default_factory=list)

    def matches(self, key: str) -> list[str]:
        """The glued names (or f-string patterns) that `key` is."""
        hits = [key] if key in self.names else []
        hits += [shown for shown, (pat, _) in self.patterns.items() if pat.fullmatch(key)]
        return hits


def _strip_magics(source: str) -> str:
    """IPython lines (%magic, !shell) become blank lines, so ast can parse the cell."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append("" if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def _glue_callables(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Names bound to myst_nb.glue and to the myst_nb module in this cell."""
    funcs, modules = {"glue"}, {"myst_nb"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "myst_nb":
            funcs |= {a.asname or a.name for a in node.names if a.name == "glue"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "myst_nb"}
    return funcs, modules


def _is_glue_call(node: ast.Call, funcs: set[str], modules: set[str]) -> bool:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id in funcs
    return (
        isinstance(f, ast.Attribute)
        and f.attr == "glue"
        and isinstance(f.value, ast.Name)
        and f.value.id in modules
    )


def _name_of(arg: ast.expr) -> tuple[str, re.Pattern | None] | None:
    """(name, None) for a literal, (shown form, pattern) for an f-string, else None."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value, None
    if isinstance(arg, ast.JoinedStr):
        shown, regex = [], []
        for part in arg.values:
            if isinstance(part, ast.Constant):
                shown.append(str(part.value))
                regex.append(re.escape(str(part.value)))
            else:
                shown.append("{...}")
                regex.append(".+")
        return "".join(shown), re.compile("".join(regex))
    return None


def glued_names(cells: list[tuple[int, str]], label: str) -> Glued:
    """Every name the code cells pass to myst_nb.glue (first argument or `name=`)."""
    out = Glued()
    for index, source in cells:
        where = f"cell {index}"
        try:
            tree = ast.parse(_strip_magics(source))
        except SyntaxError as exc:
            if "glue" in source:
                out.problems.append(f"{label} {where}: cannot parse the cell to read glue: {exc}")
            continue
        funcs, modules = _glue_callables(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _is_glue_call(node, funcs, modules)):
                continue
            arg = node.args[0] if node.args else None
            for kw in node.keywords:
                if kw.arg == "name":
                    arg = kw.value
            parsed = _name_of(arg) if arg is not None else None
            if parsed is None:
                out.problems.append(
                    f"{label} {where} line {node.lineno}: glue() needs a string literal or "
                    "f-string as its name, so that this test can read it"
                )
                continue
            name, pattern = parsed
            if pattern is None:
                out.names.setdefault(name, []).append(where)
            else:
                out.patterns[name] = (pattern, where)
    for name, places in out.names.items():
        if len(places) > 1:
            out.problems.append(f"{label}: {name!r} is glued more than once ({', '.join(places)})")
    return out


def references(text: str, doc: str, where: str) -> list[Ref]:
    """The glued names a markdown text uses (roles and directives)."""
    refs = []
    for regex in (ROLE_RE, DIRECTIVE_RE):
        for m in regex.finditer(text):
            content, kind = m.group("content").strip(), m.group("kind")
            target = doc
            if "::" in content:
                path, content = content.split("::", 1)
                # myst-nb resolves the path relative to the referencing document
                rel = PurePosixPath(doc).parent / path
                target = str(PurePosixPath(*_normalise(rel.parts)).with_suffix(""))
            key = content.split(":", 1)[0] if kind == "text" else content
            refs.append(Ref(doc=target, key=key.strip(), where=where))
    return refs


def _normalise(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for p in parts:
        if p == "..":
            if out:
                out.pop()
        elif p not in (".", ""):
            out.append(p)
    return out


@dataclass
class Document:
    doc: str  # posix path relative to the book root, no suffix ("book/11-minibatch-sgd")
    label: str  # the file, for messages
    code: list[tuple[int, str]]
    markdown: list[tuple[int, str]]


def read_document(path: Path, root: Path) -> Document:
    doc = path.relative_to(root).with_suffix("").as_posix()
    label = path.relative_to(root).as_posix()
    if path.suffix == ".md":
        return Document(doc, label, [], [(0, path.read_text(encoding="utf-8"))])
    nb = json.loads(path.read_text(encoding="utf-8"))
    code, markdown = [], []
    for index, cell in enumerate(nb.get("cells", [])):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if cell.get("cell_type") == "code":
            code.append((index, source))
            # a figure caption in the cell's metadata is markdown too
            figure = (cell.get("metadata", {}).get("mystnb") or {}).get("figure") or {}
            if isinstance(figure.get("caption"), str):
                markdown.append((index, figure["caption"]))
        elif cell.get("cell_type") == "markdown":
            markdown.append((index, source))
    return Document(doc, label, code, markdown)


def glue_problems(paths: list[Path], root: Path) -> list[str]:
    """Every glue problem in these notebooks / markdown pages (an empty list: all fine)."""
    documents = [read_document(p, root) for p in paths]
    glued = {d.doc: glued_names(d.code, d.label) for d in documents}
    problems = [p for g in glued.values() for p in g.problems]
    used: dict[str, set[str]] = {d.doc: set() for d in documents}
    for d in documents:
        m = CHAPTER_RE.match(Path(d.doc).name)
        if m:
            prefix = f"ch{m.group(1)}-"
            names = list(glued[d.doc].names) + list(glued[d.doc].patterns)
            problems += [
                f"{d.label}: glued name {n!r} does not start with {prefix!r}"
                for n in names
                if not n.startswith(prefix)
            ]
        for index, text in d.markdown:
            for ref in references(text, d.doc, f"{d.label} cell {index}"):
                target = glued.get(ref.doc)
                hits = target.matches(ref.key) if target else []
                if not hits:
                    where = "this notebook" if ref.doc == d.doc else f"{ref.doc}"
                    problems.append(
                        f"{ref.where}: {ref.key!r} is referenced but never glued in {where}"
                    )
                used.setdefault(ref.doc, set()).update(hits)
    for d in documents:
        g = glued[d.doc]
        for name, places in g.names.items():
            if name not in used[d.doc]:
                problems.append(
                    f"{d.label} {places[0]}: {name!r} is glued but never referenced in the prose"
                )
        for shown, (_, where) in g.patterns.items():
            if shown not in used[d.doc]:
                problems.append(
                    f"{d.label} {where}: {shown!r} is glued but never referenced in the prose"
                )
    return problems


def book_sources(book: Path = BOOK) -> list[Path]:
    return sorted(p for p in book.rglob("*") if p.suffix in (".ipynb", ".md") and p.is_file())


# ---------------------------------------------------------------- the book


def test_book_sources_found():
    assert any(p.suffix == ".ipynb" for p in book_sources()), f"no notebooks under {BOOK}"


def test_every_glued_name_is_used_and_every_used_name_glued():
    problems = glue_problems(book_sources(), ROOT)
    assert not problems, "glue problems in the book:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------- the checker itself


def _notebook(path: Path, cells: list[tuple[str, str]], meta: dict | None = None) -> Path:
    nb = {
        "cells": [
            {
                "cell_type": kind,
                "metadata": (meta or {}) if kind == "code" else {},
                "source": src,
                **({"outputs": [], "execution_count": None} if kind == "code" else {}),
            }
            for kind, src in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def test_negative_control_dangling_and_unused(tmp_path):
    """A reference with no glue and a glue with no reference are both reported."""
    nb = _notebook(
        tmp_path / "book" / "07-x.ipynb",
        [
            ("code", 'from myst_nb import glue\nglue("ch07-used", 1.5, display=False)\n'),
            ("code", 'glue("ch07-unused", 2, display=False)'),
            ("markdown", "Used {glue:text}`ch07-used:.2f`, dangling {glue:text}`ch07-typo:.2f`."),
        ],
    )
    problems = glue_problems([nb], tmp_path)
    assert len(problems) == 2, problems
    assert "'ch07-typo' is referenced but never glued" in problems[0] + problems[1]
    assert "'ch07-unused' is glued but never referenced" in problems[0] + problems[1]


def test_clean_notebook_passes_every_form(tmp_path):
    """Roles, directives, captions, f-string names, aliases and cross-document glue."""
    src = tmp_path / "book" / "11-src.ipynb"
    _notebook(
        src,
        [
            (
                "code",
                "%matplotlib inline\nimport myst_nb as mnb\nfrom myst_nb import glue as g\n"
                "for B in (32, 128):\n    g(f'ch11-acc-b{B}', B / 100, display=False)\n"
                "mnb.glue('ch11-fig', None, display=False)\n"
                "glue = None\n",
            ),
            ("code", 'from myst_nb import glue\nglue(name="ch11-math", value=1)'),
            ("code", 'glue("ch11-cap", 3, display=False)\nglue("ch11-other", 4)'),
            (
                "markdown",
                "B=32 gives {glue:text}`ch11-acc-b32:.2f`, B=128 {glue:}`ch11-acc-b128`.\n\n"
                "```{glue:figure} ch11-fig\n:name: fig-11\nA figure.\n```\n\n"
                ":::{glue:math} ch11-math\n:label: eq-11\n:::\n",
            ),
        ],
    )
    # a caption in a figure cell's metadata counts as prose
    _notebook(
        tmp_path / "book" / "11-cap.ipynb",
        [("code", "print(1)")],
        meta={"mystnb": {"figure": {"caption": "{glue:text}`11-src::ch11-cap`", "name": "f"}}},
    )
    page = tmp_path / "book" / "notes.md"
    page.write_text("Another page: {glue:any}`11-src.ipynb::ch11-other`.\n", encoding="utf-8")
    paths = sorted((tmp_path / "book").iterdir())
    assert glue_problems(paths, tmp_path) == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ('from myst_nb import glue\nname = "ch05-a"\nglue(name, 1)', "string literal or f-string"),
        ('from myst_nb import glue\nglue("ch05-a", 1)\nglue("ch05-a", 2)', "glued more than once"),
        ('from myst_nb import glue\nglue("ch06-a", 1)', "does not start with 'ch05-'"),
    ],
)
def test_unreadable_duplicate_or_misprefixed_names_fail(tmp_path, code, message):
    nb = _notebook(
        tmp_path / "book" / "05-x.ipynb",
        [("code", code), ("markdown", "{glue:}`ch05-a` {glue:}`ch06-a`")],
    )
    problems = glue_problems([nb], tmp_path)
    assert any(message in p for p in problems), problems


def test_cross_document_reference_to_a_missing_name_fails(tmp_path):
    src = _notebook(
        tmp_path / "book" / "03-a.ipynb",
        [("code", 'from myst_nb import glue\nglue("ch03-x", 1)'), ("markdown", "{glue:}`ch03-x`")],
    )
    page = tmp_path / "book" / "glossary.md"
    page.write_text("{glue:text}`03-a::ch03-y:.1f` and {glue:}`nowhere::ch03-x`", encoding="utf-8")
    problems = glue_problems([src, page], tmp_path)
    assert len(problems) == 2, problems
    assert "'ch03-y' is referenced but never glued in book/03-a" in problems[0]
    assert "book/nowhere" in problems[1]
