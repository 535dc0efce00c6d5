"""Explicit regularizers that plug into gt.fit: weight penalties (fit's `penalty=`), the max-norm
constraint (a callback), and data augmentation for MNIST-1D signals (fit's `augment=`).

Weight decay is the optimiser's own `weight_decay=`; dropout, DropConnect and batch normalisation are
options of gt.models.MLP; early stopping is gt.EarlyStopping; label smoothing is fit's `label_smoothing=`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .train import Callback


def weight_matrices(model: nn.Module) -> list[Tensor]:
    """The weights of every linear and convolution layer (not biases or normalisation parameters):
    the parameters a weight penalty acts on."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]


def l1_penalty(strength: float) -> Callable[[nn.Module], Tensor]:
    """strength * sum |w| over the weight matrices: the lasso penalty, whose constant pull drives small weights to zero."""
    return lambda model: strength * sum(w.abs().sum() for w in weight_matrices(model))


def l2_penalty(strength: float) -> Callable[[nn.Module], Tensor]:
    """strength * sum w^2 over the weight matrices: the ridge penalty, whose pull shrinks in proportion to w.
    With plain SGD it equals weight_decay = 2 * strength; with Adam it does not (AdamW decouples the two)."""
    return lambda model: strength * sum(w.pow(2).sum() for w in weight_matrices(model))


class MaxNorm(Callback):
    """After every step, rescale each unit's incoming weight vector to norm at most `max_norm`
    (Srivastava et al. 2014 pair it with dropout). Applies to the hidden linear layers, not the read-out."""

    def __init__(self, max_norm: float = 3.0):
        if max_norm <= 0:
            raise ValueError(f"max_norm must be positive, got {max_norm}")
        self.max_norm = max_norm

    @torch.no_grad()
    def on_step(self, model: nn.Module) -> None:
        for layer in [m for m in model.modules() if isinstance(m, nn.Linear)][:-1]:
            norms = layer.weight.norm(dim=1, keepdim=True)
            layer.weight.mul_(norms.clamp(max=self.max_norm) / norms.clamp(min=1e-12))


def mnist1d_augment(max_shift: int = 4, max_stretch: float = 0.1, noise: float = 0.05) -> Callable[[Tensor], Tensor]:
    """Random changes of the kinds MNIST-1D's generator itself applies, for a batch of signals (N, L):
    a shift of up to `max_shift` positions, a horizontal stretch by a factor within 1 +- `max_stretch`
    (linear interpolation, edges repeated), and Gaussian noise of standard deviation `noise` times the
    batch's standard deviation. Draws from torch's global generator, which fit() seeds."""

    def augment(x: Tensor) -> Tensor:
        n, length = x.shape[0], x.shape[-1]
        shift = (torch.rand(n, 1, device=x.device) * 2 - 1) * max_shift
        stretch = 1 + (torch.rand(n, 1, device=x.device) * 2 - 1) * max_stretch
        position = torch.linspace(-1, 1, length, device=x.device)[None]  # grid_sample's coordinates
        source = (position * stretch - 2 * shift / (length - 1)).to(x.dtype)
        grid = torch.stack([source, torch.zeros_like(source)], -1)[:, None]  # (N, 1, L, 2)
        moved = F.grid_sample(x.reshape(n, 1, 1, length), grid, align_corners=True, padding_mode="border")
        return moved.reshape(x.shape) + noise * x.std() * torch.randn_like(x)

    return augment
