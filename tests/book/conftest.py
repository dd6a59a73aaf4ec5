"""Shared fixtures for the book tests (tests/book/).

* ``book_build``: builds the whole book ONCE per test session with
  ``jupyter-book build <root> -n -W --keep-going --all`` into ``_build/html``
  and returns what happened (exit status, log, duration).
* ``built_book``: the same, but fails the requesting test, with the tail of
  the build log, when the build did not pass cleanly.
* ``toc_docnames``: the pages of ``_toc.yml`` in reading order.

Set ``BOOK_REUSE_BUILD=1`` to skip the build and test an existing
``_build/html`` (handy while iterating on the browser test; never in CI).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / "_build"
HTML_DIR = BUILD_DIR / "html"
ARTIFACTS = ROOT / "artifacts"
TOC_FILE = ROOT / "_toc.yml"

# Sphinx / docutils / myst-nb problems look like
#   "/path/book/ch.md:12: WARNING: ..."   "WARNING: ..."   "... ERROR: ..."
#   "/path/book/ch.md:3: (ERROR/3) ..."   "CRITICAL: ..."  "SEVERE: ..."
_PROBLEM_RE = re.compile(
    r"(?:^|[\s:])(?:WARNING|ERROR|CRITICAL|SEVERE)(?::|/\d)|\((?:WARNING|ERROR|SEVERE)/\d\)"
    # jupyter-book's own message boxes ("[Warning] Mathjax configuration ...",
    # "Warning: Validation errors in config")
    r"|\[Warning\]|Validation errors in config"
    # kernel / jupyter logs: "[IPKernelApp] ERROR | ..."
    r"|\b(?:WARNING|ERROR|CRITICAL)\s+\|"
)
# Log lines that are NOT problems with the book. ipykernel >= 7 logs this on
# every kernel start (jupyter_client launches kernels over local TCP).
_BENIGN_RE = re.compile(r"\[IPKernelApp\] WARNING \| Kernel is running over TCP without encryption")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class BookBuild:
    root: Path
    html_dir: Path
    command: list[str]
    returncode: int
    output: str
    seconds: float
    reused: bool = False

    @property
    def problem_lines(self) -> list[str]:
        return [
            line
            for line in self.output.splitlines()
            if _PROBLEM_RE.search(line) and not _BENIGN_RE.search(line)
        ]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.problem_lines

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-n:])

    def report(self) -> str:
        problems = self.problem_lines
        msg = [
            f"`{' '.join(self.command)}` exited with status {self.returncode} "
            f"after {self.seconds:.1f}s",
        ]
        if problems:
            msg.append(f"{len(problems)} warning/error line(s):")
            msg.extend("    " + p for p in problems[:40])
        msg.append("---- last lines of the build log " + "-" * 30)
        msg.append(self.tail())
        msg.append(f"(full log: {ARTIFACTS / 'book-build.log'})")
        return "\n".join(msg)


def jupyter_book_command() -> list[str]:
    """The jupyter-book CLI of the interpreter running the tests.

    Prefer the console script next to ``sys.executable`` (the same venv), else
    call the CLI entry point through ``sys.executable`` itself, so the build
    and its notebook kernels always use the test interpreter's environment.
    """
    bindir = Path(sys.executable).parent
    for name in ("jupyter-book", "jupyter-book.exe"):
        exe = bindir / name
        if exe.is_file() and os.access(exe, os.X_OK):
            return [str(exe)]
    return [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    # The interpreter's bin dir first: `python` in the python3 kernelspec and
    # any `jupyter-*` helper resolve to this environment.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # No PYTHONPATH: the notebooks import the installed mlp_core (pip install -e .), so a
    # missing install step fails here as it would for a reader.
    # (No MPLBACKEND here: the kernel must keep matplotlib's inline backend.)
    env.pop("MPLBACKEND", None)
    # Silences debugpy's "frozen modules" notice on kernel start.
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env["NO_COLOR"] = "1"
    env["TERM"] = "dumb"
    return env


def run_book_build(root: Path = ROOT) -> BookBuild:
    """Build the book from scratch (no stale pages, every notebook executed)."""
    missing = [
        m
        for m in ("jupyter_book", "myst_nb", "ipykernel", "bs4", "yaml")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        pytest.fail(
            f"cannot build the book: {', '.join(missing)} not installed in {sys.executable}; "
            "install the book extras:  pip install -e '.[book,test]'",
            pytrace=False,
        )
    command = [*jupyter_book_command(), "build", str(root), "-n", "-W", "--keep-going", "--all"]
    for stale in (HTML_DIR, BUILD_DIR / ".doctrees", BUILD_DIR / "jupyter_execute"):
        shutil.rmtree(stale, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run(
        command,
        cwd=root,
        env=build_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    seconds = time.perf_counter() - start
    output = _ANSI_RE.sub("", proc.stdout)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "book-build.log").write_text(
        f"$ {' '.join(command)}\n# exit {proc.returncode}, {seconds:.1f}s\n{output}",
        encoding="utf-8",
    )
    return BookBuild(root, root / "_build" / "html", command, proc.returncode, output, seconds)


@pytest.fixture(scope="session")
def book_build() -> BookBuild:
    """Build the book once per session (or reuse one with BOOK_REUSE_BUILD=1)."""
    if os.environ.get("BOOK_REUSE_BUILD") == "1" and (HTML_DIR / "index.html").is_file():
        return BookBuild(ROOT, HTML_DIR, ["(reused existing build)"], 0, "", 0.0, reused=True)
    return run_book_build(ROOT)


@pytest.fixture(scope="session")
def built_book(book_build: BookBuild) -> BookBuild:
    """The build, for tests that need its HTML: fail them if the build failed."""
    if not book_build.ok:
        pytest.fail("the book build did not pass cleanly:\n" + book_build.report(), pytrace=False)
    return book_build


def _toc_entries(items, out: list[str]) -> None:
    for item in items or []:
        if "file" in item:
            out.append(_docname(item["file"]))
        elif "glob" in item:
            for path in sorted(ROOT.glob(item["glob"] + ".*")):
                if path.suffix in (".md", ".ipynb", ".rst"):
                    out.append(path.relative_to(ROOT).with_suffix("").as_posix())
        # "url" entries are external links in the sidebar, not pages
        _toc_entries(item.get("sections"), out)


def _docname(path: str) -> str:
    p = Path(path)
    if p.suffix in (".md", ".ipynb", ".rst"):
        p = p.with_suffix("")
    return p.as_posix()


def read_toc(toc_file: Path = TOC_FILE) -> list[str]:
    """Docnames of _toc.yml in reading order (root first, depth first)."""
    import yaml  # PyYAML: a dependency of jupyter-book

    toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    assert toc.get("format") == "jb-book", f"{toc_file}: expected `format: jb-book`"
    docs = [_docname(toc["root"])]
    for part in toc.get("parts", []) or []:
        _toc_entries(part.get("chapters"), docs)
    _toc_entries(toc.get("chapters"), docs)
    _toc_entries(toc.get("sections"), docs)
    return docs


@pytest.fixture(scope="session")
def toc_docnames() -> list[str]:
    return read_toc()
