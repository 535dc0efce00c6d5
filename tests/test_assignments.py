"""Teaching with the chapters: the exercises carry nbgrader's metadata (validated by nbgrader's own schema), the
student edition stubs every answer and keeps every check, no student cell contains a line of an answer, a student
notebook executed at the tiny scale fails only in its exercise cells (every check fails, nothing else does). Grading
is tested on a toy notebook in tests/test_grading.py."""
import os

import nbformat
import pytest

from conftest import OUTER_CACHE, ROOT
from gentools import assignments

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def answer_lines(cell) -> list[str]:
    """The lines of an answer: between the solution markers, without blanks and comments."""
    source = cell.source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
    return [line.strip() for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    folder = tmp_path_factory.mktemp("student")
    assignments.build_student_edition(ROOT / "notebooks", folder)
    return folder


def test_every_exercise_carries_nbgrader_metadata():
    from nbgrader.nbgraderformat import MetadataValidator

    grade_ids = []
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        MetadataValidator().validate_nb(notebook)  # raises if the metadata breaks nbgrader's schema
        answers, checks = assignments.answer_cells(notebook), assignments.check_cells(notebook)
        assert answers and len(checks) >= len(answers), path.name
        assert all("### BEGIN SOLUTION" in notebook.cells[i].source for i in answers), path.name
        assert all("gt.checks." in notebook.cells[i].source for i in checks), path.name  # checks live in gentools
        assert all("hide-cell" in notebook.cells[i].metadata.get("tags", []) for i in answers), path.name  # collapsed online
        grade_ids += [notebook.cells[i].metadata["nbgrader"]["grade_id"] for i in answers + checks]
    assert len(grade_ids) == len(set(grade_ids))


def test_the_student_edition_stubs_every_answer_and_shows_none(student):
    for path in NOTEBOOKS:
        teacher, pupil = nbformat.read(path, as_version=4), nbformat.read(student / path.name, as_version=4)
        assert len(teacher.cells) == len(pupil.cells)
        everything = "\n".join(cell.source for cell in pupil.cells)
        answers = assignments.answer_cells(teacher)
        elsewhere = "\n".join(cell.source for i, cell in enumerate(teacher.cells) if i not in answers)  # the narrative's
        for index in answers:
            assert assignments.STUB.splitlines()[1] in pupil.cells[index].source
            own = [line for line in answer_lines(teacher.cells[index]) if line not in elsewhere]  # lines only the answer has
            leaked = [line for line in own if line in everything]
            assert not leaked, f"{path.name}: answer lines in the student edition: {leaked}"
        for index in assignments.check_cells(teacher):
            assert pupil.cells[index].source == teacher.cells[index].source  # every check kept
        assert all(not cell.get("outputs") for cell in pupil.cells if cell.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_a_student_notebook_fails_only_in_its_exercises(student, path, monkeypatch):
    from nbclient import NotebookClient

    from gentools.nbexec import reliable_replies

    reliable_replies()
    if OUTER_CACHE:  # the runs the notebook tests cached: the student's kernel reads them and trains nothing
        monkeypatch.setenv("GENTOOLS_CACHE", OUTER_CACHE)
        monkeypatch.setenv("GENTOOLS_CACHED_ONLY", "1")
    notebook = nbformat.read(student / path.name, as_version=4)
    NotebookClient(notebook, timeout=int(os.environ.get("GENTOOLS_CELL_TIMEOUT", 300)), allow_errors=True,
                   kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    failed = {i for i, cell in enumerate(notebook.cells)
              if any(output.get("output_type") == "error" for output in cell.get("outputs", []))}
    exercises = set(assignments.answer_cells(notebook)) | set(assignments.check_cells(notebook))
    assert failed <= exercises, f"cells outside the exercises failed: {sorted(failed - exercises)}"
    assert set(assignments.check_cells(notebook)) <= failed, "a check passed on a stub"


def test_nbgrader_generates_the_assignment_from_a_chapter(tmp_path):
    """The nbgrader route: a chapter dropped into an nbgrader course becomes an assignment with every answer stubbed."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    nbgrader = Path(sys.executable).with_name("nbgrader")
    if not nbgrader.exists():
        pytest.skip("nbgrader is not installed next to the test's Python; run `make test`")
    source = tmp_path / "source" / "ch1"
    source.mkdir(parents=True)
    shutil.copy(NOTEBOOKS[0], source)
    (tmp_path / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.course_id = "generalization"\nc.CourseDirectory.db_assignments = [dict(name="ch1")]\n')
    env = {**os.environ, "PATH": f"{nbgrader.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # nbgrader runs alembic
    result = subprocess.run([str(nbgrader), "generate_assignment", "ch1", "--force"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    released = nbformat.read(tmp_path / "release" / "ch1" / NOTEBOOKS[0].name, as_version=4)
    teacher = nbformat.read(NOTEBOOKS[0], as_version=4)
    assert all("YOUR CODE HERE" in released.cells[i].source for i in assignments.answer_cells(teacher))
    assert not any("### BEGIN SOLUTION" in cell.source for cell in released.cells)
