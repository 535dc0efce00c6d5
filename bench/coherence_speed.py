"""Gradient coherence of a batch: gt.gradients against a loop of one-example backward passes.

MLP 40-256-256-10 at initialisation, a batch of MNIST-1D training examples (256 by default), cross-entropy. Three
ways to the same alpha = ||mean g||^2 / mean ||g||^2: a loop of single-example backward passes (what one writes
first), torch.func's vmap over per-example gradients (gt.gradients.per_example), and gt.gradients.coherence, which
for linear layers takes every per-example norm from one backward pass. Prints the times (best of a few repeats),
the ratios, and the three values, which must agree.

    python bench/coherence_speed.py [--batch 256] [--repeats 5]
"""
from __future__ import annotations

import argparse
import time

import torch

import gentools as gt
from gentools.losses import per_example_loss


def looped(model, x, y) -> float:
    each = per_example_loss("cross_entropy", 10)
    total, sum_sq = None, 0.0
    for xi, yi in zip(x, y):
        model.zero_grad()
        each(model(xi[None]), yi[None]).sum().backward()
        g = torch.cat([p.grad.flatten() for p in model.parameters()])
        total = g.clone() if total is None else total + g
        sum_sq += float(g.pow(2).sum())
    return float(total.pow(2).sum()) / len(y) ** 2 / (sum_sq / len(y))


def vmapped(model, x, y) -> float:
    grads, _ = gt.gradients.per_example(model, x, y, n_classes=10)
    flat = torch.cat([g.flatten(1) for g in grads.values()], 1)
    return float(flat.mean(0).pow(2).sum() / flat.pow(2).sum(1).mean())


def best_time(fn, repeats: int) -> tuple[float, float]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = gt.data.load("mnist1d", device="cpu")
    x, y = data.train.x[:args.batch], data.train.y[:args.batch]
    gt.seed_everything(0)
    model = gt.models.MLP(40, [256, 256], 10).eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, MLP 40-256-256-10, batch {args.batch}")
    loop_time, loop_alpha = best_time(lambda: looped(model, x, y), args.repeats)
    vmap_time, vmap_alpha = best_time(lambda: vmapped(model, x, y), args.repeats)
    ours_time, ours_alpha = best_time(lambda: gt.gradients.coherence(model, gt.data.TensorData(x, y), n_classes=10).alpha,
                                      args.repeats)
    print(f"loop of backward passes : {1000 * loop_time:8.2f} ms   alpha = {loop_alpha:.6f}")
    print(f"vmap per-example        : {1000 * vmap_time:8.2f} ms   alpha = {vmap_alpha:.6f}   {loop_time / vmap_time:6.1f}x")
    print(f"gt.gradients.coherence  : {1000 * ours_time:8.2f} ms   alpha = {ours_alpha:.6f}   {loop_time / ours_time:6.1f}x")
    if not (abs(ours_alpha - loop_alpha) <= 1e-4 * loop_alpha and abs(vmap_alpha - loop_alpha) <= 1e-4 * loop_alpha):
        raise SystemExit("the three ways disagree")


if __name__ == "__main__":
    main()
