"""On-disk storage for caches: atomic writes, JSON and tensor files, and the hash of the gentools code a run reaches.

A write goes to a temporary file in the same folder and is renamed into place, so a reader sees either the
whole old file or the whole new one, never a torn one. Tensors are read with weights_only=True: gentools
never unpickles arbitrary objects.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    _atomic_write(path, lambda file: file.write(json.dumps(value, indent=1, allow_nan=True).encode()))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    _atomic_write(path, lambda file: torch.save({k: v.detach().cpu() for k, v in tensors.items()}, file))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def digest(value: Any) -> str:
    """A short stable hash of a JSON-serialisable value."""
    text = json.dumps(value, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Modules no run can reach: the chapters' claims and the exercises' checks (called by notebooks, never by a sweep's
# run), grading and notebook execution. Editing them recomputes nothing.
NOT_IN_RUNS = frozenset({"assignments.py", "checks.py", "claims.py", "grading.py", "nbexec.py"})
# Modules every run depends on, whatever it calls, counted by their own code: how runs are seeded, configured, keyed,
# stored and decoded.
ALWAYS_REACHED = frozenset({"__init__", "config", "device", "fingerprint", "store", "sweep"})
_FOLDER = Path(__file__).parent


def source_hash(modules: frozenset[str] | None = None) -> str:
    """Hash of the code of the gentools modules a run reaches: `modules` (names such as "train"; all of them if
    None) with everything they import from gentools, and ALWAYS_REACHED. A change of their code invalidates the
    results that reached them; a change of a comment or a docstring (which cannot change a result), of a module in
    NOT_IN_RUNS, or of a module the run does not reach, does not."""
    names = [path.stem for path in _FOLDER.glob("*.py")] if modules is None else modules
    return _hash_of(frozenset(_closure(frozenset(names))) | ALWAYS_REACHED)


@functools.lru_cache(maxsize=None)
def _hash_of(modules: frozenset[str]) -> str:
    sha = hashlib.sha256()
    for name in sorted(modules):
        sha.update(f"{name}.py".encode())
        sha.update(_module_code(name).encode())
    return sha.hexdigest()[:16]


def _closure(modules: frozenset[str]) -> set[str]:
    """The modules and every gentools module they import, at any depth. The package's __init__ counts by its own
    code: reaching gt.fit is reaching gentools.train, not every module the package imports."""
    reached, todo = set(), [name for name in modules if name + ".py" not in NOT_IN_RUNS]
    while todo:
        name = todo.pop()
        if name in reached or not (_FOLDER / f"{name}.py").exists():
            continue
        reached.add(name)
        if name != "__init__":
            todo += [imported for imported in _imports(name) if imported + ".py" not in NOT_IN_RUNS]
    return reached


@functools.lru_cache(maxsize=None)
def _imports(name: str) -> tuple[str, ...]:
    """The gentools modules a module imports (relative imports, at the top or inside functions)."""
    found = []
    for node in ast.walk(ast.parse((_FOLDER / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found += [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]
    return tuple(found)


@functools.lru_cache(maxsize=None)
def _module_code(name: str) -> str:
    return _code_only((_FOLDER / f"{name}.py").read_text())


def _code_only(source: str) -> str:
    """The syntax tree of a module without docstrings, comments or positions."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)
