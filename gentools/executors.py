"""Running a sweep's points elsewhere: on a Dask cluster, a concurrent.futures pool, or anything with submit()
(submitit's Slurm executor, for one). Results come back to the caller as each run completes, so the caller, not a
worker, writes the cache: workers need no shared disk. A run that fails, or whose worker is lost, is reported with
its error; the others still come back.

With Dask, the run function and its fixed arguments (a notebook's closures and data included: Dask serialises
them with cloudpickle) are scattered to every worker once, not sent again with every run.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def completed(executor: Any, task: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any]
              ) -> Iterator[tuple[int, Any, BaseException | None]]:
    """Run task(shared, item) for every item on `executor`; yield (i, result, None), or (i, None, error), where i
    is the item's position, in the order the runs finish."""
    items = list(items)
    client = _dask_client(executor)
    if client is not None:
        from distributed import as_completed

        shared_there = client.scatter(shared, broadcast=True, hash=False)
        futures = {client.submit(task, shared_there, item, pure=False): i for i, item in enumerate(items)}
        finished = as_completed(futures)
    elif callable(getattr(executor, "submit", None)):
        futures = {executor.submit(task, shared, item): i for i, item in enumerate(items)}
        finished = _as_completed(list(futures))
    else:
        raise TypeError(f"executor must be a dask.distributed Client or have a submit() method like "
                        f"concurrent.futures executors; got a {type(executor).__name__}.")
    for future in finished:
        try:
            yield futures[future], future.result(), None
        except Exception as error:  # noqa: BLE001 - reported to the caller with its run
            yield futures[future], None, error


def processes(workers: int | None = None) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of `workers` processes on this machine (default: one per core), for gt.sweep(..., executor=...).
    Workers are started fresh (spawn), not forked: a fork of a process whose PyTorch threads are running can hang.
    Run functions must be importable (gentools' own, or a module's), and fixed arguments picklable."""
    return concurrent.futures.ProcessPoolExecutor(workers or os.cpu_count() or 1,
                                                  mp_context=multiprocessing.get_context("spawn"))


def _dask_client(executor: Any):
    """The Dask client behind `executor` (a Client, or the executor of Client.get_executor()), else None."""
    try:
        from distributed import Client
        from distributed.cfexecutor import ClientExecutor
    except ImportError:
        return None
    if isinstance(executor, Client):
        return executor
    if isinstance(executor, ClientExecutor):
        return executor._client
    return None


def _as_completed(futures: list[Any], poll_s: float = 0.2) -> Iterator[Any]:
    """concurrent.futures' as_completed, or for other futures (submitit's jobs) a poll of their done()."""
    if all(isinstance(future, concurrent.futures.Future) for future in futures):
        yield from concurrent.futures.as_completed(futures)
        return
    waiting = list(futures)
    while waiting:
        done = [future for future in waiting if future.done()]
        waiting = [future for future in waiting if future not in done]
        yield from done
        if waiting and not done:
            time.sleep(poll_s)
