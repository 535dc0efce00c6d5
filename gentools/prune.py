"""Pruning masks, magnitude pruning, rewinding, and iterative magnitude pruning (Frankle & Carbin, 2019).

Masks use PyTorch's own mechanism, torch.nn.utils.prune: the layer keeps `weight_orig` (trained) and a
`weight_mask` buffer, and a forward pre-hook computes weight = weight_orig * weight_mask. A pruned weight is
therefore exactly zero in every forward pass, whatever the optimiser does. It costs about 30% more time per
epoch than a dense MLP on MNIST-1D (measured: 1.87 s against 1.43 s for 20 epochs), which we accept for a
mechanism that cannot be forgotten or bypassed.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.utils.prune as torch_prune
from torch import Tensor, nn

from . import config
from .data import DataSet
from .device import device as default_device
from .device import generator, seed_everything
from .models import ARCHITECTURES, StackedMLP, build, sized
from .settings import Settings
from .sweep import packed
from .train import Callback, fit

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


def layers(model: nn.Module) -> dict[str, nn.Module]:
    """The prunable layers (linear and convolutional) by name, input to output."""
    return {name: module for name, module in model.named_modules() if isinstance(module, PRUNABLE)}


def masks(model: nn.Module) -> dict[str, Tensor]:
    """The current mask of every prunable layer (all ones for a layer not yet pruned)."""
    return {name: (module.weight_mask if hasattr(module, "weight_mask") else torch.ones_like(module.weight)).detach().clone()
            for name, module in layers(model).items()}


def _refresh(module: nn.Module) -> None:
    """Recompute weight = weight_orig * weight_mask now (PyTorch otherwise does it at the next forward pass)."""
    if hasattr(module, "weight_mask"):
        module.weight = module.weight_orig * module.weight_mask


def apply_masks(model: nn.Module, new_masks: dict[str, Tensor]) -> nn.Module:
    """Set the masks of the named layers (replacing any earlier mask); pruned weights become exactly zero."""
    found = layers(model)
    for name, mask in new_masks.items():
        module = found[name]
        if hasattr(module, "weight_mask"):
            module.weight_mask.copy_(mask)  # the trained weights in weight_orig stay as they are
            _refresh(module)
        else:
            torch_prune.custom_from_mask(module, "weight", mask.to(module.weight.device))
    return model


def remaining(model: nn.Module) -> float:
    """Share of prunable weights still present."""
    current = masks(model)
    return float(sum(m.sum() for m in current.values()) / sum(m.numel() for m in current.values()))


def _weights(module: nn.Module) -> Tensor:
    return (module.weight_orig if hasattr(module, "weight_orig") else module.weight).detach()


def magnitude_masks(model: nn.Module, fraction: float, output_fraction: float | None = None, scope: str = "layer",
                    conv_fraction: float | None = None) -> dict[str, Tensor]:
    """Masks that remove `fraction` of the surviving weights with the smallest magnitudes: per layer
    (scope='layer'; the last layer at `output_fraction` and convolutions at `conv_fraction` if given, as in the
    paper) or over all layers at once (scope='global')."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must lie in [0, 1), got {fraction}")
    found, current = layers(model), masks(model)
    names = list(found)
    if scope == "layer":
        result = {}
        for name in names:
            rate = fraction
            if conv_fraction is not None and isinstance(found[name], (nn.Conv1d, nn.Conv2d)):
                rate = conv_fraction
            if output_fraction is not None and name == names[-1]:
                rate = output_fraction
            result[name] = _prune_smallest(_weights(found[name]).abs(), current[name], rate)
        return result
    if scope == "global":
        scores = torch.cat([_weights(found[n]).abs().flatten() for n in names])
        alive = torch.cat([current[n].flatten() for n in names])
        flat = _prune_smallest(scores, alive, fraction)
        sizes = [current[n].numel() for n in names]
        return {n: part.view_as(current[n]) for n, part in zip(names, flat.split(sizes))}
    raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")


def _prune_smallest(scores: Tensor, mask: Tensor, fraction: float) -> Tensor:
    """Zero the `fraction` of currently surviving entries with the smallest scores."""
    alive = mask.bool()
    k = round(fraction * int(alive.sum()))
    new = mask.clone()
    if k == 0:
        return new
    candidates = torch.where(alive, scores, torch.full_like(scores, float("inf")))
    drop = torch.topk(candidates.flatten(), k, largest=False).indices
    new.view(-1)[drop] = 0
    return new


def random_masks(like: dict[str, Tensor], seed: int = 0) -> dict[str, Tensor]:
    """Random masks with the same number of surviving weights in each layer as `like` (a control)."""
    gen = generator(seed)
    result = {}
    for name, mask in like.items():
        keep = int(mask.sum())
        chosen = torch.randperm(mask.numel(), generator=gen)[:keep]
        new = torch.zeros(mask.numel(), dtype=mask.dtype)
        new[chosen] = 1
        result[name] = new.view_as(mask).to(mask.device)
    return result


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    """The model's current (unmasked) weights and biases, to rewind to later."""
    state = {}
    for name, module in layers(model).items():
        state[f"{name}.weight"] = _weights(module).clone()
        if module.bias is not None:
            state[f"{name}.bias"] = module.bias.detach().clone()
    return state


@torch.no_grad()
def rewind(model: nn.Module, state: dict[str, Tensor]) -> nn.Module:
    """Reset every prunable layer's weights and biases to a snapshot, keeping the current masks."""
    for name, module in layers(model).items():
        (module.weight_orig if hasattr(module, "weight_orig") else module.weight).copy_(state[f"{name}.weight"])
        if module.bias is not None:
            module.bias.copy_(state[f"{name}.bias"])
        _refresh(module)
    return model


class SnapshotAt(Callback):
    """A gt.fit callback that snapshots the weights after optimiser step `step` (for late rewinding)."""

    def __init__(self, step: int):
        self.step, self.seen, self.state = step, 0, None

    def on_step(self, model: nn.Module) -> None:
        self.seen += 1
        if self.seen == self.step:
            self.state = snapshot(model)


def iterative_magnitude_pruning(model: nn.Module, train: Callable[[nn.Module], dict], rounds: int, fraction: float = 0.2,
                                output_fraction: float | None = 0.1, rewind_step: int = 0, scope: str = "layer",
                                conv_fraction: float | None = None) -> list[dict]:
    """Train, prune `fraction` of the surviving weights by magnitude, rewind the survivors, repeat.

    train(model) trains in place and returns a dict of results; it receives `callbacks` as a keyword argument
    (a list to pass on to gt.fit). Rewinding goes to the initial weights (rewind_step=0) or to the weights
    after `rewind_step` optimiser steps of the first training run. Returns one record per round:
    ``{'round', 'remaining', 'masks', **train results}``.
    """
    initial = snapshot(model)
    catcher = SnapshotAt(rewind_step) if rewind_step > 0 else None
    records = []
    for round_ in range(rounds + 1):
        results = train(model, callbacks=[catcher] if (catcher is not None and round_ == 0) else [])
        records.append({"round": round_, "remaining": remaining(model), "masks": masks(model), **results})
        if round_ == rounds:
            break
        target = catcher.state if catcher is not None else initial
        if target is None:
            raise ValueError(f"rewind_step={rewind_step} exceeds the number of steps of the first training run")
        apply_masks(model, magnitude_masks(model, fraction, output_fraction, scope, conv_fraction))
        rewind(model, target)
    return records


def best_epoch_trainer(data: DataSet, settings: Settings | None = None, *, progress: bool | None = None,
                       **changes) -> Callable[..., dict]:
    """The training step of iterative_magnitude_pruning as Frankle & Carbin judge it: train(net, callbacks=())
    trains `net` with gt.fit and `settings` (and `changes` to them) and reports it at its early-stopping epoch, the
    trained epoch (1 or later) of lowest validation loss (data needs a valid split; it and the test split are
    measured every epoch, whatever the settings say): {'best_epoch', 'test_acc', 'valid_loss'} at that epoch."""
    settings = Settings.of(settings, **changes).replace(measure=("valid", "test"), measure_every=1)
    if data.valid is None:
        raise ValueError("a network is judged at its lowest validation loss: hold out a validation split first")

    def train(net: nn.Module, callbacks: Sequence[Callback] = ()) -> dict:
        history = fit(net, data, settings, callbacks=callbacks, progress=progress)
        best = history.records[1 + int(np.nanargmin(history["valid_loss"][1:]))]  # epoch 0 is the untrained network
        return {"best_epoch": int(best["epoch"]), "test_acc": best["test_acc"], "valid_loss": best["valid_loss"]}

    return train


def ticket(model: nn.Module, mask: dict[str, Tensor], state: dict[str, Tensor]) -> nn.Module:
    """A fresh copy of `model` with weights `state` and masks `mask` applied."""
    return apply_masks(rewind(copy.deepcopy(model), state), mask)


def _seed_packs(points: list[dict], **_) -> list[list[int]]:
    """lottery's packs: on a CPU, its seeds split evenly over the sweep's worker processes (GENTOOLS_WORKERS), one
    stack each; on a GPU (one process), one stack. A member trains alike whatever else is in its stack, so this
    changes no number, only how many cores work."""
    count = min(len(points), config.workers()) if default_device().type == "cpu" else 1
    return [part.tolist() for part in np.array_split(np.arange(len(points)), count)]


@packed(keys=("seed",), packs=_seed_packs)
def lottery(points: Sequence[Mapping[str, int]], data: DataSet, widths: Sequence[int] | None = None,
            settings: Settings | None = None, *, architecture: str = "mlp", rounds: int, control_rounds: Sequence[int] = (),
            fraction: float = 0.2, output_fraction: float = 0.1, conv_fraction: float | None = None,
            reinit_offset: int = 10_000, progress: bool | None = None, **changes) -> list[list[dict]]:
    """Iterative magnitude pruning of MLPs in -> widths -> classes, with both controls: a packed run function for
    gt.sweep over `seed`, which trains all the seeds of a pack at once (packs: the seeds split over the workers).
    With another `architecture` of the registry, one without a width (gt.models.build: 'cnn', and Frankle &
    Carbin's 'conv-2', 'conv-4', 'conv-6'), the same procedure and controls train one network at a time, its
    convolutions pruned at `conv_fraction` a round.

    Each round trains by gt.fit with `settings` (and `changes` to them), as one stack (gt.models.StackedMLP with
    masks), every seed's ticket (its mask, its original initial weights: rewinding to step 0) and, in
    `control_rounds`, the two controls: the same mask re-initialised (seed + reinit_offset) and a random mask with
    the same number of weights per layer and the original weights. Every member is judged at its early-stopping
    epoch, the one of lowest validation loss (data needs a valid split): the validation and test splits are measured
    every epoch, whatever the settings say, and each member's batch order is its seed's.
    Then each ticket loses `fraction` of its surviving weights in every layer (`output_fraction` in the last), by
    the magnitude of its trained weights. Each point's result: one row per round and variant of its seed (seed,
    round, remaining, variant, best_epoch, test_acc, valid_loss); the last round's ticket also carries
    `first_layer_mask` (units x inputs; MLPs only)."""
    seeds = [point["seed"] for point in points]
    settings = Settings.of(settings, **changes).without_seed("gt.prune.lottery").replace(measure=("valid", "test"),
                                                                                          measure_every=1)
    if data.valid is None:
        raise ValueError("lottery() judges every network at its lowest validation loss: hold out a validation split first")
    if (architecture == "mlp") == (widths is None):
        raise ValueError(f"lottery() takes widths for an MLP and none for another architecture (architecture="
                         f"{architecture!r}, widths={widths})")
    if architecture != "mlp" and sized(architecture):
        raise ValueError(f"lottery() trains a network of fixed size; {architecture} is sized by a width: choose one of "
                         f"{', '.join(name for name, (_, by_width) in ARCHITECTURES.items() if not by_width)}, or 'mlp'")
    if architecture != "mlp":
        return [_lottery_one(architecture, data, settings.replace(seed=seed), rounds=rounds, control_rounds=control_rounds,
                             fraction=fraction, output_fraction=output_fraction, conv_fraction=conv_fraction,
                             reinit_offset=reinit_offset, progress=progress) for seed in seeds]
    in_features, classes = int(torch.tensor(data.input_shape).prod()), data.n_classes
    sizes = [in_features, *widths, classes]
    dev = default_device()
    tickets = {seed: [torch.ones(a, b, device=dev) for a, b in zip(sizes, sizes[1:])] for seed in seeds}
    rows: list[dict] = []
    for round_ in range(rounds + 1):
        members = [("winning ticket", seed, seed, tickets[seed]) for seed in seeds]
        if round_ in control_rounds:
            for seed in seeds:
                members.append(("re-initialised", seed, seed + reinit_offset, tickets[seed]))
                shuffled = random_masks(dict(enumerate(tickets[seed])), seed=seed + round_)
                members.append(("random mask", seed, seed, [shuffled[i] for i in range(len(sizes) - 1)]))
        nets = StackedMLP(in_features, widths, classes, seeds=[init for _, _, init, _ in members]).to(dev)
        nets.set_masks([torch.stack([mask[layer] for *_, mask in members]) for layer in range(len(sizes) - 1)])
        histories = fit(nets, data, settings, progress=progress)
        valid_loss = torch.tensor(np.array([h["valid_loss"][1:] for h in histories])).T  # (epochs, K)
        test_acc = torch.tensor(np.array([h["test_acc"][1:] for h in histories])).T
        best = valid_loss.argmin(0)
        remaining_now = {seed: float(sum(m.sum() for m in tickets[seed]) / sum(m.numel() for m in tickets[seed])) for seed in seeds}
        for i, (variant, seed, _, mask) in enumerate(members):
            rows.append({"seed": seed, "round": round_, "remaining": remaining_now[seed], "variant": variant,
                         "best_epoch": int(best[i]) + 1, "test_acc": float(test_acc[best[i], i]),
                         "valid_loss": float(valid_loss[best[i], i])})
            if round_ == rounds and variant == "winning ticket":
                rows[-1]["first_layer_mask"] = mask[0].T.cpu().tolist()
        if round_ < rounds:  # prune each ticket by the magnitude of its trained weights, then rewind (a fresh stack)
            for i, seed in enumerate(seeds):
                last = len(sizes) - 2
                tickets[seed] = [_prune_smallest(nets.weights[layer][i].detach().abs(), tickets[seed][layer],
                                                 output_fraction if layer == last else fraction) for layer in range(last + 1)]
    return [[row for row in rows if row["seed"] == seed] for seed in seeds]


def _lottery_one(architecture: str, data: DataSet, settings: Settings, *, rounds: int, control_rounds: Sequence[int],
                 fraction: float, output_fraction: float, conv_fraction: float | None, reinit_offset: int,
                 progress: bool | None) -> list[dict]:
    """lottery() for one network of the registry and one seed (settings.seed): the same rounds, rows and controls."""
    def fresh(seed: int) -> nn.Module:
        seed_everything(seed)
        return build(architecture, data.input_shape, data.n_classes).to(default_device())

    seed, train = settings.seed, best_epoch_trainer(data, settings, progress=progress)
    # as in a stack, a member's batch order is its initial weights' seed: the re-initialised control has its own
    reinit_train = best_epoch_trainer(data, settings.replace(seed=seed + reinit_offset), progress=progress)
    records = iterative_magnitude_pruning(fresh(seed), train, rounds, fraction, output_fraction, conv_fraction=conv_fraction)
    rows = []
    for record in records:
        variants = {"winning ticket": record}
        if record["round"] in control_rounds:
            variants["re-initialised"] = reinit_train(apply_masks(fresh(seed + reinit_offset), record["masks"]))
            variants["random mask"] = train(apply_masks(fresh(seed), random_masks(record["masks"], seed=seed + record["round"])))
        rows += [{"seed": seed, "round": record["round"], "remaining": record["remaining"], "variant": variant,
                  **{key: result[key] for key in ("best_epoch", "test_acc", "valid_loss")}} for variant, result in variants.items()]
    return rows
