"""Running a sweep's points elsewhere: on a Dask cluster, a concurrent.futures pool, or anything with submit()
(submitit's Slurm executor, for one). Results come back to the caller as each run completes, so the caller, not a
worker, writes the cache: workers need no shared disk. A run that fails, or whose worker is lost, is reported with
its error; the others still come back.

With Dask, the run function and its fixed arguments (a notebook's closures and data included: Dask serialises
them with cloudpickle) are scattered to every worker once, not sent again with every run.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import multiprocessing
import os
import signal
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


class LocalProcesses:
    """A pool of worker processes on this machine, for gt.sweep(..., executor=...): `workers` of them (default: one
    per core), started fresh (spawn), not forked: a fork of a process whose PyTorch threads are running can hang.
    Functions and arguments travel by cloudpickle, so a notebook's own run functions (and the data they read) work
    too, not only functions a worker can import. Use it in a `with` block, which shuts the workers down."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                            initializer=_start_worker)

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        import cloudpickle

        return self._pool.submit(_call_pickled, cloudpickle.dumps((fn, args)))

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)

    def terminate(self) -> None:
        """Stop now: drop the queued runs and end the workers, the running ones too (after Ctrl-C, say)."""
        processes = list((self._pool._processes or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():  # SIGTERM not honoured in time: SIGKILL
                process.kill()
                process.join(timeout=5)

    def __enter__(self) -> LocalProcesses:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()


def _start_worker() -> None:
    """A worker runs what it is sent, quietly: a sweep inside a run stays in its worker, progress bars (which only the
    caller could show) are off, and Ctrl-C or a notebook kernel's shutdown is left to the caller, which then stops
    the pool."""
    os.environ["GENTOOLS_WORKERS"] = "1"
    os.environ["GENTOOLS_PROGRESS"] = "0"
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call_pickled(payload: bytes) -> Any:
    import cloudpickle

    fn, args = cloudpickle.loads(payload)
    return fn(*args)


def processes(workers: int | None = None) -> LocalProcesses:
    """A LocalProcesses pool: `workers` processes on this machine (default: one per core)."""
    return LocalProcesses(workers)


_SHARED: dict[int, LocalProcesses] = {}


def shared(workers: int) -> LocalProcesses:
    """One pool of `workers` processes kept for the whole session, so that every sweep of a notebook reuses workers
    that have already imported PyTorch (gt.sweep uses it when GENTOOLS_WORKERS > 1)."""
    if workers not in _SHARED:
        _SHARED[workers] = LocalProcesses(workers)
        atexit.register(_SHARED[workers].shutdown)  # before the interpreter dismantles the modules the pool needs
    return _SHARED[workers]


def discard_shared(workers: int) -> None:
    """Terminate the session's pool of `workers` processes; the next sweep starts a fresh one."""
    pool = _SHARED.pop(workers, None)
    if pool is not None:
        pool.terminate()


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
