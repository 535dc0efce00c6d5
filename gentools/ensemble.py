"""Ensembles and stacks of networks: averaging members' predictions, or the predictions of a dropout network's
thinned networks (thinned_probabilities); one MLP per named data set and seed trained
as one stack (fit_each); and width sweeps whose points gt.sweep trains in a few padded stacks (fit_widths, a packed
run function: gt.models.StackedMLP with member_widths) instead of one training loop per width, or, for another
architecture of the registry (a ResNet-18 of width k), one point at a time.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .data import DataSet, TensorData
from .device import device as default_device
from .device import run_seed, seed_everything
from .models import ARCHITECTURES, DropConnectLinear, StackedMLP, build, count_parameters, evaluating, sized
from .settings import Settings
from .sweep import packed
from .train import fit


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


def _width_packs(points: list[dict], data: Mapping[Hashable, DataSet], *, depth: int = 1, architecture: str = "mlp",
                 **_) -> list[list[int]]:
    """fit_widths' packs: for MLPs, the widths split at the least arithmetic (width_groups), each with all its seeds
    and data sets, the cost model's sizes from the data (inputs + classes) and the number of copies of a width; for
    any other architecture, one point a pack."""
    if architecture != "mlp":
        return [[i] for i in range(len(points))]
    first = next(iter(data.values()))
    widths = [point["width"] for point in points]
    groups = width_groups(widths, depth=depth, copies=len(data) * max(Counter(widths).values()),
                          in_out=int(np.prod(first.input_shape)) + first.n_classes)
    return [[i for i, width in enumerate(widths) if width in group] for group in groups]


@packed(keys=("width", "seed"), packs=_width_packs)
def fit_widths(points: Sequence[Mapping[str, int]], data: Mapping[Hashable, DataSet], settings: Settings | None = None,
               *, depth: int = 1, architecture: str = "mlp", progress: bool | None = None,
               **changes) -> list[list[dict[str, object]]]:
    """A packed run function for gt.sweep over `width` (and `seed`, default 0): for each point, a network of that
    width on each data set (same inputs, labels of their own: clean and noisy, say), trained by gt.fit with
    `settings` (and `changes` to them). A point's result is one row per data set: parameters, train and test error
    and loss after the last epoch; also the test error every measure_every epochs and its lowest value (what optimal
    early stopping would give, as Nakkiran et al. measure it), unless measure_every=None. The train and test splits
    are the ones measured.

    The network is an MLP with `depth` hidden layers of that width, all the points of a pack trained at once as one
    stack padded to the widest (StackedMLP's member_widths): a member from seed s starts like MLP(...) after
    torch.manual_seed(s) and sees gt.fit's batch order for seed s. Or it is `architecture`, a network of the
    registry sized by a width (gt.models.build: 'resnet18', whose width is k), one point at a time, seeded alike."""
    settings = Settings.of(settings, **changes).without_seed("gt.ensemble.fit_widths")
    if architecture != "mlp" and (not sized(architecture) or depth != 1):
        by_width = [name for name, (_, takes_width) in ARCHITECTURES.items() if takes_width]
        raise ValueError(f"fit_widths() sweeps 'mlp' (any depth) or a registry network sized by a width ({', '.join(by_width)}; "
                         f"depth 1), got architecture={architecture!r}, depth={depth}")
    members = [(name, point["width"], point.get("seed", 0), k) for name in data for k, point in enumerate(points)]
    first = next(iter(data.values()))
    if architecture == "mlp":
        nets = StackedMLP(int(np.prod(first.input_shape)), [max(width for _, width, _, _ in members)] * depth,
                          first.n_classes, seeds=[seed for _, _, seed, _ in members],
                          member_widths=[[w] * depth for _, w, _, _ in members])
        nets.to(default_device())  # the data sets may stay on the CPU (cheap to send to worker processes)
        histories = fit(nets, [data[name] for name, *_ in members], settings, measure=["train", "test"], progress=progress)
        networks = [nets.member(i) for i in range(len(members))]
    else:
        networks, histories = [], []
        for name, width, seed, _ in members:
            seed_everything(seed)
            networks.append(build(architecture, first.input_shape, first.n_classes, width).to(default_device()))
            histories.append(fit(networks[-1], data[name], settings.replace(seed=seed), measure=["train", "test"],
                                 progress=progress))
    rows: list[list[dict[str, object]]] = [[] for _ in points]
    for (name, width, seed, k), net, history in zip(members, networks, histories):
        row = {"data": name, "width": width, "seed": seed, "parameters": count_parameters(net)}
        for split in ("train", "test"):
            row[f"{split}_error"], row[f"{split}_loss"] = 1 - history.final[f"{split}_acc"], history.final[f"{split}_loss"]
        if settings.measure_every:
            errors = 1 - history["test_acc"][1:]  # measured every measure_every epochs: NaN in between
            errors = errors[~np.isnan(errors)]
            row["test_error_curve"], row["early_stopped_test_error"] = errors.tolist(), float(errors.min())
        rows[k].append(row)
    return rows


def fit_each(data: Mapping[Hashable, DataSet], widths: Sequence[int], settings: Settings | None = None, *,
             seeds: Sequence[int] = (0,), activation: str = "relu", **changes) -> list[dict[str, object]]:
    """An MLP in -> widths -> out trained on each named data set (conditions, noise levels: same inputs' shape, same
    split sizes) from each seed, all at once as one stack, by gt.fit with `settings` (and `changes` to them). One row
    per data set and seed: data, seed, every split's final loss and accuracy, and the run's History (its running
    training loss and accuracy every epoch)."""
    members = [(name, seed) for name in data for seed in seeds]
    first = next(iter(data.values()))
    nets = StackedMLP(int(np.prod(first.input_shape)), widths, first.n_classes or first.train.y.shape[-1],
                      seeds=[seed for _, seed in members], activation=activation).to(default_device())
    histories = fit(nets, [data[name] for name, _ in members], Settings.of(settings, **changes).without_seed("gt.ensemble.fit_each"))
    return [{"data": name, "seed": seed, **{key: value for key, value in history.final.items()
                                            if key.endswith(("_loss", "_acc"))},  # not the running ones
             "history": history} for (name, seed), history in zip(members, histories)]


def average_probabilities(model: StackedMLP, split: TensorData, groups: int) -> dict[str, Tensor]:
    """Ensembles by averaging predicted probabilities: the stack's K members, in `groups` consecutive groups of
    K / groups, each group an ensemble. On one split: {'member_acc': (groups, members), 'ensemble_acc': (groups,),
    'probabilities': (groups, n, classes)}, the ensembles' averaged softmax outputs."""
    k = len(model)
    if k % groups:
        raise ValueError(f"{k} members do not split into {groups} equal groups")
    with torch.inference_mode():
        x, y = split.x.to(model.weights[0].device), split.y.to(model.weights[0].device)
        each = model(x.expand(k, *x.shape)).float().softmax(-1).view(groups, k // groups, len(split), -1)
        averaged = each.mean(1)
        return {"member_acc": (each.argmax(-1) == y).float().mean(-1).cpu(),
                "ensemble_acc": (averaged.argmax(-1) == y).float().mean(-1).cpu(), "probabilities": averaged.cpu()}


def averaged_accuracy(probabilities: Tensor, y: Tensor) -> float:
    """The accuracy of the prediction averaged over the first axis: members of an ensemble, or thinned networks,
    given as probabilities of shape (k, n, classes)."""
    return float((probabilities.mean(0).argmax(-1) == y.to(probabilities.device)).float().mean())


def thinned_probabilities(model: torch.nn.Module, x: Tensor, samples: int, seed: int = 0) -> Tensor:
    """The class probabilities of `samples` thinned networks of a dropout (or DropConnect) network: each a fresh
    draw of the masks, everything else (batch normalisation included) in evaluation mode. Shape (samples, n, classes).
    Their mean is the ensemble that dropout trains and that weight scaling approximates (Srivastava et al. 2014)."""
    noisy = [m for m in model.modules() if isinstance(m, (torch.nn.modules.dropout._DropoutNd, DropConnectLinear))]
    if not noisy:
        raise ValueError("the model has no dropout or DropConnect layer: every thinned network would be the model itself")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    x = x.to(next(model.parameters()).device)
    with evaluating(model), torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), \
            torch.inference_mode():
        torch.manual_seed(run_seed(seed))   # the masks, shifted by GENTOOLS_SEED like every seed
        for layer in noisy:
            layer.train()   # masks drawn; evaluating() restores every layer's mode afterwards
        return torch.stack([model(x).float().softmax(-1) for _ in range(samples)]).cpu()
