"""On-disk storage for caches: atomic writes, JSON and tensor files, and a fingerprint of gentools' source.

A write goes to a temporary file in the same folder and is renamed into place, so a reader sees either the
whole old file or the whole new one, never a torn one. Tensors are read with weights_only=True: gentools
never unpickles arbitrary objects.
"""
from __future__ import annotations

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


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """Hash of every gentools source file: any change to the code invalidates every cached result."""
    sha = hashlib.sha256()
    for file in sorted(Path(__file__).parent.glob("*.py")):
        sha.update(file.name.encode())
        sha.update(file.read_bytes())
    return sha.hexdigest()[:16]
