"""The network seen as a kernel machine: the empirical neural tangent kernel, the linearised model, kernel regression.

Near its initial parameters theta0 a network is approximately linear in its parameters,
f(x; theta) ~ f(x; theta0) + J(x) (theta - theta0), with J the Jacobian of the outputs in the parameters. Training the
linearised model by gradient descent is kernel regression with the neural tangent kernel K(x, x') = J(x) J(x')^T
(Jacot, Gabriel & Hongler 2018; Lee et al. 2019). How far a real network strays from it is how much it learns features.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp, vmap

from . import gradients
from .models import evaluating


def _split(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    return ({name: p.detach() for name, p in model.named_parameters() if p.requires_grad}, dict(model.named_buffers()))


def _output_gradients(model: nn.Module, x: Tensor, output: int, chunk_size: int) -> Tensor:
    """d f_output(x_i) / d theta for every example, flattened: (examples, parameters)."""
    params, buffers = _split(model)

    def one(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        return functional_call(model, (p, buffers), (xi.unsqueeze(0),))[0, output]

    grads = vmap(grad(one), in_dims=(None, 0), chunk_size=chunk_size)(params, x)
    return torch.cat([g.reshape(len(x), -1) for g in grads.values()], 1)


def ntk(model: nn.Module, x: Tensor, x2: Tensor | None = None, *, chunk_size: int = 256) -> Tensor:
    """The empirical neural tangent kernel averaged over the outputs: K[i, j] = mean_c J_c(x_i) . J_c(x2_j), with J_c
    the gradient of output c in the parameters. (The full kernel has a block per pair of outputs; at initialisation
    and large width the blocks off the diagonal vanish and the diagonal ones are equal, so this average is the kernel
    of every output.) Measured in eval mode; returns a float64 (len(x), len(x2)) matrix; x2 defaults to x.

    When every trained parameter sits in a linear layer (nn.Linear, NTKLinear), as in MLPs, the kernel is summed
    layer by layer without forming a Jacobian: a weight's gradient is the outer product of the layer's backpropagated
    signal and its input, so that layer's term is (signals' Gram matrix) * (inputs' Gram matrix), elementwise, which
    costs examples^2 x (fan-in + fan-out) instead of examples^2 x parameters. Other models take one output's
    Jacobian (examples x parameters) at a time, in chunks of `chunk_size` examples."""
    with evaluating(model):
        if (kernel := _layerwise_ntk(model, x, x2)) is not None:
            return kernel
        with torch.no_grad():
            outputs = model(x[:1]).shape[1]
        kernel = torch.zeros(len(x), len(x if x2 is None else x2), dtype=torch.float64, device=x.device)
        for c in range(outputs):
            left = _output_gradients(model, x, c, chunk_size)
            right = left if x2 is None else _output_gradients(model, x2, c, chunk_size)
            kernel += (left @ right.T).double()
    return kernel / outputs


def _layerwise_ntk(model: nn.Module, x: Tensor, x2: Tensor | None) -> Tensor | None:
    """The kernel summed layer by layer (None if the model's layers do not allow it): every output's signal at every
    linear layer, from gradients.layer_signals."""
    layers = gradients.linear_layers(model, (nn.Linear, NTKLinear))
    if layers is None:
        return None
    each_output = lambda out: [out[:, c].sum() for c in range(out.shape[1])]  # noqa: E731
    try:
        left = gradients.layer_signals(model, layers, x, each_output)
        right = left if x2 is None else gradients.layer_signals(model, layers, x2, each_output)
    except ValueError:  # shared layers or sequence inputs: take the Jacobians
        return None
    kernel = torch.zeros(len(x), len(x if x2 is None else x2), dtype=torch.float64, device=x.device)
    for (layer, a, left_signals), (_, b, right_signals) in zip(left, right):
        ntk_layer = isinstance(layer, NTKLinear)
        scale = layer.scale if ntk_layer else 1.0  # the weight's gradient is scale * (signal outer input)
        bias = 0.0 if layer.bias is None else layer.bias_scale if ntk_layer else 1.0
        signals_gram = sum((d @ e.T).double() for d, e in zip(left_signals, right_signals))
        kernel += signals_gram * (scale ** 2 * (a @ b.T).double() + bias ** 2)
    return kernel / len(left[0][2])


class Linearised(nn.Module):
    """f_lin(x; theta) = f(x; theta0) + J(x) (theta - theta0): the first-order Taylor model of `model` around its
    current parameters theta0. Its parameters theta start at theta0 and train with gt.fit like any model; each forward
    pass costs one Jacobian-vector product (torch.func.jvp)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = copy.deepcopy(model)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.names = [name for name, _ in model.named_parameters()]
        self.theta = nn.ParameterList([nn.Parameter(p.detach().clone()) for p in model.parameters()])

    def forward(self, x: Tensor) -> Tensor:
        origin = dict(self.model.named_parameters())
        buffers = dict(self.model.named_buffers())
        delta = {name: theta - origin[name] for name, theta in zip(self.names, self.theta)}

        def f(p: dict[str, Tensor]) -> Tensor:
            return functional_call(self.model, (p, buffers), (x,))

        with warnings.catch_warnings():  # torch's forward-mode AD loads decompositions with a deprecated torch.jit
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
            value, change = jvp(f, ({name: origin[name] for name in self.names},), (delta,))
        return value + change


class Scaled(nn.Module):
    """alpha * (f(x; theta) - f(x; theta0)): `model` with its initial output subtracted and its output scaled by alpha
    (Chizat, Oyallon & Bach 2019). Trained on the loss divided by alpha**2 (for SGD without weight decay: a learning
    rate divided by alpha**2), the function moves at the same speed for every alpha at the start, but the weights
    move about 1/alpha as far: a large alpha makes training lazy, a small one makes it learn features. One knob, the
    same network, loss, optimiser and data on both sides."""

    def __init__(self, model: nn.Module, alpha: float):
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.model, self.alpha = model, float(alpha)
        self.initial = copy.deepcopy(model).requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.alpha * (self.model(x) - self.initial(x))


def kernel_regression(k_train: Tensor, targets: Tensor, k_test: Tensor, ridge: float = 0.0) -> Tensor:
    """Predictions k_test (K_train + ridge I)^-1 targets: the minimum-norm (ridge = 0, by pseudo-inverse) or ridge
    interpolant in the kernel's feature space, which is where gradient descent on the linearised model from zero
    output converges. k_test: (test, train) kernel values; targets: (train, outputs)."""
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    k = k_train.double()
    y = targets.double()
    if ridge == 0:
        weights = torch.linalg.pinv(k, hermitian=True) @ y
    else:
        weights = torch.linalg.solve(k + ridge * torch.eye(len(k), dtype=k.dtype, device=k.device), y)
    return k_test.double() @ weights


class NTKLinear(nn.Module):
    """A linear layer in the NTK parameterisation: weights and biases drawn from N(0, 1), the output scaled by
    1 / sqrt(fan_in) (Jacot et al. 2018). The network's function at initialisation is that of the usual
    parameterisation, but each weight's gradient shrinks with the width, so wide networks stay near their
    linearisation."""

    def __init__(self, fan_in: int, fan_out: int, bias_scale: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in))
        self.bias = nn.Parameter(torch.randn(fan_out))
        self.scale, self.bias_scale = 1 / np.sqrt(fan_in), bias_scale

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x @ self.weight.T + self.bias_scale * self.bias


def ntk_mlp(in_features: int, widths: list[int], out_features: int) -> nn.Sequential:
    """An MLP of NTKLinear layers and ReLUs (inputs flattened)."""
    sizes = [in_features, *widths]
    layers: list[nn.Module] = [nn.Flatten()]
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [NTKLinear(fan_in, fan_out), nn.ReLU()]
    layers.append(NTKLinear(sizes[-1], out_features))
    return nn.Sequential(*layers)
