"""Teaching with the chapters: the student edition, and grading what students hand back.

The chapters are the instructor edition. Each exercise has an answer cell, marked for nbgrader as a solution cell
(the answer between `### BEGIN SOLUTION` and `### END SOLUTION`), and a check cell, marked as an autograded test
worth points; its check (gentools.checks) never shows the answer. `student_edition` runs nbgrader's own
preprocessors: ClearSolutions replaces every answer by `# YOUR CODE HERE` / `raise NotImplementedError()`, and
ClearOutput empties the outputs. Grading (gentools.grading) runs the instructor's notebook with each student's
answers put in, so the checks are always the instructor's. A drop-in nbgrader course works too: the metadata
follows nbgrader's schema (version 3).

    python -m gentools.assignments student notebooks _build/assignments     # make assignments
    python -m gentools.assignments grade SUBMISSIONS_FOLDER                   # make grade SUBMISSIONS=...
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from .grading import STUB, grade_all, submissions


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gentools.assignments", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("student", help="build the student edition")
    student.add_argument("source", type=Path)
    student.add_argument("target", type=Path)
    grading = commands.add_parser("grade", help="grade a folder of submitted notebooks with the instructor's checks")
    grading.add_argument("folder", type=Path, help="notebooks (one a student), folders (one a student), or nbgrader's submitted/")
    grading.add_argument("--source", type=Path, default=Path("notebooks"), help="the instructor notebooks (default notebooks/)")
    grading.add_argument("--out", type=Path, default=Path("_build/grades"), help="grades.csv and feedback/ go here")
    grading.add_argument("--cell-timeout", type=int, default=120, help="seconds a cell may run (default 120)")
    grading.add_argument("--time-limit", type=int, default=3600, help="seconds for the whole run (default 3600)")
    grading.add_argument("--workers", type=int, default=None, help="kernels at once (default: one a core)")
    grading.add_argument("--cache", type=Path, default=None,
                         help="the instructor's gentools cache; each submission reads a private copy of it")
    args = parser.parse_args(argv)
    if args.command == "student":
        for path in build_student_edition(args.source, args.target):
            print(f"wrote {path}")
        return 0
    if not submissions(args.folder):
        print(f"no notebooks in {args.folder}", file=sys.stderr)
        return 1
    results = grade_all(args.folder, args.source, args.out, args.cell_timeout, args.time_limit, args.workers, args.cache,
                        progress=lambda line: print(line, flush=True))
    print(f"{len(results)} submissions graded: {args.out / 'grades.csv'}; feedback for each in {args.out / 'feedback'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
