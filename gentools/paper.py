"""The paper-scale experiments: the published settings the chapters scale down, as functions of a model and a data
set. Each chapter calls them at GENTOOLS_SCALE=paper on the full data sets from the data folder (a GPU advised);
tests/test_paper_scale.py runs every one for a step or two on tiny fakes of those data sets in their real on-disk
format, so the paper scale is code that runs, not code that was never reached.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from . import attacks, models, prune
from .data import DataSet
from .device import generator, seed_everything
from .train import Record, evaluate, fit


def deep_double_descent(k: int, data: DataSet, *, epochs: int, seed: int = 0, lr: float = 1e-4,
                        batch_size: int = 128) -> dict:
    """Deep double descent (Nakkiran et al. 2020): ResNet-18 of width k trained with Adam to the end; its final
    training and test error."""
    seed_everything(seed)
    history = fit(models.ResNet18(k, in_channels=data.input_shape[0], out_features=data.n_classes), data,
                  epochs=epochs, optimizer="adam", lr=lr, batch_size=batch_size, seed=seed, measure_every=None)
    return {"train_error": 1 - history.final["train_acc"], "test_error": 1 - history.final["test_acc"]}


# Frankle & Carbin (2019), Figure 2: Adam, batches of 60, iterations per training run; pruning rates per round of
# the fully connected layers (fc), the output layer and the convolutions.
LOTTERY_SETTINGS = {
    "lenet-300-100": dict(lr=1.2e-3, iterations=50_000, fc=0.2, output=0.1, conv=None),
    "conv-2": dict(lr=2e-4, iterations=20_000, fc=0.2, output=0.1, conv=0.10),
    "conv-4": dict(lr=3e-4, iterations=25_000, fc=0.2, output=0.1, conv=0.10),
    "conv-6": dict(lr=3e-4, iterations=30_000, fc=0.2, output=0.1, conv=0.15),
}


def lottery(architecture: str, data: DataSet, *, seed: int, rounds: int, iterations: int | None = None) -> list[dict]:
    """Iterative magnitude pruning with rewinding to the initial weights (Frankle & Carbin 2019) in the paper's
    setting for `architecture` (LOTTERY_SETTINGS; `iterations` overrides its training length). Each round is judged at
    its lowest validation loss (data needs a valid split). One row per round: round, remaining, test_acc, best_epoch."""
    if architecture not in LOTTERY_SETTINGS:
        raise ValueError(f"Unknown architecture {architecture!r}; choose one of {', '.join(LOTTERY_SETTINGS)}")
    setting = LOTTERY_SETTINGS[architecture]
    epochs = max(1, round((iterations or setting["iterations"]) * 60 / len(data.train)))
    train = prune.best_epoch_trainer(data, epochs=epochs, lr=setting["lr"], batch_size=60, seed=seed)
    seed_everything(seed)
    if architecture == "lenet-300-100":
        net = models.MLP(int(torch.tensor(data.input_shape).prod()), [300, 100], data.n_classes)
    else:
        net = models.ConvNet(int(architecture[-1]), in_channels=data.input_shape[0], out_features=data.n_classes,
                             image_size=data.input_shape[-1])
    records = prune.iterative_magnitude_pruning(net, train, rounds=rounds, fraction=setting["fc"],
                                                output_fraction=setting["output"], conv_fraction=setting["conv"])
    return [{key: record[key] for key in ("round", "remaining", "test_acc", "best_epoch")} for record in records]


def noisy_label_fit(data: DataSet, clean: DataSet, *, seed: int, epochs: int, n_conv: int = 2, lr: float = 0.01,
                    batch_size: int = 100) -> dict:
    """Coherent gradients (Chatterjee & Zielinski 2022): Conv-n trained by SGD on `data`, whose training labels differ
    from `clean`'s on some examples; every epoch, how much of the unchanged and of the changed examples it fits.
    One row: the History, with `clean_fit` and `noisy_fit` every epoch."""
    changed = data.train.y != clean.train.y
    fitted = Record(clean_fit=lambda net: evaluate(net, data.train.subset(~changed), n_classes=data.n_classes)["acc"],
                    noisy_fit=lambda net: evaluate(net, data.train.subset(changed), n_classes=data.n_classes)["acc"])
    seed_everything(seed)
    net = models.ConvNet(n_conv, in_channels=data.input_shape[0], out_features=data.n_classes, image_size=data.input_shape[-1])
    history = fit(net, data, epochs=epochs, optimizer="sgd", lr=lr, batch_size=batch_size, seed=seed, callbacks=[fitted])
    return {"history": history}


def robustness(data: DataSet, *, seed: int, epochs: int, epsilons: Sequence[float], lr: float = 1e-3,
               attacks_used: Sequence[str] = ("fgsm", "pgd")) -> dict:
    """Adversarial examples (Goodfellow et al. 2015; Madry et al. 2018): the chapter's CNN trained by Adam on images
    in [0, 1], then its clean accuracy, the share of predictions one shift changes, and its accuracy under each
    attack and budget."""
    seed_everything(seed)
    net = models.CNN2d(in_channels=data.input_shape[0], out_features=data.n_classes, image_size=data.input_shape[-1])
    fit(net, data, epochs=epochs, optimizer="adam", lr=lr, seed=seed, measure_every=None)
    row = {"clean": evaluate(net, data.test, n_classes=data.n_classes)["acc"],
           "shift flip rate": attacks.shift_flip_rate(net, data.test.x)}
    for eps in epsilons:
        for attack in attacks_used:
            row[f"{attack} {eps}"] = attacks.robust_accuracy(net, data.test, eps, attack=attack, bounds=(0.0, 1.0))
    return row


def few_label_subset(data: DataSet, per_class: int, seed: int) -> DataSet:
    """The data set with `per_class` training examples of each class, drawn at random."""
    gen = generator(seed)
    labels = data.train.y.cpu()
    index = torch.cat([(labels == c).nonzero().flatten()[torch.randperm(int((labels == c).sum()), generator=gen)[:per_class]]
                       for c in range(data.n_classes)])
    return data.replace(train=data.train.subset(index))


def transfer(way: str, data: DataSet, *, per_class: int, seed: int, weights: Path | None, epochs: int = 30,
             lr: float = 1e-3) -> dict:
    """Transfer learning (Kornblith et al. 2019): torchvision's ResNet-18 trained on `per_class` labels a class,
    'from scratch', or from the ImageNet `weights` as a 'linear probe' (only the new head trains) or by
    'fine-tuning' (everything trains). Nothing is downloaded: `weights` is a file of torchvision's model zoo."""
    import torchvision

    if way not in ("from scratch", "linear probe", "fine-tuning"):
        raise ValueError(f"way must be 'from scratch', 'linear probe' or 'fine-tuning', got {way!r}")
    seed_everything(seed)
    net = torchvision.models.resnet18()
    if way != "from scratch":
        if weights is None or not Path(weights).exists():
            raise FileNotFoundError(f"Put torchvision's ImageNet weights for ResNet-18 at {weights} (the file "
                                    "resnet18-f37072fd.pth from torchvision's model zoo); nothing is downloaded.")
        net.load_state_dict(torch.load(weights, map_location="cpu"))
    net.fc = nn.Linear(512, data.n_classes)
    if way == "linear probe":
        for name, parameter in net.named_parameters():
            parameter.requires_grad_(name.startswith("fc."))
    history = fit(net, few_label_subset(data, per_class, seed), epochs=epochs, lr=lr, seed=seed, measure_every=None,
                  optimizer=lambda params: torch.optim.Adam([p for p in params if p.requires_grad], lr=lr))
    return {"test_acc": history.final["test_acc"]}
