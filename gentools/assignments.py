"""Teaching with the chapters: the student edition, and grading what students hand back.

The chapters are the instructor edition. Each exercise has an answer cell, marked for nbgrader as a solution cell
(the answer between `### BEGIN SOLUTION` and `### END SOLUTION`), and a check cell, marked as an autograded test
worth points; its check (gentools.checks) never shows the answer. `student_edition` runs nbgrader's own
preprocessors: ClearSolutions replaces every answer by `# YOUR CODE HERE` / `raise NotImplementedError()`, and
ClearOutput empties the outputs. `grade` executes each submitted notebook in its own kernel, with a time limit a
cell, and reports the checks passed and failed with their points; a notebook that errors or loops is reported and
the next one graded. A drop-in nbgrader course works too: the metadata follows nbgrader's schema (version 3).

    python -m gentools.assignments student notebooks _build/assignments     # make assignments
    python -m gentools.assignments grade SUBMISSIONS_FOLDER                   # make grade SUBMISSIONS=...
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def answer_cells(notebook) -> list[int]:
    """Indices of the exercises' answer cells (nbgrader solution cells)."""
    return [i for i, cell in enumerate(notebook.cells) if cell.metadata.get("nbgrader", {}).get("solution")]


def check_cells(notebook) -> list[int]:
    """Indices of the exercises' check cells (nbgrader autograded test cells)."""
    return [i for i, cell in enumerate(notebook.cells) if cell.metadata.get("nbgrader", {}).get("grade")]


def student_edition(notebook):
    """The student version of an instructor notebook: every answer stubbed, outputs cleared, answers shown."""
    from nbgrader.preprocessors import ClearOutput, ClearSolutions

    notebook = nbformat.from_dict(notebook)
    notebook, _ = ClearSolutions(code_stub={"python": STUB}, enforce_metadata=True).preprocess(notebook, {})
    notebook, _ = ClearOutput().preprocess(notebook, {})
    for index in answer_cells(notebook):  # on the website answers are collapsed; a student's stub is in plain view
        metadata = notebook.cells[index].metadata
        metadata["tags"] = [tag for tag in metadata.get("tags", []) if tag != "hide-cell"]
        if not metadata["tags"]:
            del metadata["tags"]
    return notebook


def build_student_edition(source: Path, target: Path) -> list[Path]:
    """The student edition of every chapter in `source`, written to `target`."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(Path(source).glob("*.ipynb")):
        nbformat.write(student_edition(nbformat.read(path, as_version=4)), target / path.name)
        written.append(target / path.name)
    return written


@dataclass
class Grade:
    notebook: str
    passed: list[str]
    failed: list[str]
    points: float
    total: float
    problem: str = ""

    def __str__(self) -> str:
        line = f"{self.notebook}: {self.points:g} / {self.total:g} points ({len(self.passed)} checks passed, {len(self.failed)} failed)"
        return line + (f"; failed: {', '.join(self.failed)}" if self.failed else "") + (f"; {self.problem}" if self.problem else "")


def grade(path: Path, cell_timeout: int = 600) -> Grade:
    """Execute one submitted notebook in its own kernel and score its check cells."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .nbexec import reliable_replies

    reliable_replies()
    notebook = nbformat.read(path, as_version=4)
    problem = ""
    client = NotebookClient(notebook, timeout=cell_timeout, interrupt_on_timeout=True, allow_errors=True,
                            kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}})
    try:
        client.execute()
    except (CellTimeoutError, DeadKernelError, RuntimeError) as error:  # a runaway or crashed kernel
        problem = f"execution stopped: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    passed, failed, points, total = [], [], 0.0, 0.0
    for index in check_cells(notebook):
        cell, meta = notebook.cells[index], notebook.cells[index].metadata["nbgrader"]
        total += meta.get("points", 0)
        ran = cell.get("execution_count") is not None
        errored = any(output.get("output_type") == "error" for output in cell.get("outputs", []))
        if ran and not errored:
            passed.append(meta["grade_id"])
            points += meta.get("points", 0)
        else:
            failed.append(meta["grade_id"])
    return Grade(Path(path).name, passed, failed, points, total, problem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gentools.assignments", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("student", help="build the student edition")
    student.add_argument("source", type=Path)
    student.add_argument("target", type=Path)
    grading = commands.add_parser("grade", help="grade a folder of submitted notebooks")
    grading.add_argument("folder", type=Path)
    grading.add_argument("--cell-timeout", type=int, default=600, help="seconds a cell may run (default 600)")
    args = parser.parse_args(argv)
    if args.command == "student":
        for path in build_student_edition(args.source, args.target):
            print(f"wrote {path}")
        return 0
    submissions = sorted(args.folder.glob("*.ipynb"))
    if not submissions:
        print(f"no notebooks in {args.folder}", file=sys.stderr)
        return 1
    for path in submissions:
        print(grade(path, args.cell_timeout), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
