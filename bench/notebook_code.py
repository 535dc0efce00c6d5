"""How much code the chapters hold: the lesson should read as prose, the machinery live in gentools.

For each chapter: non-blank, non-comment lines in code cells, and functions or classes defined, outside the
exercises (nbgrader answer and check cells) and, separately, inside them. The budget: at most 150 lines and 4
definitions a chapter outside the exercises (BUDGET). tests/test_notebook_code.py holds every chapter to its
count today (CEILINGS, lowered as chapters move machinery into gentools) until each is within the budget.

    python bench/notebook_code.py
"""
import ast
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BUDGET = {"lines": 150, "definitions": 4}


def measure(path: Path) -> dict:
    counts = {"lines": 0, "definitions": 0, "exercise lines": 0, "exercise definitions": 0}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        code = [line for line in cell.source.splitlines() if line.strip() and not line.strip().startswith(("#", "%"))]
        try:
            tree = ast.parse(cell.source)
            definitions = sum(isinstance(node, (ast.FunctionDef, ast.ClassDef)) for node in ast.walk(tree))
        except SyntaxError:  # a cell with IPython magics
            definitions = sum(line.lstrip().startswith(("def ", "class ")) for line in code)
        grader = cell.metadata.get("nbgrader", {})
        prefix = "exercise " if grader.get("solution") or grader.get("grade") else ""
        counts[prefix + "lines"] += len(code)
        counts[prefix + "definitions"] += definitions
    return counts


def main() -> int:
    total = {}
    print(f"{'chapter':32} {'lines':>6} {'defs':>5} {'exercise lines':>15} {'exercise defs':>14}")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        counts = measure(path)
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
        print(f"{path.stem:32} {counts['lines']:6} {counts['definitions']:5} {counts['exercise lines']:15} "
              f"{counts['exercise definitions']:14}")
    print(f"{'total':32} {total['lines']:6} {total['definitions']:5} {total['exercise lines']:15} "
          f"{total['exercise definitions']:14}")
    print(f"budget: {BUDGET['lines']} lines and {BUDGET['definitions']} definitions a chapter outside the exercises")
    return 0


if __name__ == "__main__":
    sys.exit(main())
