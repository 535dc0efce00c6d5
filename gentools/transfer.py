"""Transfer learning: a network pre-trained on a source task, given a new last layer for a target task, and trained
there in one of four ways, so that the same run compares them for an MLP pre-trained on some digits of MNIST-1D
and for torchvision's ResNet-18 with ImageNet weights (Kornblith et al. 2019)."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .data import DataSet
from .device import seed_everything
from .history import History
from .models import build
from .settings import Settings
from .train import fit

WAYS = ("from scratch", "linear probe", "fine-tuning", "random-feature probe")
HEAD_SEED = 1000  # the new last layer (and a fresh network) of seed s is drawn at seed HEAD_SEED + s


def pretrained(architecture: str, source: DataSet | str | Path, seed: int, settings: Settings | None = None,
               **changes) -> nn.Module:
    """The network of the registry `architecture`, trained on the `source` data set from seed `seed` with the
    settings; or, when `source` is a file, with the ImageNet weights read from it (nothing is downloaded)."""
    if isinstance(source, DataSet):
        seed_everything(seed)
        net = build(architecture, source.input_shape, source.n_classes)
        fit(net, source, Settings.of(settings, **changes).replace(seed=seed))
        return net
    if not Path(source).exists():
        raise FileNotFoundError(f"No pre-trained weights at {source}: put the file there (for ResNet-18 on ImageNet, "
                                "resnet18-f37072fd.pth from torchvision's model zoo); nothing is downloaded.")
    net = build(architecture, (3, 224, 224), 1000)  # ImageNet's classes
    net.load_state_dict(torch.load(source, map_location="cpu"))
    return net


def _head_name(net: nn.Module) -> str:
    """The name of the network's last linear layer: its classifier."""
    names = [name for name, module in net.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ValueError(f"{type(net).__name__} has no linear layer to replace by a new head")
    return names[-1]


def adapt(way: str, pretrained: nn.Module, architecture: str, target: DataSet, seed: int) -> nn.Module:
    """The network that `way` trains on the target task: a copy of the pre-trained one ('linear probe',
    'fine-tuning') or a fresh one of the same architecture ('from scratch', 'random-feature probe'), with a new last
    layer for the target's classes, everything but that layer frozen for a probe. Drawn at seed HEAD_SEED + seed."""
    if way not in WAYS:
        raise ValueError(f"way must be one of {', '.join(map(repr, WAYS))}, got {way!r}")
    seed_everything(HEAD_SEED + seed)
    fresh = way in ("from scratch", "random-feature probe")
    net = build(architecture, target.input_shape, target.n_classes) if fresh else copy.deepcopy(pretrained)
    head = _head_name(net)
    parent, _, attribute = head.rpartition(".")
    old = net.get_submodule(head)
    setattr(net.get_submodule(parent) if parent else net, attribute, nn.Linear(old.in_features, target.n_classes))
    if way.endswith("probe"):
        for name, parameter in net.named_parameters():
            parameter.requires_grad_(name.startswith(head + "."))
    return net


def train(way: str, pretrained: nn.Module, architecture: str, target: DataSet, seed: int,
          settings: Settings | None = None, **changes) -> History:
    """Train the network of `adapt` on the target task with Adam over the weights `way` trains (at the settings'
    learning rate), in seed `seed`'s batch order."""
    settings = Settings.of(settings, **changes)
    net = adapt(way, pretrained, architecture, target, seed)
    lr = settings.lr
    return fit(net, target, settings.replace(seed=seed, optimizer=lambda params: torch.optim.Adam(
        [p for p in params if p.requires_grad], lr=lr)))
