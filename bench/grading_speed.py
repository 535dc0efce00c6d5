"""How long does grading a class take? 30 submissions of chapter 1, graded with the instructor's checks on both cores.

The submissions are mixed as a real class would hand them in: right answers, untouched stubs, a plausible mistake
(k folds that are not shuffled), checks replaced by `pass` (tampering), and answers that loop. The instructor's cache
is made first by executing chapter 1 once at the tiny scale; each submission then reads a private copy of it. Goal:
at most 15 minutes on 2 cores. Prints the time, the points of each kind of submission, and the problems found.

    python bench/grading_speed.py
"""
from __future__ import annotations

import collections
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gentools import assignments, grading  # noqa: E402

CHAPTER = ROOT / "notebooks" / "01_generalization.ipynb"
UNSHUFFLED = "import numpy as np\n\ndef k_fold_indices(n, k, seed=0):\n    return np.array_split(np.arange(n), k)"
KINDS = {"right": 10, "stub": 8, "mistake": 6, "tampered": 4, "loops": 2}


def make(kind: str, instructor, student):
    notebook = nbformat.from_dict(instructor if kind in ("right", "mistake") else student)
    notebook = nbformat.from_dict(notebook)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if kind == "mistake" and meta.get("grade_id") == "ch1-exercise-3-answer":
            cell.source = UNSHUFFLED
        if kind == "tampered" and meta.get("grade"):
            cell.source = "pass"
        if kind == "loops" and meta.get("grade_id") == "ch1-exercise-1-answer":
            cell.source = "while True:\n    pass"
    return notebook


def main() -> None:
    os.environ.setdefault("GENTOOLS_SCALE", "tiny")
    os.environ["OMP_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        cache = folder / "instructor-cache"
        start = time.perf_counter()
        from nbclient import NotebookClient

        os.environ["GENTOOLS_CACHE"] = str(cache)
        instructor = nbformat.read(CHAPTER, as_version=4)
        NotebookClient(nbformat.from_dict(instructor), timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(CHAPTER.parent)}}).execute()
        print(f"the instructor's run of chapter 1 (makes the cache): {time.perf_counter() - start:.0f} s")
        student = assignments.student_edition(instructor)
        kinds = {}
        for kind, count in KINDS.items():
            for i in range(count):
                name = f"{kind}-{i:02d}"
                kinds[name] = kind
                (folder / "in" / name).mkdir(parents=True)
                nbformat.write(make(kind, instructor, student), folder / "in" / name / CHAPTER.name)
        start = time.perf_counter()
        results = grading.grade_all(folder / "in", CHAPTER, folder / "out", cell_timeout=60, time_limit=1500,
                                    workers=os.cpu_count() or 1, cache=cache, progress=lambda line: None)
        seconds = time.perf_counter() - start
    by_kind = collections.defaultdict(list)
    for result in results:
        by_kind[kinds[result.student]].append(result)
    print(f"{len(results)} submissions of chapter 1 graded in {seconds:.0f} s ({seconds / 60:.1f} min) on {os.cpu_count()} "
          f"cores (goal: at most 15 min)")
    for kind, found in by_kind.items():
        points = sorted({f"{result.total:g}/{result.maximum:g}" for result in found})
        problems = sorted({problem.split(":")[0] for result in found for problem in result.problems})
        print(f"  {kind:9} x{len(found):>2}: points {', '.join(points)}; problems: {', '.join(problems) or 'none'}")


if __name__ == "__main__":
    main()
