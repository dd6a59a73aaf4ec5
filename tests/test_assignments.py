"""The nbgrader course (scripts/assignments.py, ``make assignments``).

From the real chapters: one assignment per chapter with write-it-yourself exercises, whose
nbgrader metadata nbgrader itself accepts, with the chapter's answer in a solution region
and an autograded check worth points. End to end (marked ``slow``: it runs nbgrader and its
kernels, about a minute): generate the student versions, grade a submission with the
reference answer (full marks) and one with the missing 1/m (less, its feedback naming the
mistake), all offline in a temporary course.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

from mlp_core.book import exercises

nbgraderformat = pytest.importorskip("nbgrader.nbgraderformat")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
_spec = importlib.util.spec_from_file_location("assignments", ROOT / "scripts/assignments.py")
asg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(asg)

SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*)\n\s*### END SOLUTION", re.S)


def nbgrader_cells(nb, **want):
    return [
        c
        for c in nb.cells
        if all(c.metadata.get("nbgrader", {}).get(k) == v for k, v in want.items())
    ]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    out = tmp_path_factory.mktemp("course") / "course"
    return out, asg.write_course(ROOT, out)


def test_one_assignment_per_chapter_with_exercises(course):
    out, made = course
    checked = set()
    for page in asg.check_folders(ROOT, out, asg.MARKER):
        if page.suffix == ".ipynb":
            nb = nbformat.read(ROOT / page, as_version=4)
            if any(asg.ANSWER_TAG in c.metadata.get("tags", []) for c in nb.cells):
                checked.add(page.stem)
    assert set(made) == checked and len(made) >= 8
    assert all(set(names) <= set(exercises.NAMES) for names in made.values())
    assert (out / "nbgrader_config.py").exists() and (out / asg.MARKER).exists()


def test_the_notebooks_are_valid_nbgrader_assignments(course):
    out, made = course
    for name, names in made.items():
        nb = nbformat.read(out / "source" / name / f"{name}.ipynb", as_version=4)
        nbgraderformat.MetadataValidator().validate_nb(nb)
        solutions = nbgrader_cells(nb, solution=True)
        checks = nbgrader_cells(nb, grade=True, locked=True)
        assert len(solutions) == len(checks) == len(names)
        for exercise, solution, check in zip(names, solutions, checks):
            assert SOLUTION.search(solution.source), solution.source
            assert solution.source.split("\n")[1].lstrip().startswith("# Hint:")
            assert f'exercises.check("{exercise}", ' in check.source
            assert check.metadata["nbgrader"]["points"] == asg.points(exercise) >= 1
        assert nbgrader_cells(nb, locked=True, grade=False)[0].source.endswith(
            "from mlp_core.book import exercises"
        )


def test_the_solution_region_is_the_chapters_answer(course):
    out, _ = course
    nb = nbformat.read(out / "source/07-bias-gradient/07-bias-gradient.ipynb", as_version=4)
    chapter = nbformat.read(ROOT / "book/07-bias-gradient.ipynb", as_version=4)
    (answer,) = [c for c in chapter.cells if asg.ANSWER_TAG in c.metadata.get("tags", [])]
    (solution,) = nbgrader_cells(nb, solution=True)
    assert SOLUTION.search(solution.source).group(1) == "\n".join(answer.source.split("\n")[2:])
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{eq}" not in text and ":label:" not in text  # roles made plain
    assert "\\tag{eq-bias-grad-batch}" in text  # the cited equation written out


def test_the_course_folder_is_refused_where_it_would_harm(tmp_path, capsys):
    assert asg.main(["--out", str(ROOT / "book" / "course"), "--no-generate"]) == 2
    assert "lies inside" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert asg.main(["--out", str(other), "--no-generate"]) == 2
    assert "nothing was deleted" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"


def test_running_again_keeps_the_grades_and_other_assignments(course):
    out, made = course
    (out / "gradebook.db").write_bytes(b"the grades")
    (out / "source" / "homework-1").mkdir(parents=True)
    (out / "source" / "homework-1" / "mine.ipynb").write_text("{}")
    (out / "nbgrader_config.py").write_text("c = get_config()  # the teacher's own\n")
    assert asg.write_course(ROOT, out) == made
    assert (out / "gradebook.db").read_bytes() == b"the grades"
    assert (out / "source" / "homework-1" / "mine.ipynb").read_text() == "{}"
    assert "the teacher's own" in (out / "nbgrader_config.py").read_text()


# ------------------------------------------------------------------ nbgrader end to end


def notebook(course: Path, folder: str, assignment: str):
    return nbformat.read(course / folder / assignment / f"{assignment}.ipynb", as_version=4)


def reference_answers(course: Path, assignment: str) -> list[str]:
    """The bodies of the solution regions of the assignment's source notebook."""
    cells = nbgrader_cells(notebook(course, "source", assignment), solution=True)
    return [SOLUTION.search(c.source).group(1) for c in cells]


def submit(course: Path, assignment: str, student: str, body: str | None) -> None:
    """A student's submission: the released notebook with every solution cell written
    (``body`` None: the reference answer of the source notebook)."""
    release = notebook(course, "release", assignment)
    cells = nbgrader_cells(release, solution=True)
    for cell, reference in zip(cells, reference_answers(course, assignment)):
        written = reference if body is None else f"    {body}"
        stub = r"[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)"
        cell.source = re.sub(stub, lambda _: written, cell.source)
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(release, folder / f"{assignment}.ipynb")


@pytest.mark.slow
def test_nbgrader_grades_with_the_checkers(tmp_path):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    made = asg.write_course(ROOT, course)
    assert asg.generate(course) == 0
    for name in made:  # the student versions: stubs, and no answer left
        released = "\n".join(c.source for c in notebook(course, "release", name).cells)
        assert "raise NotImplementedError()" in released and "BEGIN SOLUTION" not in released
        for answer in reference_answers(course, name):
            for line in exercises.key_lines(answer):
                assert line not in released, (name, line)

    assignment = "07-bias-gradient"
    submit(course, assignment, "alice", None)
    submit(course, assignment, "bob", "return delta.sum(axis=0)")  # the missing 1/m
    for step in ("autograde", "generate_feedback"):
        result = asg.nbgrader(
            step, assignment, "--force", cwd=course, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        full = gb.find_submission(assignment, "alice")
        less = gb.find_submission(assignment, "bob")
        assert full.score == full.max_score == asg.points("bias_gradient")
        assert less.score < less.max_score
    feedback = (course / "feedback/bob" / assignment / f"{assignment}.html").read_text("utf-8")
    assert exercises.MISTAKES["missing-1/m"] in feedback.replace("&#39;", "'")
    assert "✓ bias_gradient is correct" in (
        course / "feedback/alice" / assignment / f"{assignment}.html"
    ).read_text("utf-8")
