"""Explicit regularizers that plug into gt.fit: weight penalties (fit's `penalty=`), the max-norm
constraint (a callback), and data augmentation for MNIST-1D signals and for images (fit's `augment=`); and METHODS,
a registry of every regularizer the course compares, by name, with run() to train an MLP with one; and
variance_shift, what dropout before batch normalisation does to the statistics batch normalisation keeps.

Weight decay is the optimiser's own `weight_decay=`; dropout, DropConnect and batch normalisation are
options of gt.models.MLP; early stopping is gt.EarlyStopping; label smoothing is fit's `label_smoothing=`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .data import DataSet
from .device import seed_everything
from .models import MLP, evaluating
from .settings import Settings
from .shift import resample, zoom
from .train import Callback, EarlyStopping, evaluate, fit


def weight_matrices(model: nn.Module) -> list[Tensor]:
    """The weights of every linear and convolution layer (not biases or normalisation parameters):
    the parameters a weight penalty acts on."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]



def l1_penalty(strength: float) -> Callable[[nn.Module], Tensor]:
    """``strength * sum |w|`` over the weight matrices: the lasso penalty, whose constant pull drives small weights to zero."""
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
        n = x.shape[0]
        shift = (torch.rand(n, 1, device=x.device) * 2 - 1) * max_shift
        stretch = 1 + (torch.rand(n, 1, device=x.device) * 2 - 1) * max_stretch
        return resample(x, stretch, shift) + noise * x.std() * torch.randn_like(x)

    return augment


def random_zoom(max_change: float = 0.15) -> Callable[[Tensor], Tensor]:
    """A random change of scale for a batch of images (N, C, H, W): each zoomed by a factor within 1 +-
    `max_change` (gt.shift.zoom). Draws from torch's global generator, which fit() seeds."""
    if not 0 <= max_change < 1:
        raise ValueError(f"max_change must be in [0, 1), got {max_change!r}")

    def augment(x: Tensor) -> Tensor:
        return zoom(x, 1 + (torch.rand(x.shape[0], device=x.device) * 2 - 1) * max_change)

    return augment


@dataclass(frozen=True)
class Method:
    """A way to regularize, as options: `model` for gt.models.MLP, `fit` for gt.fit. `kind` is what it changes:
    'explicit' (the loss, the weights or the data), 'procedure' (when training stops), 'architecture', 'none'."""

    kind: str
    setting: Callable[[float | None], dict[str, dict[str, Any]]]  # strength -> {"model": {...}, "fit": {...}}
    default: float | None = None  # the strength used when none is given

    def options(self, strength: float | None = None) -> dict[str, dict[str, Any]]:
        return self.setting(self.default if strength is None else strength)


# The registry of chapter 3 (in the spirit of open_lth's registries): a method is looked up by name, so a sweep
# over regularizers is a grid over names. Strengths: lambda for the penalties, the drop probability p, the norm
# bound c, the patience in epochs, the smoothing s.
METHODS: dict[str, Method] = {
    "baseline": Method("none", lambda _: {}),
    "L2 penalty": Method("explicit", lambda lam: {"fit": dict(penalty=l2_penalty(lam))}, 1e-3),
    "L1 penalty": Method("explicit", lambda lam: {"fit": dict(penalty=l1_penalty(lam))}, 1e-4),
    "dropout": Method("explicit", lambda p: {"model": dict(dropout=p)}, 0.3),
    "DropConnect": Method("explicit", lambda p: {"model": dict(dropconnect=p)}, 0.3),
    "max-norm": Method("explicit", lambda c: {"fit": dict(callbacks=[MaxNorm(c)])}, 0.5),
    "augmentation": Method("explicit", lambda _: {"fit": dict(augment=mnist1d_augment(4, 0.1, 0.05))}),
    "label smoothing": Method("explicit", lambda s: {"fit": dict(label_smoothing=s)}, 0.1),
    "early stopping (valid loss)": Method(
        "procedure", lambda patience: {"fit": dict(callbacks=[EarlyStopping("valid_loss", int(patience))])}, 10),
    "early stopping (valid acc)": Method(
        "procedure", lambda patience: {"fit": dict(callbacks=[EarlyStopping("valid_acc", int(patience), "max")])}, 10),
    "batch norm": Method("architecture", lambda _: {"model": dict(batch_norm=True)}),
}


def run(method: str, data: DataSet, widths: list[int], settings: Settings | None = None, *, seed: int,
        strength: float | None = None, **changes) -> dict[str, Any]:
    """An MLP in -> widths -> classes regularized by METHODS[method], initialised from `seed` and trained by gt.fit
    with `settings` (and `changes` to them) and the batch order of `seed`. One row: every split's final accuracy (after early stopping restores
    its best weights), the validation loss, the epoch early stopping kept (NaN without it) and the History."""
    if method not in METHODS:
        raise ValueError(f"Unknown regularizer {method!r}; the registry has: {', '.join(METHODS)}")
    options = METHODS[method].options(strength)
    seed_everything(seed)
    model = MLP(int(torch.tensor(data.input_shape).prod()), widths, data.n_classes, **options.get("model", {}))
    settings = Settings.of(settings, **changes).without_seed("gt.regularize.run").replace(seed=seed)
    history = fit(model, data, settings, **options.get("fit", {}))
    final = {name: evaluate(model, part, n_classes=data.n_classes) for name, part in data.splits.items()}
    return {**{f"{name}_acc": measured["acc"] for name, measured in final.items()},
            "valid_loss": final["valid"]["loss"] if "valid" in final else float("nan"),
            "best_epoch": history.meta.get("best_epoch", float("nan")), "history": history}



def _batch_norm_layers(model: nn.Module) -> list[nn.Module]:
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        raise ValueError("the model has no batch normalisation layer")
    return layers


def variance_shift(model: nn.Module, x: Tensor) -> list[float]:
    """For each batch-normalisation layer: the variance it keeps for test time (its running variance, gathered in
    training) over the variance its input really has at test time (evaluation mode, on `x`), averaged over units.
    Near 1 without dropout; dropout before the layer inflates the training variance (Li et al. 2019's variance
    shift), so above 1 there."""
    layers = _batch_norm_layers(model)
    seen: dict[int, Tensor] = {}
    hooks = [layer.register_forward_hook(lambda module, inputs, output, k=k: seen.__setitem__(
        k, inputs[0].transpose(0, 1).flatten(1).var(1))) for k, layer in enumerate(layers)]   # per channel or unit
    try:
        with evaluating(model), torch.inference_mode():
            model(x.to(next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return [float((layer.running_var / seen[k]).mean()) for k, layer in enumerate(layers)]


def recalibrate(model: nn.Module, x: Tensor, batch_size: int = 100) -> nn.Module:
    """Batch normalisation's kept statistics gathered again on `x` with dropout off, the weights unchanged: what the
    statistics would be without the variance shift. If test accuracy rises, the shift was costing it."""
    layers = _batch_norm_layers(model)
    momenta = [layer.momentum for layer in layers]
    try:
        with evaluating(model), torch.inference_mode():
            for layer in layers:
                layer.reset_running_stats()
                layer.momentum = None   # a plain average over the batches, not a moving one
                layer.train()
            for batch in x.to(next(model.parameters()).device).split(batch_size):
                model(batch)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return model
