"""The models the chapters train: MLPs of any shape, K same-shape MLPs stacked into one module (trained at once by
gt.fit), the MNIST-1D reference CNN, a small 2-D CNN, the width-k ResNet-18 of deep double descent, and a registry
that builds them by name (`build`), so that the paper scale changes a name, not the code; and `evaluating`, the
evaluation mode every measurement of a model runs in."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from .device import run_seed

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in evaluation mode (no dropout, batch-norm running statistics) for the duration of a `with`
    block, its own mode restored afterwards, error or not: measuring a model must not change how it trains."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


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


class Maxout(nn.Module):
    """A maxout layer (Goodfellow et al. 2013): `pieces` linear maps of the input, and each of the `out_features`
    units outputs the largest of its pieces. It is its own activation, a learned convex piecewise-linear function
    whose gradient with respect to its parameters never vanishes: every input sends gradient to the weights and bias
    of its winning piece, where a ReLU below zero passes none."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 2):
        if pieces < 2:
            raise ValueError(f"maxout needs at least 2 pieces per unit, got {pieces}")
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).unflatten(-1, (self.out_features, self.pieces)).amax(-1)

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, pieces={self.pieces}"


class MLP(nn.Sequential):
    """Fully connected network: inputs flattened, then `widths` hidden layers, then `out_features` outputs.

    MLP(40, [256, 256], 10) is 40-256-256-10; MLP(40, [], 10) is logistic regression. Hidden layers may
    have batch normalisation (before the activation), dropout (after it), or DropConnect on their weights.
    `dropout` is one probability for every hidden layer or one per hidden layer: `dropout=[0, 0.5]` drops only
    after the last, where no batch normalisation follows (Li et al. 2019's remedy for the variance shift).
    `maxout=k` makes every hidden layer a `Maxout` layer of k pieces, in place of linear map and activation.
    """

    def __init__(self, in_features: int, widths: Sequence[int], out_features: int, activation: str = "relu",
                 dropout: float | Sequence[float] = 0.0, batch_norm: bool = False, dropconnect: float = 0.0,
                 maxout: int = 0):
        drops = [float(dropout)] * len(widths) if isinstance(dropout, (int, float)) else [float(p) for p in dropout]
        if len(drops) != len(widths) or not all(0 <= p < 1 for p in drops):
            raise ValueError(f"dropout must be one probability in [0, 1) or one per hidden layer ({len(widths)}), "
                             f"got {dropout!r}")
        if maxout and (dropconnect or batch_norm or activation != "relu"):
            raise ValueError("maxout is its own activation and is not combined here with DropConnect, batch "
                             "normalisation or another activation")
        layers: list[nn.Module] = [nn.Flatten()]
        sizes = [in_features, *widths]
        for fan_in, fan_out, drop in zip(sizes[:-1], sizes[1:], drops):
            if maxout:
                layers.append(Maxout(fan_in, fan_out, maxout))
            else:
                layers.append(DropConnectLinear(fan_in, fan_out, dropconnect) if dropconnect else nn.Linear(fan_in, fan_out))
                if batch_norm:
                    layers.append(nn.BatchNorm1d(fan_out))
                layers.append(activation_layer(activation)())
            if drop:
                layers.append(nn.Dropout(drop))
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
    becomes a convolution, its ReLU, and a BlurPool1d (Zhang 2019); the shapes stay the same. The read-out is
    `head="flatten"` (a weight per position: the reference, which breaks shift invariance by design) or `head="pool"`
    (global average pooling over positions, then a linear layer: a read-out that treats every position alike).
    `dropout` > 0 drops the read-out's input features with that probability in training."""

    def __init__(self, length: int = 40, out_features: int = 10, channels: int = 25, antialias: bool = False,
                 head: str = "flatten", dropout: float = 0.0):
        super().__init__()
        if head not in ("flatten", "pool"):
            raise ValueError(f"head must be 'flatten' or 'pool', got {head!r}")

        def block(fan_in: int, kernel: int) -> list[nn.Module]:
            if antialias:
                return [nn.Conv1d(fan_in, channels, kernel, padding=1), nn.ReLU(), BlurPool1d(channels)]
            return [nn.Conv1d(fan_in, channels, kernel, stride=2, padding=1), nn.ReLU()]

        read_out = [nn.Flatten()] if head == "flatten" else [nn.AdaptiveAvgPool1d(1), nn.Flatten()]
        read_out += [nn.Dropout(dropout)] if dropout else []
        self.features = nn.Sequential(*block(1, 5), *block(channels, 3), *block(channels, 3), *read_out)
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


class StackedMLP(nn.Module):
    """K independent MLPs in_features -> widths -> out_features, trained at once: weights stacked along a leading
    dimension and applied with batched matrix products (torch.baddbmm, which on CPUs beats torch.func.vmap).
    Input (K, B, ...), output (K, B, out). Member i starts exactly like MLP(...) built after
    torch.manual_seed(seeds[i]); gt.fit(stack, data) trains member i as gt.fit would train that MLP with
    seed=seeds[i], to floating-point tolerance (seeds of runs, noise levels or label sets: one training loop).

    `member_widths` gives each member its own hidden widths, none wider than `widths`: the member is the
    narrower MLP, zero-padded. A padded unit has no weights in or out, so its activation and every gradient that
    reaches its weights are zero, and it stays zero under SGD, momentum, Adam or weight decay: the member trains
    exactly as the narrow network alone would (the zero activation must map to zero: relu, tanh, gelu)."""

    def __init__(self, in_features: int, widths: Sequence[int], out_features: int, seeds: Sequence[int],
                 activation: str = "relu", member_widths: Sequence[Sequence[int]] | None = None):
        super().__init__()
        if not seeds:
            raise ValueError("seeds must name at least one member")
        self.seeds = list(seeds)
        self.shape = (in_features, tuple(widths), out_features)
        self.member_widths = [tuple(w) for w in member_widths] if member_widths is not None else [tuple(widths)] * len(self.seeds)
        if len(self.member_widths) != len(self.seeds) or any(
                len(own) != len(widths) or any(a > b for a, b in zip(own, widths)) for own in self.member_widths):
            raise ValueError(f"member_widths must give each of the {len(self.seeds)} members {len(widths)} widths, "
                             f"each at most {tuple(widths)}; got {member_widths}")
        self.activation_name = activation
        self.masks: list[Tensor] | None = None  # set_masks
        self.activation = activation_layer(activation)()
        if self.activation(torch.zeros(1)).item() != 0:
            raise ValueError(f"activation {activation!r} does not map 0 to 0, so padded units would not stay silent")
        sizes = [in_features, *widths, out_features]
        self.weights = nn.ParameterList(nn.Parameter(torch.zeros(len(self.seeds), a, b)) for a, b in zip(sizes, sizes[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(len(self.seeds), 1, b)) for b in sizes[1:])
        with torch.no_grad():
            for k, (seed, own) in enumerate(zip(self.seeds, self.member_widths)):
                torch.manual_seed(run_seed(seed))
                linears = [layer for layer in MLP(in_features, own, out_features, activation) if isinstance(layer, nn.Linear)]
                for weight, bias, layer in zip(self.weights, self.biases, linears):
                    fan_out, fan_in = layer.weight.shape
                    weight[k, :fan_in, :fan_out] = layer.weight.T
                    bias[k, 0, :fan_out] = layer.bias

    def __len__(self) -> int:
        return len(self.seeds)

    def set_masks(self, masks: Sequence[Tensor] | None) -> StackedMLP:
        """Use only the weights where masks[layer] (shape (K, fan_in, fan_out), 0 or 1) is 1, in every forward pass:
        a pruned weight is zero and gets no gradient (gt.prune.lottery). None removes the masks."""
        if masks is not None and [tuple(m.shape) for m in masks] != [tuple(w.shape) for w in self.weights]:
            raise ValueError(f"masks must have the weights' shapes {[tuple(w.shape) for w in self.weights]}")
        self.masks = None if masks is None else [m.to(self.weights[0]) for m in masks]
        return self

    def effective_weights(self) -> list[Tensor]:
        """The weights the forward pass uses: masked, if masks are set."""
        if self.masks is None:
            return list(self.weights)
        return [weight * mask for weight, mask in zip(self.weights, self.masks)]

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(2)
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.effective_weights(), self.biases)):
            x = torch.baddbmm(bias, x, weight)
            if i < last:
                x = self.activation(x)
        return x

    def member(self, i: int) -> MLP:
        """Member i as an ordinary gt.models.MLP of its own widths and activation (a copy; masked weights are zero)."""
        in_features, _, out_features = self.shape
        model = MLP(in_features, self.member_widths[i], out_features, self.activation_name).to(self.weights[0].device)
        linears = [layer for layer in model if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for layer, weight, bias in zip(linears, self.effective_weights(), self.biases):
                fan_out, fan_in = layer.weight.shape
                layer.weight.copy_(weight[i, :fan_in, :fan_out].T)
                layer.bias.copy_(bias[i, 0, :fan_out])
        return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _cnn(shape: tuple[int, ...], classes: int) -> nn.Module:
    return CNN1d(shape[0], classes) if len(shape) == 1 else CNN2d(shape[0], classes, image_size=shape[-1])


def _torchvision_resnet18(shape: tuple[int, ...], classes: int) -> nn.Module:
    import torchvision

    return torchvision.models.resnet18(num_classes=classes)


ARCHITECTURES = {  # name: (build(input_shape, n_classes, [width]), whether it takes a width)
    "cnn": (_cnn, False),
    "conv-2": (lambda shape, classes: ConvNet(2, shape[0], classes, image_size=shape[-1]), False),
    "conv-4": (lambda shape, classes: ConvNet(4, shape[0], classes, image_size=shape[-1]), False),
    "conv-6": (lambda shape, classes: ConvNet(6, shape[0], classes, image_size=shape[-1]), False),
    "resnet18": (lambda shape, classes, k: ResNet18(k, shape[0], classes), True),
    "torchvision-resnet18": (_torchvision_resnet18, False),
}


def _mlp_widths(architecture: str) -> list[int] | None:
    """The hidden widths of an MLP named 'mlp-256-256' (two hidden layers of 256), or None for another name."""
    parts = architecture.split("-")
    if parts[0] != "mlp" or len(parts) < 2 or not all(part.isdigit() and int(part) > 0 for part in parts[1:]):
        return None
    return [int(part) for part in parts[1:]]


def sized(architecture: str) -> bool:
    """Whether a network of the registry is sized by a width (`build`'s `width`)."""
    return ARCHITECTURES.get(architecture, (None, False))[1]


def build(architecture: str, input_shape: Sequence[int], n_classes: int, width: int | None = None) -> nn.Module:
    """A network of the registry by name, for inputs of `input_shape` and `n_classes` outputs, so that a run function
    takes its model as a setting and the paper scale changes a name, not the code: 'mlp-256-256' (an MLP with those
    hidden widths), 'cnn' (the MNIST-1D reference CNN for signals, CNN2d for images), 'conv-2', 'conv-4', 'conv-6'
    (Frankle & Carbin's, for images), 'resnet18' (its `width` k; 64 is the standard network) and
    'torchvision-resnet18' (torchvision's ImageNet network, for pre-trained weights)."""
    widths = _mlp_widths(architecture)
    if widths is not None:
        if width is not None:
            raise ValueError(f"{architecture} takes no width (its name gives the hidden widths), got width={width}")
        return MLP(math.prod(input_shape), widths, n_classes)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {architecture!r}; choose 'mlp-' and the hidden widths "
                         f"(as in 'mlp-256-256') or one of {', '.join(ARCHITECTURES)}")
    make, takes_width = ARCHITECTURES[architecture]
    if takes_width != (width is not None):
        raise ValueError(f"{architecture} {'needs' if takes_width else 'takes no'} width, got width={width}")
    return make(tuple(input_shape), n_classes, *([width] if takes_width else []))
