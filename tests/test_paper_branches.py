"""Scale changes numbers, never code: a chapter's paper-scale cell runs the run functions its tiny and book cells run,
with other settings (data set, architecture, sizes), so that what the tests execute is what the paper scale runs."""
import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ("gt.sweep", "gt.fit", "gt.fitted", "gt.ensemble.fit_each")  # the ways a cell trains


def _is_paper_branch(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "gt.scale() == 'paper'" in ast.unparse(node.test)


def _runs(node: ast.AST) -> str | None:
    """What a call runs: the run function of gt.sweep, or the training function itself; None for other calls."""
    if not isinstance(node, ast.Call):
        return None
    called = ast.unparse(node.func)
    if called.startswith("gt.paper."):
        return called
    if called == "gt.sweep":
        function = node.args[0] if node.args else next(k.value for k in node.keywords if k.arg in ("run", "fn", "function"))
        return "lambda" if isinstance(function, ast.Lambda) else ast.unparse(function)
    return called if called in TRAINING else None


def _walk(node: ast.AST, inside: set[str], outside: set[str], in_branch: bool = False) -> None:
    """Every call's run function, filed under inside (within a paper branch's body, at any depth) or outside."""
    if (run := _runs(node)) is not None:
        (inside if in_branch else outside).add(run)
    if _is_paper_branch(node) and not in_branch:
        _walk(node.test, inside, outside)
        for child in node.body:
            _walk(child, inside, outside, in_branch=True)
        for child in node.orelse:  # an else (or elif) is not the paper scale
            _walk(child, inside, outside)
        return
    for child in ast.iter_child_nodes(node):
        _walk(child, inside, outside, in_branch)


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda path: path.stem)
def test_a_paper_branch_runs_the_chapters_own_run_functions(path):
    inside, outside = set(), set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("solution"):
            _walk(ast.parse(cell.source), inside, outside)
    assert not inside - outside, (
        f"{path.stem}: its paper branch runs {sorted(inside - outside)}, which no tiny or book cell runs; "
        "run the chapter's own run function with the paper's settings instead")


def test_the_check_sees_a_paper_branch_that_calls_other_code():
    source = '''
def run(seed): ...
gt.sweep(run, grid=dict(seed=[0]))
if gt.scale() == "paper":
    for name in names:
        gt.sweep(gt.paper.robustness, grid=dict(seed=[0]))
elif gt.scale() == "paper":
    gt.fitted(other, data)
else:
    gt.sweep(run, grid=dict(seed=[1]))
'''
    inside, outside = set(), set()
    _walk(ast.parse(source), inside, outside)
    assert inside - outside == {"gt.paper.robustness", "gt.fitted"} and outside == {"run"}
