"""Many models at once against one after another: 32 MLPs 40-32-32-10 on MNIST-1D, 20 epochs, Adam, batches of 100.

gt.fit of a gt.models.StackedMLP trains all 32 with stacked weights and batched matrix products; the baseline trains the
same 32 models (same initial weights, same batch orders) one after another with the same inner loop. Both are
warmed up first; the script prints both times (best of a few repeats), the ratio, and how closely the two
sets of trained models agree.

    python bench/ensemble_speed.py [--models 32] [--width 32] [--epochs 20] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import torch

import gentools as gt
from gentools.models import StackedMLP


def one_after_another(data, seeds, widths, epochs) -> list[torch.nn.Module]:
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = gt.models.MLP(40, widths, 10)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        order = gt.device.generator(seed)
        for _ in range(epochs):
            for x, y in data.train.batches(100, order):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        models.append(model)
    return models


def together(data, seeds, widths, epochs) -> StackedMLP:
    model = StackedMLP(40, widths, 10, seeds=seeds)
    gt.fit(model, data, epochs=epochs, lr=1e-2, batch_size=100, measure=["test"], measure_every=None,
           progress=False)  # measured once, at the end, like the baseline
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = gt.data.load("mnist1d", device="cpu")
    seeds, widths = list(range(args.models)), [args.width, args.width]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.models} MLPs 40-{args.width}-{args.width}-10, "
          f"{args.epochs} epochs")
    together(data, seeds[:2], widths, 1)  # warm-up: first calls allocate and initialise kernels
    one_after_another(data, seeds[:2], widths, 1)

    stacked_times, sequential_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        stacked = together(data, seeds, widths, args.epochs)
        stacked_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        sequential = one_after_another(data, seeds, widths, args.epochs)
        sequential_times.append(time.perf_counter() - start)

    stacked_acc = torch.tensor([member["acc"] for member in gt.evaluate(stacked, data.test, n_classes=10)])
    sequential_acc = torch.tensor([gt.evaluate(m, data.test, n_classes=10)["acc"] for m in sequential])
    print(f"one after another: {min(sequential_times):.2f} s")
    print(f"all at once:       {min(stacked_times):.2f} s")
    print(f"speed-up: {min(sequential_times) / min(stacked_times):.1f}x (target at least 5x)")
    print(f"mean test accuracy {stacked_acc.mean():.3f} at once, {sequential_acc.mean():.3f} one by one; "
          f"largest difference for one model {float((stacked_acc - sequential_acc).abs().max()):.4f}")


if __name__ == "__main__":
    main()
