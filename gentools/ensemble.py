"""Many same-shape MLPs trained at once: weights stacked along a leading dimension K and applied with
batched matrix products (torch.baddbmm), which on CPUs beat torch.func.vmap.

Member i starts exactly like gt.models.MLP built after torch.manual_seed(seeds[i]) and, in fit_stacked,
sees the same batch order as gt.fit(..., seed=seeds[i]); so K members trained together equal the same K
trained one by one, to floating-point tolerance. Each member may have its own training set, and its own
(narrower) widths: a width sweep becomes a few stacks instead of one training loop per width.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import config
from .data import DataSet
from .device import autocast, generator
from .device import device as default_device
from .models import MLP, activation_layer, count_parameters
from .losses import per_example_loss
from .train import DivergedError, make_optimizer


class StackedMLP(nn.Module):
    """K independent MLPs in_features -> widths -> out_features. Input (K, B, ...), output (K, B, out).

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
                torch.manual_seed(seed)
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
        xs, ys = x, y
        if batch < n:  # one gather an epoch; the batches are then views
            index = torch.stack([torch.randperm(n, generator=g) for g in orders]).to(dev)
            xs, ys = x[rows, index], y[rows, index]
        running = torch.zeros(k, device=dev)
        correct = torch.zeros(k, device=dev)
        for start in range(0, n, batch):
            xb, yb = xs[:, start:start + batch], ys[:, start:start + batch]
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


def width_groups(widths: Sequence[int], depth: int = 1, copies: int = 1, in_out: int = 50,
                 overhead: float = 4e4) -> list[list[int]]:
    """Split a width sweep into groups of consecutive widths to train as padded stacks (fit_widths), at the least
    total cost: each of a width's `copies` (data sets, seeds) costs the arithmetic of its group's widest,
    ~ (depth - 1) w^2 + in_out w per example, and every group a fixed `overhead` (launching a training step's
    operations: about 4e4 of those units on a CPU). Found exactly, by dynamic programming over the sorted widths."""
    ordered = sorted(set(widths))

    def cost(w: int) -> float:
        return (depth - 1) * w * w + in_out * w

    best = [0.0] + [float("inf")] * len(ordered)  # best[j]: the cheapest split of the j narrowest widths
    start = [0] * (len(ordered) + 1)
    for j in range(1, len(ordered) + 1):
        for i in range(j):
            total = best[i] + overhead + (j - i) * copies * cost(ordered[j - 1])
            if total < best[j]:
                best[j], start[j] = total, i
    groups, j = [], len(ordered)
    while j:
        groups.append(ordered[start[j]:j])
        j = start[j]
    return groups


def fit_widths(data: dict[str, DataSet], widths: Sequence[int], *, epochs: int, depth: int = 1, seed: int = 0,
               optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
               batch_size: int | None = 100, loss: str = "cross_entropy", test_every: int | None = None,
               progress: bool | None = None) -> list[dict[str, object]]:
    """Train an MLP with `depth` hidden layers of each width on each data set (same inputs, labels of their own:
    clean and noisy, say), all at once as one stack padded to the widest (StackedMLP's member_widths). Every
    member starts from `seed` and sees the same batch order. One row per data set and width: parameters, train
    and test error and loss after the last epoch; with `test_every`, also the test error every `test_every` epochs
    and its lowest value (what optimal early stopping would give, as Nakkiran et al. measure it)."""
    names = list(data)
    first = data[names[0]]
    members = [(name, w) for name in names for w in widths]
    k = len(members)
    nets = StackedMLP(int(torch.tensor(first.input_shape).prod()), [max(widths)] * depth, first.n_classes,
                      seeds=[seed] * k, member_widths=[[w] * depth for _, w in members])
    nets.to(default_device())  # the data sets may stay on the CPU (cheap to send to worker processes)
    splits = {split: (torch.stack([getattr(data[name], split).x for name, _ in members]),
                      torch.stack([getattr(data[name], split).y for name, _ in members])) for split in ("train", "test")}
    curve: list[Tensor] = []

    def measure(epoch: int, model: StackedMLP) -> None:
        if test_every and epoch % test_every == 0:
            curve.append(1 - evaluate_stacked(model, *splits["test"], loss, first.n_classes)["acc"].cpu())

    fit_stacked(nets, *splits["train"], epochs=epochs, optimizer=optimizer, lr=lr, momentum=momentum,
                weight_decay=weight_decay, batch_size=batch_size, loss=loss, n_classes=first.n_classes,
                progress=progress, on_epoch=measure)
    final = {split: evaluate_stacked(nets, x, y, loss, first.n_classes) for split, (x, y) in splits.items()}
    rows = []
    for i, (name, width) in enumerate(members):
        row = {"data": name, "width": width, "parameters": count_parameters(nets.member(i))}
        for split, measured in final.items():
            row[f"{split}_error"], row[f"{split}_loss"] = 1 - measured["acc"][i].item(), measured["loss"][i].item()
        if curve:
            errors = torch.stack(curve)[:, i]
            row["test_error_curve"], row["early_stopped_test_error"] = errors.tolist(), errors.min().item()
        rows.append(row)
    return rows
