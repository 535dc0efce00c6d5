"""Many same-shape MLPs trained at once: weights stacked along a leading dimension K and applied with
batched matrix products (torch.baddbmm), which on CPUs beat torch.func.vmap.

Member i starts exactly like gt.models.MLP built after torch.manual_seed(seeds[i]) and, in fit_stacked,
sees the same batch order as gt.fit(..., seed=seeds[i]); so K members trained together equal the same K
trained one by one, to floating-point tolerance. Each member may have its own training set.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import config
from .data import DataSet
from .device import autocast, generator
from .models import MLP, activation_layer
from .losses import per_example_loss
from .train import DivergedError, make_optimizer


class StackedMLP(nn.Module):
    """K independent MLPs in_features -> widths -> out_features. Input (K, B, ...), output (K, B, out)."""

    def __init__(self, in_features: int, widths: Sequence[int], out_features: int, seeds: Sequence[int],
                 activation: str = "relu"):
        super().__init__()
        if not seeds:
            raise ValueError("seeds must name at least one member")
        self.seeds = list(seeds)
        self.shape = (in_features, tuple(widths), out_features)
        self.activation = activation_layer(activation)()
        members = []
        for seed in self.seeds:
            torch.manual_seed(seed)
            members.append([layer for layer in MLP(in_features, widths, out_features, activation) if isinstance(layer, nn.Linear)])
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([m[i].weight.detach().T for m in members]).contiguous()) for i in range(len(members[0])))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([m[i].bias.detach()[None] for m in members])) for i in range(len(members[0])))

    def __len__(self) -> int:
        return len(self.seeds)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(2)
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(bias, x, weight)
            if i < last:
                x = self.activation(x)
        return x

    def member(self, i: int) -> MLP:
        """Member i as an ordinary gt.models.MLP (a copy)."""
        in_features, widths, out_features = self.shape
        model = MLP(in_features, widths, out_features).to(self.weights[0].device)
        linears = [layer for layer in model if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for layer, weight, bias in zip(linears, self.weights, self.biases):
                layer.weight.copy_(weight[i].T)
                layer.bias.copy_(bias[i, 0])
        return model


def stack(tensor: Tensor, k: int) -> Tensor:
    """The same data for all k members, as a (k, ...) view (no copy)."""
    return tensor.expand(k, *tensor.shape)


def _member_losses(out: Tensor, y: Tensor, loss: str, n_classes: int | None) -> Tensor:
    """Mean loss of each member over its batch: shape (K,)."""
    return per_example_loss(loss, n_classes)(out, y).flatten(1).mean(1)


def fit_stacked(model: StackedMLP, x: Tensor, y: Tensor, *, epochs: int, optimizer: str = "adam", lr: float = 1e-3,
                weight_decay: float = 0.0, momentum: float = 0.9, batch_size: int | None = None, loss: str = "mse",
                n_classes: int | None = None, record: bool = False, progress: bool | None = None,
                on_epoch: Callable[[int, StackedMLP], None] | None = None) -> Tensor | dict[str, Tensor]:
    """Train every member on its own data x[i], y[i] (shapes (K, n, ...) and (K, n[, out]); use stack() for
    shared data). batch_size None means full batch. Returns each member's mean training loss in the last epoch;
    with record=True, the learning curves instead: {'loss': (epochs, K), 'acc': (epochs, K) for classes}, the
    mean loss and accuracy over each epoch's mini-batches (measured while training, as most frameworks report).
    on_epoch(epoch, model), if given, runs after every epoch (for example to measure the test error now and then)."""
    k, n = x.shape[:2]
    if k != len(model) or y.shape[:2] != (k, n):
        raise ValueError(f"x and y must have shape (K={len(model)}, n, ...); got {tuple(x.shape)} and {tuple(y.shape)}")
    dev = model.weights[0].device
    x, y = x.to(dev), y.to(dev)
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=weight_decay, momentum=momentum)
    orders = [generator(seed) for seed in model.seeds]
    rows = torch.arange(k, device=dev)[:, None]
    batch = batch_size or n
    show = config.show_progress() if progress is None else progress
    running = torch.zeros(k, device=dev)
    curves: dict[str, list[Tensor]] = {"loss": [], "acc": []}
    for epoch in tqdm(range(1, epochs + 1), desc=f"{k} models", disable=not show, leave=False):
        if batch < n:
            index = torch.stack([torch.randperm(n, generator=g) for g in orders]).to(dev)
        running = torch.zeros(k, device=dev)
        correct = torch.zeros(k, device=dev)
        for start in range(0, n, batch):
            if batch < n:
                idx = index[:, start:start + batch]
                xb, yb = x[rows, idx], y[rows, idx]
            else:
                xb, yb = x, y
            with autocast(dev):
                out = model(xb).float()
                member_loss = _member_losses(out, yb, loss, n_classes)
            opt.zero_grad(set_to_none=True)
            member_loss.sum().backward()  # members share no parameters: each gets its own gradient
            opt.step()
            running += member_loss.detach() * yb.shape[1]
            if record and n_classes:
                correct += (out.detach().argmax(-1) == yb).sum(1)
        if record:  # kept on the device; read once at the end
            curves["loss"].append(running / n)
            if n_classes:
                curves["acc"].append(correct / n)
        if on_epoch is not None:
            on_epoch(epoch, model)
        if epoch == epochs or epoch % 50 == 0:  # a host read now and then, not every step
            if not torch.isfinite(running).all():
                raise DivergedError(f"Training diverged by epoch {epoch} for members "
                                    f"{torch.nonzero(~torch.isfinite(running)).flatten().tolist()}: try a smaller learning rate (lr={lr} now).")
    if record:
        return {key: torch.stack(values).cpu() for key, values in curves.items() if values}
    return running / n


@torch.inference_mode()
def evaluate_stacked(model: StackedMLP, x: Tensor, y: Tensor, loss: str = "mse", n_classes: int | None = None) -> dict[str, Tensor]:
    """Each member's mean loss (and accuracy, for classes) on its data: tensors of shape (K,)."""
    out = model(x.to(model.weights[0].device)).float()
    y = y.to(out.device)
    result = {"loss": _member_losses(out, y, loss, n_classes)}
    if n_classes:
        result["acc"] = (out.argmax(-1) == y).float().mean(1)
    return result


def evaluate_splits(model: StackedMLP, data: DataSet, loss: str = "mse") -> dict[str, dict[str, Tensor]]:
    """Every member on every split of one shared data set: {split: {'loss': (K,), 'acc': (K,)}}."""
    k = len(model)
    return {name: evaluate_stacked(model, stack(part.x, k), stack(part.y, k), loss, data.n_classes)
            for name, part in data.splits.items()}
