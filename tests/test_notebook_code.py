"""The chapters hold the lesson, gentools the machinery: no chapter's code outside the exercises may grow past its
count today, and each ceiling falls as a chapter moves machinery into gentools, toward the budget (bench/
notebook_code.py's BUDGET: 150 lines and 4 definitions); a new chapter starts at the budget. A ceiling rises only by
the lines of a new section's settings, call, figure and claims, after its machinery has gone into gentools."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from notebook_code import BUDGET, measure  # noqa: E402

# Counted on 2026-12-01 (lines, definitions outside the exercises). Lower a number when a chapter shrinks; raise one only
# for a new section, by its lines (chapter 8's L1, momentum and Adam section: +25, no new definitions; chapter 5's implicit
# regularizers: +50 and one definition; chapter 11, new, 2026-12-05: see its entry).
CEILINGS = {
    "01_generalization": (216, 3),
    "02_bias_variance": (134, 2),
    # 2026-12-05: its dropout cells and two exercises moved to the new chapter 4 (within the budget, no entry); the
    # line that reveals the outcome of its new predict-then-run exercise
    "03_regularization": (263, 8),
    # 2026-12-05: the maxout section (settings, one run function, a sweep, a figure and two claims; its machinery,
    # gt.models.Maxout, went into gentools first), +28 lines over the chapter's 142 and one definition
    "04_dropout": (170, 4),
    "05_random_labels": (289, 7),
    "06_double_descent": (224, 2),
    "07_lottery_ticket": (141, 4),
    "08_coherent_gradients": (283, 5),
    "09_robustness": (187, 3),
    "10_kernels_and_features": (159, 7),
    # five sections, each a run function, one sweep, a figure or table and claims; the machinery (gt.measures.summary,
    # vc_bound, fit_posterior, gt.stats.tau_table, gt.plots.table_heatmap, gt.StopAt) went into gentools first; five
    # lines are the paper scale's settings (a larger grid, Dziugaite & Roy's binary MNIST)
    "11_measuring_generalization": (177, 4),
    # six sections over thirteen test sets, four sweeps (a zoo of models, seven training sets, pairs of CNNs, networks
    # on zoomed digits); the machinery (gt.shift, gt.plots.probit_lines, signals and estimates_vs_truth, gt.data's
    # generator settings, gt.regularize.random_zoom) went into gentools first; nine lines are the paper scale's CIFAR-10
    # cell and its learning rates. The zoomed digits (2026-12-05): +33 lines and one definition
    "12_new_data": (258, 6),
}


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda path: path.stem)
def test_a_chapter_holds_no_more_code_than_its_ceiling(path):
    lines, definitions = CEILINGS.get(path.stem, (BUDGET["lines"], BUDGET["definitions"]))
    counts = measure(path)
    assert counts["lines"] <= lines and counts["definitions"] <= definitions, (
        f"{path.stem}: {counts['lines']} code lines and {counts['definitions']} definitions outside the exercises; "
        f"its ceiling is {lines} and {definitions} (the budget: {BUDGET['lines']} and {BUDGET['definitions']}). "
        "Move machinery into gentools rather than raise the ceiling.")
