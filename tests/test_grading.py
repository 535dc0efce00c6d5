"""Grading with the instructor's checks: on a toy notebook with two exercises (so that no chapter runs again), every
attack on the notebook file and the cheap attacks from inside the kernel earn nothing, tampering is reported, the
table and the feedback say what passed; and a real nbgrader course built from the same notebook agrees."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from gentools import assignments, grading

SETUP = "import numpy as np\nimport gentools as gt"
ANSWER_1 = """def k_fold_indices(n, k, seed=0):
    ### BEGIN SOLUTION
    return np.array_split(np.random.default_rng(seed).permutation(n), k)
    ### END SOLUTION"""
CHECK_1 = "gt.checks.k_fold_indices(k_fold_indices)"
ANSWER_2 = """def variance(predictions):
    ### BEGIN SOLUTION
    return float(predictions.var(dim=0, unbiased=True).mean())
    ### END SOLUTION"""
CHECK_2 = "gt.checks.variance_term(variance)"
STUBS = {"toy-1-answer": "def k_fold_indices(n, k, seed=0):\n    raise NotImplementedError()",
         "toy-2-answer": "def variance(predictions):\n    raise NotImplementedError()"}


def _cell(source, grade_id=None, solution=False, points=0):
    cell = nbformat.v4.new_code_cell(source)
    if grade_id:
        cell.metadata["nbgrader"] = {"schema_version": 3, "grade_id": grade_id, "solution": solution, "grade": not solution,
                                     "locked": not solution, **({"points": points} if not solution else {})}
    return cell


def toy_instructor():
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [_cell(SETUP), nbformat.v4.new_markdown_cell("## Exercise 1: k folds"),
                      _cell(ANSWER_1, "toy-1-answer", solution=True), _cell(CHECK_1, "toy-1-check", points=1),
                      nbformat.v4.new_markdown_cell("## Exercise 2: the variance term"),
                      _cell(ANSWER_2, "toy-2-answer", solution=True), _cell(CHECK_2, "toy-2-check", points=2)]
    return notebook


def submission(answers: dict[str, str] | None = None, edit=None):
    """The student edition with some answers filled in, then `edit` applied to its cells."""
    notebook = assignments.student_edition(toy_instructor())
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if answers and grade_id in answers:
            cell.source = answers[grade_id]
    if edit:
        notebook.cells = edit(notebook.cells)
    return notebook


RIGHT = {"toy-1-answer": ANSWER_1, "toy-2-answer": ANSWER_2}
SUBMISSIONS = {
    "right": submission(RIGHT),
    "stub": submission(),
    "checks_replaced_by_pass": submission(edit=lambda cells: [
        _cell("pass") if c.metadata.get("nbgrader", {}).get("grade") else c for c in cells]),
    "checks_emptied_keeping_metadata": submission(edit=lambda cells: [
        (setattr(c, "source", "") or c) if c.metadata.get("nbgrader", {}).get("grade") else c for c in cells]),
    "checks_deleted": submission(edit=lambda cells: [c for c in cells if not c.metadata.get("nbgrader", {}).get("grade")]),
    "points_raised": submission(edit=lambda cells: [
        (c.metadata["nbgrader"].update(points=50) or c) if c.metadata.get("nbgrader", {}).get("grade") else c for c in cells]),
    "checks_moved_before_answers": submission(edit=lambda cells: sorted(
        cells, key=lambda c: not c.metadata.get("nbgrader", {}).get("grade"))),
    "monkeypatched_check": submission({"toy-1-answer": "gt.checks.k_fold_indices = lambda fn: print('✔ correct')\n"
                                                      "def k_fold_indices(n, k, seed=0):\n    return []"}),
    "fake_gt": submission({"toy-1-answer": "import types\ngt = types.SimpleNamespace(checks=types.SimpleNamespace("
                                           "k_fold_indices=lambda fn: None, variance_term=lambda fn: None))"}),
    "hidden_tracebacks": submission({"toy-1-answer": "get_ipython().showtraceback = lambda *a, **k: print('✔ correct')\n"
                                                     "def k_fold_indices(n, k, seed=0):\n    return []"}),
    "system_exit": submission({"toy-1-answer": "def k_fold_indices(n, k, seed=0):\n    raise SystemExit(0)"}),
    # hides every traceback and prints the token it reads from the source of the cell being run
    "token_from_the_cell": submission({"toy-1-answer": "import re\nip = get_ipython()\n"
                                                       "ip.showtraceback = lambda *a, **k: print(*re.findall(r'gentools-grader-[0-9a-f]{32}', ip.user_ns['In'][-1]))\n"
                                                       "def k_fold_indices(n, k, seed=0):\n    return []"}),
    # breaks the import system, then patches the check the broken import would have replaced
    "broken_import": submission({"toy-1-answer": "import sys\ngt.checks.k_fold_indices = lambda fn: None\n"
                                                 "sys.modules['importlib'] = None\n"
                                                 "def k_fold_indices(n, k, seed=0):\n    return []"}),
    # a fake package in sys.modules and a patched helper the real check relies on
    "fake_module": submission({"toy-2-answer": "import sys, types\nimport gentools.biasvar\n"
                                               "gentools.biasvar.polynomial_study = None\n"
                                               "sys.modules['gentools'] = types.SimpleNamespace(checks=types.SimpleNamespace("
                                               "variance_term=lambda fn: None))\n"
                                               "def variance(predictions):\n    return 0.0"}),
    "loops": submission({"toy-1-answer": "while True:\n    pass", "toy-2-answer": ANSWER_2}),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    source = root / "source" / "toy.ipynb"
    source.parent.mkdir()
    nbformat.write(toy_instructor(), source)
    for student, notebook in SUBMISSIONS.items():
        (root / "submitted" / student / "toy").mkdir(parents=True)
        nbformat.write(notebook, root / "submitted" / student / "toy" / "toy.ipynb")
    released = submission(RIGHT)  # nbgrader's generate_assignment adds a checksum and the cell type to the metadata
    for cell in released.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata["nbgrader"].update(checksum="0123456789abcdef", cell_type="code")
    (root / "submitted" / "released_by_nbgrader" / "toy").mkdir(parents=True)
    nbformat.write(released, root / "submitted" / "released_by_nbgrader" / "toy" / "toy.ipynb")
    results = grading.grade_all(root, source, root / "out", cell_timeout=20, workers=2, progress=lambda line: None)
    return {result.student: result for result in results}, root / "out"


def test_only_the_right_answers_earn_points(graded):
    results, _ = graded
    assert set(results) == set(SUBMISSIONS) | {"released_by_nbgrader"}
    assert results["right"].points == {"toy-1-check": 1, "toy-2-check": 2} and not results["right"].problems
    assert results["released_by_nbgrader"].total == 3 and not results["released_by_nbgrader"].problems
    for student in SUBMISSIONS.keys() - {"right", "loops"}:
        assert results[student].total == 0, (student, results[student])
    assert results["loops"].points == {"toy-1-check": 0, "toy-2-check": 2}  # the loop costs its exercise only
    assert any(problem.startswith("timeout") for problem in results["loops"].problems)


def test_tampering_with_the_checks_is_reported_and_changes_nothing(graded):
    results, _ = graded
    assert results["checks_replaced_by_pass"].problems == ["tampered: toy-1-check (deleted or renamed)",
                                                           "tampered: toy-2-check (deleted or renamed)"]
    assert results["checks_emptied_keeping_metadata"].problems == ["tampered: toy-1-check (edited)",
                                                                   "tampered: toy-2-check (edited)"]
    assert "tampered: toy-1-check (deleted or renamed)" in results["checks_deleted"].problems
    assert results["points_raised"].problems == ["tampered: toy-1-check (edited)", "tampered: toy-2-check (edited)"]
    assert results["points_raised"].maximum == 3  # the instructor's points
    assert "tampered: toy-2-check (moved)" in results["checks_moved_before_answers"].problems
    for student in ("right", "stub", "monkeypatched_check", "loops", "released_by_nbgrader"):
        assert not any(problem.startswith("tampered") for problem in results[student].problems), student


def test_the_table_and_the_feedback_say_what_passed_with_the_hints(graded):
    results, out = graded
    rows = {row["student"]: row for row in csv.DictReader(open(out / "grades.csv"))}
    assert set(rows) == set(SUBMISSIONS) | {"released_by_nbgrader"}
    assert rows["right"]["toy-1-check"] == "1.0" and rows["right"]["total"] == "3" and rows["right"]["maximum"] == "3"
    assert rows["stub"]["total"] == "0" and "tampered: toy-1-check" in rows["checks_deleted"]["problems"]
    page = (out / "feedback" / "stub-toy.html").read_text()
    assert "0 of 3 points" in page and page.count("failed: ") == 2 and "NotImplementedError" in page
    page = (out / "feedback" / "monkeypatched_check-toy.html").read_text()
    assert "Not yet:" in page  # the real check's hint
    assert "gentools-grader-" not in "".join(p.read_text() for p in (out / "feedback").glob("*.html"))  # the token stays secret


def test_the_command_line_grades_a_folder_of_notebooks(tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    nbformat.write(toy_instructor(), source / "toy.ipynb")
    (tmp_path / "in" / "ada").mkdir(parents=True)
    nbformat.write(SUBMISSIONS["right"], tmp_path / "in" / "ada" / "toy.ipynb")
    nbformat.write(SUBMISSIONS["stub"], tmp_path / "in" / "bob.ipynb")  # a flat file: the student is its name
    assert assignments.main(["grade", str(tmp_path / "in"), "--source", str(source), "--out", str(tmp_path / "out"),
                             "--cell-timeout", "20"]) == 0
    lines = capsys.readouterr().out
    assert "ada (toy.ipynb): 3 / 3 points" in lines and "bob (toy.ipynb): 0 / 3 points" in lines


def test_a_real_nbgrader_course_gives_full_marks_zero_and_zero(tmp_path):
    """nbgrader's own route, on the same notebook: generate_assignment, autograde, export."""
    nbgrader = Path(sys.executable).with_name("nbgrader")
    if not nbgrader.exists():
        pytest.skip("nbgrader is not installed next to the test's Python; run `make test`")
    (tmp_path / "source" / "toy").mkdir(parents=True)
    nbformat.write(toy_instructor(), tmp_path / "source" / "toy" / "toy.ipynb")
    (tmp_path / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.course_id = "toy"\nc.CourseDirectory.db_assignments = [dict(name="toy")]\n'
        'c.ExecutePreprocessor.timeout = 60\n')
    env = {**os.environ, "PATH": f"{nbgrader.parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(*args):
        result = subprocess.run([str(nbgrader), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    run("generate_assignment", "toy", "--force")
    released = nbformat.read(tmp_path / "release" / "toy" / "toy.ipynb", as_version=4)
    for student, notebook in (("right", SUBMISSIONS["right"]), ("stub", released),
                              ("tampered", SUBMISSIONS["checks_emptied_keeping_metadata"])):
        (tmp_path / "submitted" / student / "toy").mkdir(parents=True)
        if student == "right":  # the released notebook (with nbgrader's checksums) with the answers filled in
            notebook = nbformat.read(tmp_path / "release" / "toy" / "toy.ipynb", as_version=4)
            for cell in notebook.cells:
                if cell.metadata.get("nbgrader", {}).get("solution"):
                    cell.source = RIGHT[cell.metadata["nbgrader"]["grade_id"]]
        nbformat.write(notebook, tmp_path / "submitted" / student / "toy" / "toy.ipynb")
    run("autograde", "toy", "--create", "--force")
    run("export")
    scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert scores == {"right": 3.0, "stub": 0.0, "tampered": 0.0}


def test_the_student_edition_of_the_toy_notebook_hides_the_answers():
    student = assignments.student_edition(toy_instructor())
    assert all("BEGIN SOLUTION" not in cell.source for cell in student.cells)
    assert [cell.source for cell in student.cells if cell.metadata.get("nbgrader", {}).get("grade")] == [CHECK_1, CHECK_2]
