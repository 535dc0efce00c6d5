"""gentools is layered: its modules' top-level imports of each other form no cycle, so every module can be read (and
imported) after the ones it builds on, and the training loop imports no chapter topic."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gentools"
TOPICS = {"attacks", "biasvar", "ensemble", "gradients", "kernels", "linear", "measures", "prune", "regularize", "shift",
          "transfer"}  # a chapter's subject each; the engine below them must not need them


def top_level_imports(inside_functions: bool = False) -> dict[str, set[str]]:
    """Each module's gentools modules imported at its top level (imports inside functions are deliberate late
    bindings: the command line, optional heavy libraries), or anywhere in it."""
    graph = {}
    for path in PACKAGE.glob("*.py"):
        imported = set()
        tree = ast.parse(path.read_text())
        for node in (ast.walk(tree) if inside_functions else tree.body):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
        graph[path.stem] = imported - {path.stem}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (a list of modules, the first repeated at the end), or [] if there is none."""
    state, path = {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for other in sorted(graph.get(module, ())):
            if state.get(other) == "open":
                return path[path.index(other):] + [other]
            if other not in state and (found := visit(other)):
                return found
        state[module] = "done"
        path.pop()
        return []

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return []


def test_the_cycle_finder_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_gentools_top_level_imports_have_no_cycle():
    graph = top_level_imports()
    assert {"train", "sweep", "models", "data"} <= set(graph)
    assert not cycle(graph), f"an import cycle: {' -> '.join(cycle(graph))}"


def test_no_cycle_even_through_late_imports():
    graph = top_level_imports(inside_functions=True)
    assert not cycle(graph), f"an import cycle through an import inside a function: {' -> '.join(cycle(graph))}"


def test_the_engine_imports_no_chapter_topic():
    graph = top_level_imports()
    for engine in ("train", "sweep", "history", "settings", "data", "models", "device", "config", "store"):
        assert not graph.get(engine, set()) & TOPICS, f"gentools.{engine} imports {sorted(graph[engine] & TOPICS)}"
