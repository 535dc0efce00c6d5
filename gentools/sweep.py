"""Grids of runs with an on-disk cache: each finished run is saved at once, so an interrupted sweep resumes
where it stopped, and a rerun of a notebook serves the results instead of training again.

A run's cache key covers the sweep's name, its configuration, the scale and the fingerprint of the run function:
its code, the code of the functions it calls, the values of the globals and data it reads, and the code of the
gentools modules it reaches (gentools.fingerprint). Editing any of them recomputes; a restarted kernel finds its results. Two processes
running the same sweep compute each run once: a per-run file lock makes the second wait and read the first's.
With an executor (a Dask client, a process pool, submitit), runs go to the workers and their results come back to
the caller, which writes the cache (gentools.executors).
"""
from __future__ import annotations

import contextlib
import itertools
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from filelock import FileLock

from . import config, executors, fingerprint, store
from .device import device as default_device
from .device import random_state_kept, seed_everything
from .history import History


def _encode(value: Any) -> Any:
    """Make a run's result JSON-friendly; Histories are tagged so they come back as Histories."""
    if isinstance(value, History):
        return {"__history__": value.to_dict()}
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    if isinstance(value, torch.Tensor):
        return _encode(value.detach().cpu().numpy())
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"A sweep run returned a {type(value).__name__}, which cannot be cached; return numbers, "
                    "strings, lists, dicts, arrays or a History.")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__history__"}:
            return History.from_dict(value["__history__"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


class SweepIncomplete(RuntimeError):
    """Some runs of a sweep failed; the others are cached, and a rerun computes only the missing ones.
    `failed` lists the points that failed, in the grid's order."""

    def __init__(self, message: str, failed: Sequence[dict[str, Any]] = ()):
        super().__init__(message)
        self.failed = list(failed)


@dataclass
class _Runs:
    """What every run of a sweep shares: the function, its fixed arguments, and where it was called from."""

    fn: Callable[..., Mapping[str, Any]]
    fixed: dict[str, Any]
    caller: int  # the caller's process id: runs in another process use `threads` PyTorch threads
    threads: int
    seed_offset: int = 0  # the caller's GENTOOLS_SEED, which a worker elsewhere may not have in its environment


@dataclass(frozen=True)
class _Packing:
    keys: tuple[str, ...]  # the point keys the run function reads
    packs: Callable[..., list[list[int]]]


def packed(fn: Callable | None = None, /, *, keys: Sequence[str] = (),
           packs: Callable[..., list[list[int]]] | None = None):
    """Mark a run function that trains several points of a sweep together (a stack of networks, say):
    ``@gt.packed(keys=("width", "seed"))``. gt.sweep then calls it as ``fn(points, **fixed)``, with a list of points
    (dicts of those keys), and it returns one result per point, in order; a grid with any other key is refused,
    since the function would never see it. ``packs(points, **fixed)`` splits the points a sweep has to compute into
    lists of positions, the points that train together (default: all of them at once). Each point is still cached on
    its own, so adding one to the grid computes that one. A pack is seeded with 0: the function seeds its members."""
    if fn is not None or not keys:
        raise TypeError("gt.packed needs the point keys the function reads: @gt.packed(keys=('width', 'seed')).")

    def mark(run: Callable) -> Callable:
        run._gentools_packed = _Packing(tuple(keys), packs or (lambda points, **fixed: [list(range(len(points)))]))
        return run

    return mark


def _packing(fn: Callable) -> _Packing | None:
    return getattr(fn, "_gentools_packed", None)


def _result(result: Any) -> Any:
    """A run's result, checked and made JSON-friendly."""
    if isinstance(result, Mapping):
        return _encode(dict(result))
    if isinstance(result, (list, tuple)) and all(isinstance(row, Mapping) for row in result):
        return _encode([dict(row) for row in result])  # several rows: one per seed, variant, round...
    raise TypeError(f"A run returns a dict of results or a list of such dicts (one per row), not {type(result).__name__}.")


def _run_task(runs: _Runs, points: list[dict[str, Any]]) -> list[Any]:
    """One run, seeded with its point's seed, or one pack of a packed run function (seeded with 0: it seeds its
    members itself); in a worker process with a fixed number of PyTorch threads (several processes on few cores
    otherwise spin against each other). One result per point."""
    if os.getpid() != runs.caller:
        torch.set_num_threads(runs.threads)
        os.environ["GENTOOLS_SEED"] = str(runs.seed_offset)
    with random_state_kept():
        if _packing(runs.fn) is None:
            (point,) = points
            seed_everything(int(point.get("seed", 0)))
            return [_result(runs.fn(**runs.fixed, **point))]
        seed_everything(0)
        results = runs.fn(points, **runs.fixed)
    if len(results) != len(points):
        raise TypeError(f"A packed run function returns one result per point: {len(points)} points, {len(results)} results.")
    return [_result(result) for result in results]


_WARNED: set[tuple[str, str]] = set()


def _fingerprint(fn: Callable, fixed: dict[str, Any], name: str) -> str | None:
    """The fingerprint of the run function and its fixed arguments (data sets included), or None (said once per
    sweep and reason) if it cannot be taken."""
    try:
        return fingerprint.of(fn) + fingerprint.of(fixed, "the fixed arguments")
    except fingerprint.Unfingerprintable as reason:
        if (name, str(reason)) not in _WARNED:
            _WARNED.add((name, str(reason)))
            warnings.warn(f"Sweep {name!r} runs without its cache: {reason}, so a cached result could be stale. "
                          "Pass such values in the grid, or build them inside the run function.",
                          stacklevel=3)
        return None


def _local_workers(runs: _Runs, name: str):
    """The session's pool of GENTOOLS_WORKERS processes, if that is more than one, the device is the CPU (processes
    would only compete for one GPU) and the runs can be sent there; else None (run here)."""
    count = config.workers()
    if count < 2 or default_device().type != "cpu":
        return None
    import cloudpickle

    try:
        cloudpickle.dumps(runs)
    except Exception as error:  # noqa: BLE001 - whatever cannot travel runs here instead
        warnings.warn(f"Sweep {name!r} runs in this process, not on {count} workers: its run function or fixed "
                      f"arguments cannot be sent to another process ({type(error).__name__}: {error}).", stacklevel=3)
        return None
    return executors.shared(count)


@contextlib.contextmanager
def _threads(count: int):
    """With GENTOOLS_WORKERS > 1, a sweep that runs here (a single point, or one whose runs cannot travel) has the
    cores to itself: it uses that many PyTorch threads, and the usual number again afterwards."""
    before = torch.get_num_threads()
    if count > 1:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _read_cached(path: Path, run_config: dict[str, Any]) -> dict[str, Any] | None:
    """The cached result at `path`, or None if absent; a torn or foreign file is reported and ignored."""
    if not path.exists():
        return None
    try:
        saved = store.read_json(path)
        if saved["config"] != _encode(run_config):
            raise ValueError("its configuration differs from this run's")
        return saved["result"]
    except Exception as error:  # noqa: BLE001 - any unreadable file is recomputed, never served
        warnings.warn(f"Ignoring the unreadable cache file {path} ({type(error).__name__}: {error}); "
                      "recomputing that run.", stacklevel=3)
        return None


def _tasks(fn: Callable, fixed: dict[str, Any], points: list[dict[str, Any]], missing: list[int]) -> list[list[int]]:
    """The missing points as tasks: one each, or a packed run function's packs (lists of indices into `points`)."""
    packing = _packing(fn)
    if packing is None or not missing:
        return [[index] for index in missing]
    groups = [list(group) for group in packing.packs([points[index] for index in missing], **fixed)]
    if sorted(position for group in groups for position in group) != list(range(len(missing))):
        raise ValueError(f"The packs of {getattr(fn, '__name__', fn)} must split the points, each point in one pack; "
                         f"got {groups} for {len(missing)} points.")
    return [[missing[position] for position in group] for group in groups if group]


def sweep(fn: Callable[..., Mapping[str, Any]], grid: Mapping[str, Sequence[Any]], *, name: str,
          fixed: Mapping[str, Any] | None = None, cache: bool = True, progress: bool | None = None,
          executor=None, worker_threads: int = 1):
    """Run ``fn(**fixed, **point)`` for every point of the grid (the product of its lists) and return a table.

    `fn` returns a dict of numbers, lists, arrays or Histories, or a list of such dicts: several rows of the table
    (one per round, variant or seed measured inside the run), each with the point's columns. Each point is seeded
    with its own `seed` entry (0 if none; shifted by GENTOOLS_SEED, which is part of the cache key) before it runs;
    runs are saved as they finish. A run function marked with gt.packed trains the missing points in packs, one
    call per pack (seeded with 0), and each point is cached on its own. `executor` runs the points elsewhere: a dask.distributed Client (or its
    get_executor()), a concurrent.futures executor, or anything with submit(); without one, the points run on GENTOOLS_WORKERS local processes if that is more than 1 (on the CPU), else here;
    worker processes use `worker_threads` PyTorch threads. If runs fail there, the others are kept and
    SweepIncomplete says which failed; a rerun computes only those. The table (a pandas DataFrame) has one row a
    run, or a run's row: the grid's columns, then the results; table.attrs['computed'] and ['cached'] count the runs
    computed and read from the cache.
    """
    import pandas as pd

    if not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"Sweep name {name!r} must be letters, digits, '_', '-' or '.' (it names a folder).")
    fixed = dict(fixed or {})
    keys = list(grid)
    if (packing := _packing(fn)) is not None and set(keys) - set(packing.keys):
        raise ValueError(f"{getattr(fn, '__name__', fn)} trains points of {', '.join(packing.keys)} only, so the grid's "
                         f"{', '.join(sorted(set(keys) - set(packing.keys)))} would label runs it never saw; pass such "
                         "settings in fixed=, or sweep over them in separate sweeps.")
    points = [dict(zip(keys, values)) for values in itertools.product(*(list(grid[key]) for key in keys))]
    folder = config.cache_dir() / "sweeps" / name
    code = _fingerprint(fn, fixed, name) if cache else None
    cache = cache and code is not None
    common = {"name": name, "scale": config.scale(), "seed draw": config.seed_offset(), "function and fixed": code}
    paths = [folder / f"{store.digest({**common, 'point': _encode(point)})}.json" for point in points]

    results: list[Any] = [_read_cached(path, point) if cache else None for path, point in zip(paths, points)]
    first_of: dict[Path, int] = {}  # a point listed twice (a repeated width, say) is computed once
    missing = [i for i, result in enumerate(results) if result is None and first_of.setdefault(paths[i], i) == i]
    if cache and missing:
        folder.mkdir(parents=True, exist_ok=True)

    runs = _Runs(fn, fixed, os.getpid(), worker_threads, config.seed_offset())
    tasks = _tasks(fn, fixed, points, missing)
    local = _local_workers(runs, name) if executor is None and len(tasks) > 1 else None
    executor = executor or local

    def run_here(task: list[int]) -> list[Any]:
        if not cache:
            return _run_task(runs, [points[i] for i in task])
        with contextlib.ExitStack() as locks:  # another process may be computing these very runs
            for i in sorted(task, key=lambda i: paths[i].stem):
                locks.enter_context(FileLock(paths[i].parent / f".{paths[i].stem}.lock"))
            done = {i: _read_cached(paths[i], points[i]) for i in task}
            todo = [i for i in task if done[i] is None]
            for i, result in zip(todo, _run_task(runs, [points[i] for i in todo]) if todo else []):
                store.write_json(paths[i], {"config": _encode(points[i]), "result": result})
                done[i] = result
        return [done[i] for i in task]

    show = config.show_progress() if progress is None else progress
    failed: list[tuple[dict[str, Any], BaseException]] = []
    with tqdm(total=len(missing), desc=f"sweep {name}", disable=not show or not missing) as bar:
        if executor is None:
            with _threads(config.workers()):
                for task in tasks:
                    for index, result in zip(task, run_here(task)):
                        results[index] = result
                    bar.update(len(task))
        else:
            try:
                for position, task_results, error in executors.completed(executor, _run_task, runs,
                                                                          [[points[i] for i in task] for task in tasks]):
                    task = tasks[position]
                    if error is not None:
                        failed += [(points[index], error) for index in task]
                        continue
                    for index, result in zip(task, task_results):
                        results[index] = result
                        if cache:  # the caller writes: workers need no shared disk
                            store.write_json(paths[index], {"config": _encode(points[index]), "result": result})
                    bar.update(len(task))
            except BaseException:  # Ctrl-C, say: the session's workers must not go on with runs nobody collects
                if local is not None:
                    executors.discard_shared(local.workers)
                raise
    if failed:
        failed.sort(key=lambda item: points.index(item[0]))
        lost = [point for point, _ in failed]
        error = failed[0][1]
        shown = ", ".join(map(str, lost[:5])) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
        raise SweepIncomplete(f"{len(failed)} of {len(missing)} runs of sweep {name!r} failed: {shown}. The first "
                              f"error: {type(error).__name__}: {error}. The other runs are "
                              f"{'cached' if cache else 'done'}; run the sweep again to compute only the missing ones.",
                              lost) from error

    results = [results[first_of[path]] if result is None else result for path, result in zip(paths, results)]
    rows = [{**point, **row} for point, result in zip(points, results)
            for row in (_decode(result) if isinstance(result, list) else [_decode(result)])]
    table = pd.DataFrame(rows)
    table.attrs.update(name=name, computed=len(missing), cached=len(points) - len(missing))
    return table
