"""gt.fit against a plain PyTorch loop with a DataLoader: MLP 40-256-256-10 on MNIST-1D, 20 epochs, SGD.

Both loops do the same work: train with shuffled batches of 100, then measure train and test accuracy once
an epoch (the numbers gt.fit's History records). Same seed, same initial weights. Prints both times (the best
of a few repeats), the ratio, and the final test accuracies.

    python bench/fit_speed.py [--repeats 3] [--epochs 20]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import gentools as gt


def plain_loop(model: nn.Module, data: gt.data.DataSet, epochs: int, seed: int) -> float:
    """What a tutorial writes: DataLoader for training and for evaluation, .item() per batch."""
    torch.manual_seed(seed)
    train = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=100, shuffle=True)
    evaluation = {name: DataLoader(TensorDataset(s.x, s.y), batch_size=1000) for name, s in
                  (("train", data.train), ("test", data.test))}
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    accuracy = {}
    for _ in range(epochs):
        model.train()
        running = 0.0
        for x, y in train:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            running += loss.item() * len(y)
        model.eval()
        with torch.no_grad():
            for name, loader in evaluation.items():
                correct = sum((model(x).argmax(1) == y).sum().item() for x, y in loader)
                accuracy[name] = correct / len(loader.dataset)
    return accuracy["test"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = gt.data.load("mnist1d", device="cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {data}")

    def fresh_model() -> nn.Module:
        gt.seed_everything(0)
        return gt.models.MLP(40, [256, 256], 10)

    fit_times, plain_times = [], []
    for _ in range(args.repeats):
        model = fresh_model()
        start = time.perf_counter()
        history = gt.fit(model, data, epochs=args.epochs, optimizer="sgd", lr=0.01, momentum=0.9, batch_size=100,
                         seed=0, progress=False)
        fit_times.append(time.perf_counter() - start)
        model = fresh_model()
        start = time.perf_counter()
        plain_acc = plain_loop(model, data, args.epochs, seed=0)
        plain_times.append(time.perf_counter() - start)
    fit_time, plain_time = min(fit_times), min(plain_times)
    print(f"plain loop with DataLoader: {plain_time:.3f} s, test accuracy {plain_acc:.3f}")
    print(f"gt.fit:                     {fit_time:.3f} s, test accuracy {history.final['test_acc']:.3f}")
    print(f"speed-up: {plain_time / fit_time:.2f}x (target at least 1.3x)")


if __name__ == "__main__":
    main()
