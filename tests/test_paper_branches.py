"""Scale changes numbers, never code: a chapter's paper-scale cell runs the run functions its tiny and book cells run,
with other settings (data set, architecture, sizes). The run functions a paper branch sweeps that no other cell of its
chapter sweeps are listed here, and the list may only shrink."""
import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Not yet through their chapters' own run functions (gt.paper's last two experiments; chapter 7's coherence lambda).
PAPER_ONLY = {"07_coherent_gradients": {"lambda", "gt.paper.noisy_label_fit"}, "09_kernels_and_features": {"gt.paper.transfer"}}


def _is_paper_branch(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "gt.scale() == 'paper'" in ast.unparse(node.test)


def _swept(nodes) -> set[str]:
    """The run functions passed to gt.sweep (and gt.ensemble.fit_each, which runs without one) within nodes."""
    names = set()
    for node in (inner for outer in nodes for inner in ast.walk(outer)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "gt.sweep" and node.args:
            names.add("lambda" if isinstance(node.args[0], ast.Lambda) else ast.unparse(node.args[0]))
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "gt.ensemble.fit_each":
            names.add("gt.ensemble.fit_each")
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda path: path.stem)
def test_a_paper_branch_runs_the_chapters_own_run_functions(path):
    inside, outside = set(), set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        tree = ast.parse(cell.source)
        branches = [node for node in ast.walk(tree) if _is_paper_branch(node)]
        inside |= _swept(node for branch in branches for node in branch.body)
        outside |= _swept(node for node in tree.body if not _is_paper_branch(node))
    assert inside - outside == PAPER_ONLY.get(path.stem, set()), (
        f"{path.stem}: its paper branch sweeps {sorted(inside - outside)}, which no tiny or book cell runs; "
        "run the chapter's own run function with the paper's settings instead")
