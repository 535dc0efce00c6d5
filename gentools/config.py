"""Where the course runs: its scale, and the folders for caches and data.

Everything is read from environment variables at call time, so a test or a notebook can change them
without restarting Python.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

SCALES = ("tiny", "book", "paper")
DEFAULT_SCALE = "book"

T = TypeVar("T")


def scale() -> str:
    """The current scale: GENTOOLS_SCALE = tiny | book (default) | paper."""
    value = os.environ.get("GENTOOLS_SCALE", DEFAULT_SCALE).strip().lower() or DEFAULT_SCALE
    if value not in SCALES:
        raise ValueError(
            f"GENTOOLS_SCALE={value!r} is not a scale. Use one of {', '.join(SCALES)}: "
            "tiny for CI (about a minute a chapter), book for readers (a few minutes on a laptop), "
            "paper for a GPU."
        )
    return value


def pick(tiny: T, book: T, paper: T | None = None) -> T:
    """The value for the current scale; `paper` defaults to the `book` value."""
    chosen = {"tiny": tiny, "book": book, "paper": book if paper is None else paper}
    return chosen[scale()]


def _folder(variable: str, default: Path) -> Path:
    path = Path(os.environ.get(variable) or default).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Sweep results and generated data: GENTOOLS_CACHE, else ~/.cache/gentools."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return _folder("GENTOOLS_CACHE", base / "gentools")


def data_dir() -> Path:
    """Downloaded data sets (MNIST, CIFAR-10, ...): GENTOOLS_DATA, else ~/.local/share/gentools/data."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return _folder("GENTOOLS_DATA", base / "gentools" / "data")


def show_progress() -> bool:
    """Progress bars are on, except at the tiny scale (CI) or when GENTOOLS_PROGRESS=0."""
    setting = os.environ.get("GENTOOLS_PROGRESS", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return scale() != "tiny"


def seed_offset() -> int:
    """GENTOOLS_SEED (default 0): which draw of the chapters' randomness a run uses. Every seed a chapter passes to
    gentools (initialisation, batch order, validation and resampling splits, label noise) is shifted by it, so
    `GENTOOLS_SEED=1 make book` repeats the whole course with other seeds; the reference data sets stay fixed."""
    value = os.environ.get("GENTOOLS_SEED", "").strip() or "0"
    if not value.isdigit():
        raise ValueError(f"GENTOOLS_SEED={value!r} must be a whole number, 0 or more (0 is the book's own seeds).")
    return int(value)


def workers() -> int:
    """Worker processes a sweep runs its points on when no executor is given: GENTOOLS_WORKERS, default 1 (in the
    calling process). `make book` sets it to the number of cores."""
    value = os.environ.get("GENTOOLS_WORKERS", "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"GENTOOLS_WORKERS={value!r} must be a whole number of processes, 1 or more.")
    return int(value)


def cached_only() -> bool:
    """GENTOOLS_CACHED_ONLY=1: every training run must be read from the cache, and gt.fit raises instead of training.
    The tests set it for a chapter's second execution (the book built after nbval, the student edition), which then
    proves that everything a chapter trains goes through the cache."""
    return os.environ.get("GENTOOLS_CACHED_ONLY", "").strip().lower() in ("1", "true", "yes", "on")
