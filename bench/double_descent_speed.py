"""Chapter 6's reference double-descent sweep, a plain PyTorch loop against the gentools path, side by side.

The MNIST-1D setting (4000 training examples, seed 42, 15% label noise; MLP 40-h-h-10, SGD lr 0.01 momentum 0.9,
batches of 100) on a subset of its widths and epochs. The plain loop trains one width at a time with a DataLoader
and measures train and test accuracy after every epoch, as the reference notebooks do (bench/fit_speed.py's loop).
The gentools path is the chapter's: gt.sweep over the widths with gt.ensemble.fit_widths, a packed run function that
trains the widths in groups (gt.ensemble.width_groups), each group one padded stack, the groups on a pool of worker
processes (one per core, one PyTorch thread each), without the cache.
Also timed: the same groups in this process, without the pool. Prints the times, the ratios and both test errors.

    python bench/double_descent_speed.py [--widths 8 24 47 61 100 300] [--epochs 50]
"""
from __future__ import annotations

import argparse
import time

import torch

import gentools as gt
from fit_speed import plain_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 24, 47, 61, 100, 300])
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    data = gt.data.corrupt_labels(gt.data.load("mnist1d", n_train=4000, n_test=4000, seed=42, device="cpu"), 0.15, seed=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads in this process; widths {args.widths}, "
          f"{args.epochs} epochs, 15% label noise")

    start = time.perf_counter()
    plain = {}
    for width in args.widths:
        gt.seed_everything(0)
        plain[width] = 1 - plain_loop(gt.models.MLP(40, [width, width], 10), data, args.epochs, seed=0)
    plain_s = time.perf_counter() - start

    groups = gt.ensemble.width_groups(args.widths, depth=2)  # how fit_widths packs the widths (printed below)
    options = dict(grid=dict(width=args.widths),
                   fixed=dict(data={"noisy": data}, depth=2, epochs=args.epochs, optimizer="sgd", lr=0.01,
                              measure_every=None, progress=False),
                   name="bench-double-descent", cache=False, progress=False)
    start = time.perf_counter()
    here = gt.sweep(gt.ensemble.fit_widths, **options)
    here_s = time.perf_counter() - start
    start = time.perf_counter()
    with gt.executors.processes() as pool:  # the pool's start (importing PyTorch in each worker) is timed too
        pooled = gt.sweep(gt.ensemble.fit_widths, executor=pool, **options)
    pooled_s = time.perf_counter() - start

    ours = pooled.set_index("width")["test_error"]
    assert here.set_index("width")["test_error"].round(4).equals(ours.round(4)), "the pool changed the results"
    print(f"groups: {groups}")
    print(f"{'width':>6} {'plain loop':>11} {'gentools':>9}   (test error)")
    for width in args.widths:
        print(f"{width:>6} {plain[width]:>11.3f} {ours[width]:>9.3f}")
    gap = max(abs(plain[w] - ours[w]) for w in args.widths)
    print(f"largest difference {gap:.3f} (different batch orders and initial draws: seed noise, a few points at most)")
    print(f"plain loop, one width at a time: {plain_s:.1f} s")
    print(f"gentools, padded stacks in this process: {here_s:.1f} s  ({plain_s / here_s:.1f}x)")
    print(f"gentools, padded stacks on {pool.workers} worker processes: {pooled_s:.1f} s  ({plain_s / pooled_s:.1f}x)")


if __name__ == "__main__":
    main()
