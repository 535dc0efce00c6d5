"""On-disk storage for caches: atomic writes, JSON and tensor files, and a fingerprint of gentools' source.

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


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """Hash of the code of every gentools module a run can reach: a change of code invalidates every cached result,
    while a change of a comment or a docstring (which cannot change a result), or of a module in NOT_IN_RUNS, does not."""
    sha = hashlib.sha256()
    for file in sorted(path for path in Path(__file__).parent.glob("*.py") if path.name not in NOT_IN_RUNS):
        sha.update(file.name.encode())
        sha.update(_code_only(file.read_text()).encode())
    return sha.hexdigest()[:16]


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
