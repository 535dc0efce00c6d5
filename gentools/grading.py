"""Grading handed-in notebooks with the instructor's checks, never the student's.

What a student hands in is trusted for one thing only: the source of each answer cell (an nbgrader solution cell,
found by its grade_id). Everything else comes from the instructor's notebook: the graded notebook is the
instructor's, cell for cell, with the student's answers put in (a missing answer is the stub). A change to any
locked cell (a check edited, deleted, renamed, reordered, or its points changed) is reported as tampering and has
no effect. Answer code runs in the same kernel as the checks, so every check first imports all of gentools afresh
from disk and rebinds `gt` to it, and a check counts only if the cell ran
to its last line, which prints a token drawn for this grading run, and the kernel itself reported it finished
without an error: printing "✔ correct" or the token, hiding tracebacks or leaving the kernel early earns nothing. Each submission runs in its own kernel,
with its own copy of the instructor's cache (so student code cannot change results another submission reads),
a time limit a cell and for the whole run, on several kernels at once. The results: one CSV table (students x
exercises), and a feedback page for each student listing each check, passed or failed, with its hint.
"""
from __future__ import annotations

import csv
import html
import os
import secrets
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

# What stands in for an answer: in the student edition's answer cells, and in a graded notebook for an answer cell
# a submission lacks (it raises, so the exercise's check fails).
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"

# The first lines of every check: gentools, all of it, imported again from disk and bound to `gt`, whatever the
# answers did to the kernel's copies (a monkeypatched check or helper, a fake `gt` or `sys.modules` entry). In the
# check's own cell, so that if the answers broke the import, the check fails.
FRESH_GENTOOLS = """import sys as _grader_sys
for _grader_name in [name for name in _grader_sys.modules if name == "gentools" or name.startswith("gentools.")]:
    del _grader_sys.modules[_grader_name]
import gentools as gt
"""
# What the instructor's metadata and the submission's must agree on; nbgrader adds a checksum and a cell type.
COMPARED = ("grade_id", "grade", "solution", "locked", "points")


@dataclass
class Result:
    """One submission's grade: points per check (grade_id), and what went wrong."""

    student: str
    notebook: str
    points: dict[str, float] = field(default_factory=dict)
    possible: dict[str, float] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)  # grade_id -> why it failed
    problems: list[str] = field(default_factory=list)  # timeout, crash, tampering, ...
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.points.values())

    @property
    def maximum(self) -> float:
        return sum(self.possible.values())

    def __str__(self) -> str:
        passed = sum(self.points[name] > 0 for name in self.points)
        line = (f"{self.student} ({self.notebook}): {self.total:g} / {self.maximum:g} points "
                f"({passed} checks passed, {len(self.possible) - passed} failed)")
        return line + (f"; {'; '.join(self.problems)}" if self.problems else "")


def grade_ids(notebook) -> list[str]:
    return [cell.metadata["nbgrader"]["grade_id"] for cell in notebook.cells
            if cell.metadata.get("nbgrader", {}).get("grade_id")]


def tampering(instructor, submission) -> list[str]:
    """Every locked cell of the instructor's notebook (checks, and any cell nbgrader locks) that the submission
    deleted, edited (source or nbgrader metadata) or moved: 'tampered: ch1-exercise-2-check (edited)'."""
    theirs = {cell.metadata["nbgrader"]["grade_id"]: cell for cell in submission.cells
              if cell.metadata.get("nbgrader", {}).get("grade_id")}
    ours = grade_ids(instructor)
    their_order = [name for name in grade_ids(submission) if name in ours]
    found = []
    for cell in instructor.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade_id") or meta.get("solution") or not (meta.get("locked") or meta.get("grade")):
            continue
        name = meta["grade_id"]
        if name not in theirs:
            found.append(f"tampered: {name} (deleted or renamed)")
            continue
        their_cell = theirs[name]
        theirs_meta = their_cell.metadata.get("nbgrader", {})
        if (their_cell.source.strip() != cell.source.strip()
                or any(theirs_meta.get(key) != meta.get(key) for key in COMPARED)):
            found.append(f"tampered: {name} (edited)")
        elif set(their_order[:their_order.index(name)]) != set(ours[:ours.index(name)]) & set(their_order):
            found.append(f"tampered: {name} (moved)")  # other graded cells before it than in the instructor's
    return found


def assemble(instructor, submission, token: str):
    """The notebook that is graded: the instructor's, with the submission's answer cells put in by grade_id, a
    fresh import of the checks before every check cell, and the token printed as every check's last line."""
    answers = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in submission.cells
               if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")}
    graded = nbformat.from_dict(instructor)
    graded.cells = []
    for index, cell in enumerate(instructor.cells):
        cell = nbformat.from_dict(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = answers.get(meta["grade_id"], STUB)
        elif meta.get("grade"):
            cell.source = f"{FRESH_GENTOOLS}{cell.source}\nprint({token!r})"
        graded.cells.append(cell)
    return graded


def _failure(cell) -> str:
    """Why a check cell failed: the CheckFailed hint ('Not yet: ...'), or the error's last line."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".replace("CheckFailed: ", "")[:500]
    return "the check did not run to its end"


def grade(submission_path: Path, instructor_path: Path, student: str, cell_timeout: int = 120,
          cache: Path | None = None, deadline: float | None = None) -> tuple[Result, object]:
    """Grade one submission against its instructor notebook in a kernel of its own; returns the result and the
    executed notebook (for feedback). A check passes when the kernel reports its cell finished without an error
    and the cell printed the token (its last line)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .nbexec import reliable_replies

    reliable_replies()
    start = time.monotonic()
    instructor = nbformat.read(instructor_path, as_version=4)
    result = Result(student, Path(instructor_path).name)
    try:
        submission = nbformat.read(submission_path, as_version=4)
    except Exception as error:  # noqa: BLE001 - a file that is not a notebook is graded 0 with the reason
        submission = nbformat.v4.new_notebook()
        result.problems.append(f"not a readable notebook ({type(error).__name__})")
    result.problems += tampering(instructor, submission)
    token = f"gentools-grader-{secrets.token_hex(16)}"
    graded = assemble(instructor, submission, token)
    timeout = cell_timeout if deadline is None else max(1, min(cell_timeout, int(deadline - time.monotonic())))
    with tempfile.TemporaryDirectory(prefix="gentools-grade-") as private:
        private_cache = Path(private) / "cache"
        if cache is not None and Path(cache).exists():  # the instructor's results, read from a copy of its own
            shutil.copytree(cache, private_cache)
        env = {**os.environ, "GENTOOLS_CACHE": str(private_cache), "GENTOOLS_PROGRESS": "0", "GENTOOLS_WORKERS": "1",
               "OMP_NUM_THREADS": "1", "GENTOOLS_SCALE": os.environ.get("GENTOOLS_SCALE", "tiny")}
        status: dict[int, str] = {}  # each cell's execute_reply status, straight from the kernel

        def executed(cell, cell_index, execute_reply):
            status[cell_index] = (execute_reply or {}).get("content", {}).get("status", "error")

        client = NotebookClient(graded, timeout=timeout, interrupt_on_timeout=True, allow_errors=True,
                                kernel_name="python3", on_cell_executed=executed,
                                resources={"metadata": {"path": str(Path(instructor_path).parent)}})
        try:
            client.execute(env=env)
        except CellTimeoutError:
            result.problems.append(f"timeout: a cell ran over {timeout} s")
        except DeadKernelError:
            result.problems.append("crash: the kernel died")
        except RuntimeError as error:
            result.problems.append(f"crash: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
    interrupted = [cell for cell in graded.cells for output in cell.get("outputs", [])
                   if output.get("output_type") == "error" and output.get("ename") == "KeyboardInterrupt"]
    if interrupted and not any(problem.startswith("timeout") for problem in result.problems):
        result.problems.append(f"timeout: {len(interrupted)} {'cell' if len(interrupted) == 1 else 'cells'} "
                               f"ran over {timeout} s and {'was' if len(interrupted) == 1 else 'were'} interrupted")
    for index, cell in enumerate(graded.cells):
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade") or meta.get("solution"):
            continue
        name, points = meta["grade_id"], float(meta.get("points", 0))
        printed = "".join(output.get("text", "") for output in cell.get("outputs", []) if output.get("output_type") == "stream")
        errored = any(output.get("output_type") == "error" for output in cell.get("outputs", []))
        passed = token in printed and not errored and status.get(index) == "ok"
        result.possible[name] = points
        result.points[name] = points if passed else 0.0
        if not passed:
            result.hints[name] = _failure(cell)
        for output in cell.get("outputs", []):  # the token stays secret: feedback shows the check's own output
            if output.get("output_type") == "stream":
                output["text"] = output["text"].replace(token + "\n", "").replace(token, "")
    result.seconds = time.monotonic() - start
    return result, graded


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, notebook) pairs from a folder of notebooks (student = file name), of folders (student = folder
    name), or nbgrader's submitted/<student>/<assignment>/<notebook>.ipynb layout."""
    folder = Path(folder)
    if (folder / "submitted").is_dir():
        folder = folder / "submitted"
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        relative = path.relative_to(folder)
        found.append((relative.parts[0] if len(relative.parts) > 1 else path.stem, path))
    return found


def instructor_for(submission: Path, instructors: list[Path]) -> Path | None:
    """The instructor notebook a submission answers: the one with its file name, else the one sharing most
    grade_ids with it."""
    by_name = [path for path in instructors if path.name == submission.name]
    if by_name:
        return by_name[0]
    try:
        theirs = set(grade_ids(nbformat.read(submission, as_version=4)))
    except Exception:  # noqa: BLE001
        return instructors[0] if len(instructors) == 1 else None
    shared = [(len(theirs & set(grade_ids(nbformat.read(path, as_version=4)))), path) for path in instructors]
    best = max(shared, default=(0, None), key=lambda item: item[0])
    return best[1] if best[0] else (instructors[0] if len(instructors) == 1 else None)


def feedback_page(result: Result) -> str:
    """An HTML page for one student: each check, passed or failed with its hint, then the problems."""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{result.points[name]:g} / {result.possible[name]:g}</td>"
        f"<td>{'passed' if result.points[name] > 0 else 'failed: ' + html.escape(result.hints.get(name, ''))}</td></tr>"
        for name in result.possible)
    problems = "".join(f"<li>{html.escape(problem)}</li>" for problem in result.problems)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Feedback: {html.escape(result.student)}</title></head>"
            f"<body><h1>{html.escape(result.notebook)}: {html.escape(result.student)}</h1>"
            f"<p>{result.total:g} of {result.maximum:g} points.</p>"
            f"<table border='1' cellpadding='4'><tr><th>check</th><th>points</th><th>result</th></tr>{rows}</table>"
            + (f"<h2>Problems</h2><ul>{problems}</ul>" if problems else "") + "</body></html>")


def grade_all(folder: Path, source: Path, out: Path, cell_timeout: int = 120, time_limit: int = 3600,
              workers: int | None = None, cache: Path | None = None, progress=print) -> list[Result]:
    """Grade every submission in `folder` against the instructor notebooks in `source` (a notebook or a folder),
    on `workers` kernels at once, within `time_limit` seconds in all; write grades.csv and feedback/<student>.html
    to `out`."""
    source = Path(source)
    instructors = [source] if source.is_file() else sorted(source.glob("*.ipynb"))
    found = submissions(folder)
    deadline = time.monotonic() + time_limit
    workers = workers or os.cpu_count() or 1

    def one(item: tuple[str, Path]) -> Result:
        student, path = item
        instructor = instructor_for(path, instructors)
        if instructor is None:
            return Result(student, path.name, problems=["cannot tell which chapter this notebook answers"])
        if time.monotonic() >= deadline:
            empty = nbformat.read(instructor, as_version=4)
            result = Result(student, instructor.name, problems=[f"not graded: the whole run's limit of {time_limit} s was reached"])
            result.possible = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"].get("points", 0))
                               for c in empty.cells if c.metadata.get("nbgrader", {}).get("grade")}
            result.points = dict.fromkeys(result.possible, 0.0)
            return result
        result, _ = grade(path, instructor, student, cell_timeout, cache, deadline)
        (out / "feedback").mkdir(parents=True, exist_ok=True)
        (out / "feedback" / f"{student}-{instructor.stem}.html").write_text(feedback_page(result))
        progress(str(result))
        return result

    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, found))
    write_table(results, out / "grades.csv")
    return results


def write_table(results: list[Result], path: Path) -> None:
    """students x checks: the points of each check, the total, the maximum, and the problems."""
    checks = list(dict.fromkeys(name for result in results for name in result.possible))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "notebook", *checks, "total", "maximum", "problems"])
        for result in results:
            writer.writerow([result.student, result.notebook, *(result.points.get(name, "") for name in checks),
                             f"{result.total:g}", f"{result.maximum:g}", "; ".join(result.problems)])


__all__ = ["Result", "assemble", "feedback_page", "grade", "grade_all", "submissions", "tampering", "write_table"]
