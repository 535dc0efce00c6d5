"""The paper-scale experiments of chapters 7 and 9 that do not yet run through their chapters' own run functions:
the published settings, as functions of a data set, called at GENTOOLS_SCALE=paper on the full data sets from the
data folder. Chapters 5, 6 and 8 run their paper scale through the same run functions as tiny and book, with other
settings (gt.ensemble.fit_widths and gt.prune.lottery take an architecture of gt.models.build; chapter 8's
attack_run takes MNIST). tests/test_paper_scale.py runs these, the paper-scale paths of the topic modules and the
parts of chapter 8's attack_run for a step or two on tiny fakes of the data sets, in their real on-disk format.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import models
from .data import DataSet
from .device import generator, seed_everything
from .train import Record, evaluate, fit


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
