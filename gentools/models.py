"""The models the chapters train: MLPs of any shape, the MNIST-1D reference CNN, a small 2-D CNN."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}


def _activation(name: str) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


class MLP(nn.Sequential):
    """Fully connected network: inputs flattened, then `widths` hidden layers, then `out_features` outputs.

    MLP(40, [256, 256], 10) is 40-256-256-10; MLP(40, [], 10) is logistic regression.
    """

    def __init__(self, in_features: int, widths: Sequence[int], out_features: int, activation: str = "relu", dropout: float = 0.0):
        layers: list[nn.Module] = [nn.Flatten()]
        sizes = [in_features, *widths]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), _activation(activation)()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], out_features))
        super().__init__(*layers)


class CNN1d(nn.Module):
    """The MNIST-1D reference CNN (three stride-2 convolutions of `channels` channels and a linear read-out),
    which reaches about 94% test accuracy on the reference data set."""

    def __init__(self, length: int = 40, out_features: int = 10, channels: int = 25):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_features = self.features(torch.zeros(1, 1, length)).shape[1]
        self.head = nn.Linear(n_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:  # (N, length) signals get one channel
            x = x[:, None]
        return self.head(self.features(x))


class CNN2d(nn.Module):
    """A small image CNN: two 3x3 convolution blocks (with 2x2 max pooling) and a linear read-out.
    Fits 8x8 digits, 28x28 MNIST and 32x32 CIFAR-10 alike."""

    def __init__(self, in_channels: int = 1, out_features: int = 10, channels: Sequence[int] = (32, 64), image_size: int = 8):
        super().__init__()
        layers: list[nn.Module] = []
        fan_in = in_channels
        for fan_out in channels:
            layers += [nn.Conv2d(fan_in, fan_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            fan_in = fan_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_features = self.features(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
        self.head = nn.Linear(n_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
