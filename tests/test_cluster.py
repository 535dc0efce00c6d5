"""gt.sweep on other processes: a Dask LocalCluster of two worker processes, and a ProcessPoolExecutor. The caller
writes the cache (the workers here get a cache folder of their own, which stays empty); a run whose worker dies is
reported and the others kept; a rerun computes only what is missing; results equal the serial sweep's bit for bit."""
import concurrent.futures
import multiprocessing
import os

import pandas as pd
import pytest
import torch

import gentools as gt

distributed = pytest.importorskip("distributed", reason="Dask is gentools' optional extra: pip install gentools[cluster]")


def train(seed, width, data):
    model = gt.models.MLP(40, [width], 10)  # gt.sweep has seeded this run with its seed
    history = gt.fit(model, data, epochs=2, seed=seed)
    return {"test_acc": history.final["test_acc"], "train_loss": history.final["train_loss"], "threads": torch.get_num_threads()}


def dies_at_seed_2(seed, marker):
    if seed == 2 and os.path.exists(marker):
        os._exit(1)  # the worker process dies in the middle of this run
    return {"square": seed * seed}


def square(x, seed):
    return {"value": x * x, "threads": torch.get_num_threads(), "pid": os.getpid()}


@pytest.fixture
def sweep_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path / "caller"))
    return tmp_path / "caller" / "sweeps"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    import dask

    worker_cache = tmp_path_factory.mktemp("worker-cache")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # a run whose worker dies fails at once
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      env={"GENTOOLS_CACHE": str(worker_cache)}) as local, distributed.Client(local) as client:
            yield client, worker_cache


def test_a_dask_sweep_equals_the_serial_one_and_the_caller_writes_the_cache(sweep_cache, cluster, small_mnist1d):
    client, worker_cache = cluster
    grid = dict(seed=[0, 1, 2], width=[8, 16])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on the workers: same threads, same numbers
    try:
        serial = gt.sweep(train, grid=grid, fixed=dict(data=small_mnist1d), name="serial", cache=False)
    finally:
        torch.set_num_threads(threads)
    remote = gt.sweep(train, grid=grid, fixed=dict(data=small_mnist1d), name="remote", executor=client)
    pd.testing.assert_frame_equal(serial, remote)  # bit for bit
    assert remote["threads"].tolist() == [1] * 6  # one PyTorch thread a worker process
    assert len(list((sweep_cache / "remote").glob("*.json"))) == 6 and not (worker_cache / "sweeps").exists()
    assert gt.sweep(train, grid=grid, fixed=dict(data=small_mnist1d), name="remote", executor=client).attrs["cached"] == 6


def test_a_notebook_closure_and_its_data_reach_the_workers(sweep_cache, cluster, small_mnist1d):
    client, _ = cluster
    offset = float(small_mnist1d.train.x.sum())

    def run(seed):  # as defined in a notebook: a closure over local data
        return {"total": offset + seed}

    table = gt.sweep(run, grid=dict(seed=[0, 1]), name="closure", executor=client.get_executor())
    assert table["total"].tolist() == [offset, offset + 1]


def test_a_dead_worker_loses_only_its_run_and_a_rerun_finishes_the_sweep(sweep_cache, cluster, tmp_path):
    client, _ = cluster
    marker = tmp_path / "die"
    marker.touch()
    grid, fixed = dict(seed=[0, 1, 2, 3]), dict(marker=str(marker))
    with pytest.raises(gt.SweepIncomplete, match=r"of 4 runs of sweep 'mortal' failed: .*'seed': 2") as failure:
        gt.sweep(dies_at_seed_2, grid=grid, fixed=fixed, name="mortal", executor=client)
    # the dead worker's run fails, with whatever runs Dask had already queued on that worker
    lost = len(failure.value.failed)
    assert {"seed": 2} in failure.value.failed and 1 <= lost < 4 and len(list((sweep_cache / "mortal").glob("*.json"))) == 4 - lost  # the others are kept
    marker.unlink()
    again = gt.sweep(dies_at_seed_2, grid=grid, fixed=fixed, name="mortal", executor=client)
    assert again.attrs["computed"] == lost and again["square"].tolist() == [0, 1, 4, 9]


def test_a_process_pool_runs_a_module_level_function(sweep_cache):
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        table = gt.sweep(square, grid=dict(x=[1, 2, 3], seed=[0]), name="pool", executor=pool, worker_threads=2)
    assert table["value"].tolist() == [1, 4, 9] and set(table["threads"]) == {2} and os.getpid() not in set(table["pid"])
    assert len(list((sweep_cache / "pool").glob("*.json"))) == 3


def test_an_executor_without_submit_is_refused(sweep_cache):
    with pytest.raises(TypeError, match="submit"):
        gt.sweep(square, grid=dict(x=[1], seed=[0]), name="bad", executor=object())
