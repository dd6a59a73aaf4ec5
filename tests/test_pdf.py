"""The PDF of the whole book (``make pdf``: jupyter-book's LaTeX builder, xelatex).

Builds it once, into ``_build/pdf-test/_build/latex``, and checks: the page count is in a
sane range; no page shows an unresolved reference ("??", read with pdftotext); the LaTeX
log has no undefined reference or citation and no character missing from the fonts; every
figure of the chapters is in the PDF; the equations and the tables are there.

The chapters are not executed again: their stored outputs are what nbval has already
proved a fresh run reproduces (tests run the notebooks), so the build uses a copy of
``_config.yml`` that excludes the ``.ipynb`` files from execution (the teacher's guide, a
MyST notebook without stored outputs, is still executed). Skipped only when xelatex is
missing (``bash scripts/install_tex.sh`` installs it; ``make test`` runs that first).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "pdf-test"
LATEX = OUT / "_build" / "latex"
# The book (13 chapters, appendices) is about 170 pages; with every chapter's exercises
# and chapter 14 it grows, but a PDF outside this range has lost or duplicated content.
PAGES = (120, 600)


def jupyter_book() -> str:
    jb = Path(sys.executable).with_name("jupyter-book")
    return str(jb) if jb.exists() else "jupyter-book"


@pytest.fixture(scope="module")
def pdf_build():
    if shutil.which("xelatex") is None:
        pytest.skip(
            "xelatex not found: run `bash scripts/install_tex.sh` (Debian's TeX Live; "
            "`make test` and `make pdf` run it) to build and test the PDF"
        )
    for tool in ("latexmk", "pdftotext", "pdfinfo", "pdfimages"):
        assert shutil.which(tool), f"{tool} not found: run `bash scripts/install_tex.sh`"
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text("utf-8"))
    config.setdefault("execute", {})["exclude_patterns"] = ["*.ipynb"]
    # jupyter-book puts local extensions on sys.path relative to the config file, which
    # this copy moves: give their folders as absolute paths
    local = config.get("sphinx", {}).get("local_extensions") or {}
    for name, folder in local.items():
        local[name] = str((ROOT / folder).resolve())
    config_file = OUT / "_config.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), "utf-8")
    cmd = [jupyter_book(), "build", str(ROOT), "--builder", "pdflatex"]
    cmd += ["--config", str(config_file), "--path-output", str(OUT)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    output = run.stdout + run.stderr
    (OUT / "build.log").write_text(output, "utf-8")
    pdfs = sorted(LATEX.glob("*.pdf"))
    assert run.returncode == 0 and pdfs, (
        f"`{' '.join(cmd)}` exited with {run.returncode}; the end of its output:\n"
        + "\n".join(output.splitlines()[-60:])
    )
    return pdfs[0]


def pdf_text(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_page_count_is_sane(pdf_build):
    info = subprocess.run(
        ["pdfinfo", str(pdf_build)], capture_output=True, text=True, check=True
    ).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    (OUT / "pages.txt").write_text(f"{pages}\n")
    assert PAGES[0] <= pages <= PAGES[1], pages


def test_no_unresolved_reference_on_any_page(pdf_build):
    pages = pdf_text(pdf_build).split("\f")
    bad = [i + 1 for i, page in enumerate(pages) if "??" in page]
    assert not bad, f"'??' (an unresolved reference) on pages {bad}"


def test_latex_log_is_clean(pdf_build):
    log = pdf_build.with_suffix(".log").read_text("utf-8", errors="replace")
    problems = re.findall(
        r"^.*(?:undefined references|Reference `[^']*' on page \d+ undefined|"
        r"Citation `[^']*' on page \d+ undefined|Missing character: .*|^! .*)$",
        log,
        re.M,
    )
    assert not problems, "\n".join(problems[:20])


def test_every_chapter_and_page_is_there(pdf_build):
    text = pdf_text(pdf_build)
    toc = (ROOT / "_toc.yml").read_text("utf-8")
    for doc in re.findall(r"file:\s*(\S+)", toc):
        path = ROOT / f"{doc}.ipynb"
        if not path.exists():
            continue
        nb = json.loads(path.read_text("utf-8"))
        heading = next(
            re.search(r"^# (.+)$", "".join(c["source"]), re.M).group(1)
            for c in nb["cells"]
            if c["cell_type"] == "markdown" and re.search(r"^# ", "".join(c["source"]), re.M)
        )
        plain = re.sub(r"[$`*]", "", heading).split(":")[0].strip()
        assert plain.split()[0] in text, f"{doc}: chapter heading {heading!r} not in the PDF"


def test_figures_equations_and_tables_intact(pdf_build):
    tex = pdf_build.with_suffix(".tex").read_text("utf-8")
    # every image output of the chapters (widgets: their static PNG twin) is a figure
    pngs = 0
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(path.read_text("utf-8"))["cells"]:
            tags = cell.get("metadata", {}).get("tags", [])
            if "remove-output" in tags or "remove-cell" in tags:
                continue
            pngs += sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
    included = len(re.findall(r"\\sphinxincludegraphics", tex))
    assert included >= pngs > 0, (included, pngs)
    listing = subprocess.run(
        ["pdfimages", "-list", str(pdf_build)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    assert len(listing) >= pngs
    assert "application/vnd.jupyter.widget-view" not in tex
    # the equations: every labelled display equation of the chapters ($$ ... $$ (eq-...))
    labels = set()
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        labels |= set(re.findall(r"\$\$ *\((eq-[\w-]+)\)", path.read_text("utf-8")))
    equations = set(re.findall(r"\\begin\{equation\}\\label\{equation:[^}]*:(eq-[\w-]+)\}", tex))
    assert labels and labels <= equations, sorted(labels - equations)
    assert "\\begin{tabulary}" in tex or "\\begin{longtable}" in tex or "\\begin{tabular" in tex
    # the teacher's guide's first table, computed when the book is built: a row of it
    assert re.search(r"1\. Notation and shapes\s+Part I\s", pdf_text(pdf_build))
