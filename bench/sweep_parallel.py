"""A width sweep of double descent, serially and on a 2-worker Dask LocalCluster: the same gt.sweep call, handed a
client. One-hidden-layer networks on 500 noisy digits (chapter 6's setting, fewer widths and epochs), three seeds a
width trained at once. Prints both times, the speed-up, and whether the two tables are equal (they should be, bit
for bit: each worker process uses one PyTorch thread, as the serial run here does).

    python bench/sweep_parallel.py [--workers 2] [--epochs 600]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

import gentools as gt


def width_run(width, seeds, epochs):
    full = gt.data.load("digits", test_fraction=0.4, seed=0, device="cpu")
    data = gt.data.corrupt_labels(full.replace(train=full.train.subset(slice(0, 500))), 0.2, seed=0)
    nets = gt.models.StackedMLP(64, [width], 10, seeds=range(seeds))
    histories = gt.fit(nets, data, epochs=epochs, lr=3e-3, loss="mse", measure_every=None, progress=False)
    return {f"{split}_error": float(1 - np.mean([h.final[f"{split}_acc"] for h in histories])) for split in ("train", "test")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=600)
    args = parser.parse_args()
    import dask
    from distributed import Client, LocalCluster

    # Dask's nanny makes worker processes return freed memory to the system at once (MALLOC_TRIM_THRESHOLD_=65536),
    # which slows PyTorch's many small allocations by up to 2x here; leave glibc's default.
    dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})

    grid = dict(width=[8, 16, 32, 64, 96, 128, 192, 256, 384, 512])
    fixed = dict(seeds=3, epochs=args.epochs)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as cache:
        import os

        os.environ["GENTOOLS_CACHE"] = cache  # empty: both runs compute everything
        width_run(8, 3, 5)  # the same warm-up here
        start = time.perf_counter()
        serial = gt.sweep(width_run, grid=grid, fixed=fixed, name="bench-serial", progress=False)
        serial_s = time.perf_counter() - start
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.run(width_run, 8, 3, 5)  # workers import PyTorch and load the data before the clock starts
            start = time.perf_counter()
            parallel = gt.sweep(width_run, grid=grid, fixed=fixed, name="bench-dask", executor=client, progress=False)
            parallel_s = time.perf_counter() - start
    print(f"torch {torch.__version__}; {len(serial)} widths x 3 seeds, {args.epochs} epochs")
    print(f"serial, 1 thread:               {serial_s:.1f} s")
    print(f"Dask LocalCluster, {args.workers} workers:    {parallel_s:.1f} s")
    print(f"speed-up: {serial_s / parallel_s:.2f}x")
    same = np.array_equal(serial[["train_error", "test_error"]].to_numpy(), parallel[["train_error", "test_error"]].to_numpy())
    print(f"tables equal bit for bit: {same}")


if __name__ == "__main__":
    main()
