"""The models the chapters train: MLPs of any shape, the MNIST-1D reference CNN, a small 2-D CNN, and the
width-k ResNet-18 of deep double descent."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}


def activation_layer(name: str) -> type[nn.Module]:
    """The activation module class for a name: relu, tanh, gelu or identity."""
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


class DropConnectLinear(nn.Linear):
    """A linear layer that, in training, zeroes each weight independently with probability p and scales the
    survivors by 1/(1-p) (Wan et al. 2013, inverted like PyTorch's dropout), so that the expected weight in
    training equals the weight used at test time. In eval mode it is an ordinary linear layer."""

    def __init__(self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True):
        if not 0 <= p < 1:
            raise ValueError(f"DropConnect probability must lie in [0, 1), got {p}")
        super().__init__(in_features, out_features, bias)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return super().forward(x)
        keep = torch.rand_like(self.weight) >= self.p
        return nn.functional.linear(x, self.weight * keep / (1 - self.p), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


class MLP(nn.Sequential):
    """Fully connected network: inputs flattened, then `widths` hidden layers, then `out_features` outputs.

    MLP(40, [256, 256], 10) is 40-256-256-10; MLP(40, [], 10) is logistic regression. Hidden layers may
    have batch normalisation (before the activation), dropout (after it), or DropConnect on their weights.
    """

    def __init__(self, in_features: int, widths: Sequence[int], out_features: int, activation: str = "relu",
                 dropout: float = 0.0, batch_norm: bool = False, dropconnect: float = 0.0):
        layers: list[nn.Module] = [nn.Flatten()]
        sizes = [in_features, *widths]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers.append(DropConnectLinear(fan_in, fan_out, dropconnect) if dropconnect else nn.Linear(fan_in, fan_out))
            if batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(activation_layer(activation)())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], out_features))
        super().__init__(*layers)


class BlurPool1d(nn.Module):
    """Blur with the binomial filter [1, 2, 1] / 4, then keep every second sample: subsampling without aliasing
    (Zhang 2019)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("kernel", torch.tensor([1.0, 2.0, 1.0]).div(4).repeat(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv1d(x, self.kernel, stride=2, padding=1, groups=x.shape[1])


class CNN1d(nn.Module):
    """The MNIST-1D reference CNN (three stride-2 convolutions of `channels` channels and a linear read-out),
    which reaches about 94% test accuracy on the reference data set. With `antialias`, each strided convolution
    becomes a convolution, its ReLU, and a BlurPool1d (Zhang 2019); the shapes stay the same."""

    def __init__(self, length: int = 40, out_features: int = 10, channels: int = 25, antialias: bool = False):
        super().__init__()

        def block(fan_in: int, kernel: int) -> list[nn.Module]:
            if antialias:
                return [nn.Conv1d(fan_in, channels, kernel, padding=1), nn.ReLU(), BlurPool1d(channels)]
            return [nn.Conv1d(fan_in, channels, kernel, stride=2, padding=1), nn.ReLU()]

        self.features = nn.Sequential(*block(1, 5), *block(channels, 3), *block(channels, 3), nn.Flatten())
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


class ConvNet(nn.Sequential):
    """Frankle & Carbin's Conv-2, Conv-4 and Conv-6 for 32x32 images: pairs of 3x3 convolutions of 64, 128, 256
    channels, each pair followed by 2x2 max pooling, then fully connected layers of 256, 256 and 10."""

    def __init__(self, n_conv: int = 2, in_channels: int = 3, out_features: int = 10, image_size: int = 32):
        if n_conv not in (2, 4, 6):
            raise ValueError(f"n_conv must be 2, 4 or 6 (Conv-2, Conv-4, Conv-6), got {n_conv}")
        layers: list[nn.Module] = []
        fan_in = in_channels
        for channels in [64, 128, 256][: n_conv // 2]:
            layers += [nn.Conv2d(fan_in, channels, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            fan_in = channels
        size = image_size // 2 ** (n_conv // 2)
        layers += [nn.Flatten(), nn.Linear(fan_in * size * size, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                   nn.Linear(256, out_features)]
        super().__init__(*layers)


class _PreActBlock(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(fan_in), nn.BatchNorm2d(fan_out)
        self.conv1 = nn.Conv2d(fan_in, fan_out, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(fan_out, fan_out, 3, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(fan_in, fan_out, 1, stride=stride, bias=False)
                         if stride != 1 or fan_in != fan_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if not isinstance(self.shortcut, nn.Identity) else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + shortcut


class ResNet18(nn.Module):
    """Pre-activation ResNet-18 whose four stages have k, 2k, 4k, 8k channels: the model family of Nakkiran
    et al.'s deep double descent (k = 64 is the standard ResNet-18). For 32x32 images such as CIFAR-10."""

    def __init__(self, k: int = 64, in_channels: int = 3, out_features: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, k, 3, padding=1, bias=False)
        blocks, fan_in = [], k
        for stage, fan_out in enumerate([k, 2 * k, 4 * k, 8 * k]):
            for block in range(2):
                blocks.append(_PreActBlock(fan_in, fan_out, stride=2 if stage > 0 and block == 0 else 1))
                fan_in = fan_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.BatchNorm2d(fan_in), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(fan_in, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
