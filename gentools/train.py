"""One training loop for every chapter: fit() -> History, evaluate(), and callbacks for early stopping,
pruning masks and logging.

The loop keeps everything on the device: batches are index slices of resident tensors, the running loss
is summed on the device, and the host reads numbers once an epoch, never per step.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import config, gradients
from .data import DataSet, TensorData
from .device import autocast, generator
from .losses import mean_loss

OptimizerSpec = str | Callable[[Any], torch.optim.Optimizer]


class DivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class History:
    """Per-epoch metrics of one run. Record 0 is the model before training; record e is after epoch e.

    Keys: `epoch`, `time` (seconds since the start), `train_loss_running` (mean loss over the epoch's
    mini-batches, as most frameworks report it), and `<split>_loss`, `<split>_acc` for every split
    (train, valid, test) measured on the whole split at the end of the epoch.
    """

    records: list[dict[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> np.ndarray:
        if not self.records or key not in self.records[-1]:
            known = ", ".join(self.records[-1]) if self.records else "none yet"
            raise KeyError(f"History has no metric {key!r}; it has: {known}")
        return np.array([record.get(key, np.nan) for record in self.records], dtype=float)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def final(self) -> dict[str, float]:
        """The metrics after the last epoch."""
        return self.records[-1]

    def best(self, metric: str = "valid_loss", mode: str = "min") -> dict[str, float]:
        """The record (epoch) where `metric` is lowest (mode='min') or highest (mode='max')."""
        values = self[metric]
        index = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
        return self.records[index]

    def frame(self):
        """The history as a pandas DataFrame, one row an epoch."""
        import pandas as pd

        return pd.DataFrame(self.records).set_index("epoch")

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "meta": self.meta}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> History:
        return cls(records=list(value["records"]), meta=dict(value.get("meta", {})))


class Callback:
    """Hooks into fit(). Override what you need; on_epoch returning True stops training."""

    def on_step(self, model: nn.Module) -> None:
        """After every optimiser step (for example, re-apply a pruning mask)."""

    def on_epoch(self, history: History, model: nn.Module) -> bool | None:
        """After every epoch's evaluation; return True to stop."""

    def on_end(self, history: History, model: nn.Module) -> None:
        """Once, after the last epoch."""


class EarlyStopping(Callback):
    """Stop when `metric` has not improved for `patience` epochs; optionally restore the best weights.

    The chosen epoch is recorded in history.meta['best_epoch'] and the stopping epoch in
    history.meta['stopped_epoch'].
    """

    def __init__(self, metric: str = "valid_loss", patience: int = 10, mode: str = "min", restore_best: bool = True):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.metric, self.patience, self.mode, self.restore_best = metric, patience, mode, restore_best
        self.best_value = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, Tensor] | None = None

    def on_epoch(self, history: History, model: nn.Module) -> bool:
        record = history.final
        if self.metric not in record:
            raise KeyError(f"EarlyStopping watches {self.metric!r}, which fit() does not record; "
                           f"it records {', '.join(record)}. Hold out a validation split with data.hold_out().")
        value = record[self.metric]
        better = value < self.best_value if self.mode == "min" else value > self.best_value
        if better:
            self.best_value, self.best_epoch = value, int(record["epoch"])
            if self.restore_best:
                self.best_state = copy.deepcopy(model.state_dict())
        return record["epoch"] - self.best_epoch >= self.patience

    def on_end(self, history: History, model: nn.Module) -> None:
        history.meta.update(best_epoch=self.best_epoch, stopped_epoch=int(history.final["epoch"]))
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)


class Record(Callback):
    """Measure more after every epoch: Record(noisy_acc=lambda model: ...) adds the number `noisy_acc` to each
    epoch's record (from epoch 1; record 0 has none)."""

    def __init__(self, **metrics: Callable[[nn.Module], float]):
        self.metrics = metrics

    def on_epoch(self, history: History, model: nn.Module) -> None:
        history.final.update({name: float(measure(model)) for name, measure in self.metrics.items()})


def make_optimizer(spec: OptimizerSpec, params, lr: float, weight_decay: float = 0.0, momentum: float = 0.9) -> torch.optim.Optimizer:
    """'sgd' (with momentum), 'adam', 'adamw', or a callable params -> optimizer."""
    if callable(spec):
        return spec(params)
    makers = {
        "sgd": lambda: torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay),
        "adam": lambda: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay),
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay),
    }
    if spec not in makers:
        raise ValueError(f"Unknown optimizer {spec!r}; use one of {', '.join(makers)} or a callable.")
    return makers[spec]()


@torch.inference_mode()
def evaluate(model: nn.Module, split: TensorData, loss: str = "cross_entropy", n_classes: int | None = None,
             batch_size: int = 8192) -> dict[str, float]:
    """Mean loss (and accuracy, for classes) of `model` on a whole split, in eval mode."""
    loss_fn = mean_loss(loss, n_classes)
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=split.device)
    correct = torch.zeros((), device=split.device)
    with autocast(split.device):
        for x, y in split.batches(batch_size, shuffle=False):
            out = model(x).float()
            total_loss += loss_fn(out, y) * len(y)
            if n_classes:
                correct += (out.argmax(1) == y).sum()
    model.train(was_training)
    result = {"loss": total_loss.item() / len(split)}
    if n_classes:
        result["acc"] = correct.item() / len(split)
    return result


def fit(model: nn.Module, data: DataSet, *, epochs: int, optimizer: OptimizerSpec = "adam", lr: float = 1e-3,
        weight_decay: float = 0.0, momentum: float = 0.9, batch_size: int = 100, loss: str = "cross_entropy",
        seed: int = 0, callbacks: Sequence[Callback] = (), penalty: Callable[[nn.Module], Tensor] | None = None,
        augment: Callable[[Tensor], Tensor] | None = None, label_smoothing: float = 0.0,
        gradient: gradients.Aggregate | None = None, adversary: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None,
        progress: bool | None = None) -> History:
    """Train `model` on data.train for `epochs` epochs and measure every split after each epoch.

    `seed` fixes the batch order, dropout and augmentation; seed the model's initialisation yourself
    (gt.seed_everything) before building it. Regularizers: `penalty(model)` is added to every batch's loss
    (gt.regularize.l1_penalty), `augment(x)` transforms every training batch, `label_smoothing` smooths the
    training targets. The losses measured on each split are always the plain ones, so runs stay comparable.
    `gradient` replaces the batch's mean gradient by another aggregate of its per-example gradients
    (gt.gradients.winsorized(c), gt.gradients.median_of_means(3)); the penalty's gradient is added to it.
    `adversary(model, x, y)` replaces every training batch by perturbed inputs (adversarial training, for example
    with gt.attacks.fgsm); it runs after `augment`.
    Raises DivergedError if the loss becomes NaN or infinite.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be at least 0, got {epochs}")
    if gradient is not None and label_smoothing:
        raise ValueError("gradient= aggregates the plain per-example losses; it does not combine with label_smoothing.")
    dev = data.train.device
    model.to(dev)
    loss_fn = mean_loss(loss, data.n_classes, label_smoothing)
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=weight_decay, momentum=momentum)
    order = generator(seed)
    torch.manual_seed(seed)  # dropout and any other randomness inside the model
    step_hooks = [cb for cb in callbacks if type(cb).on_step is not Callback.on_step]
    history = History(meta=dict(optimizer=optimizer if isinstance(optimizer, str) else "custom", lr=lr,
                                weight_decay=weight_decay, batch_size=batch_size, loss=loss, seed=seed,
                                label_smoothing=label_smoothing, penalty=penalty is not None, augment=augment is not None,
                                adversary=adversary is not None,
                                gradient="mean" if gradient is None else getattr(gradient, "__qualname__", "custom")))
    start = time.perf_counter()

    def measure(epoch: int, running: float) -> None:
        record = {"epoch": epoch, "time": time.perf_counter() - start, "train_loss_running": running}
        for name, split in data.splits.items():
            for key, value in evaluate(model, split, loss, data.n_classes).items():
                record[f"{name}_{key}"] = value
        history.records.append(record)

    measure(0, math.nan)
    show = config.show_progress() if progress is None else progress
    bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not show, leave=False)
    for epoch in bar:
        model.train()
        total = torch.zeros((), device=dev)
        for x, y in data.train.batches(batch_size, order):
            if augment is not None:
                x = augment(x)
            if adversary is not None:
                x = adversary(model, x, y)
            opt.zero_grad(set_to_none=True)
            if gradient is None:
                with autocast(dev):
                    batch_loss = loss_fn(model(x).float(), y)
                (batch_loss if penalty is None else batch_loss + penalty(model)).backward()
            else:
                each, losses = gradients.per_example(model, x, y, loss=loss, n_classes=data.n_classes)
                batch_loss = losses.mean()
                for name, step in gradient(each).items():
                    model.get_parameter(name).grad = step
                if penalty is not None:
                    penalty(model).backward()
            opt.step()
            for cb in step_hooks:
                cb.on_step(model)
            total += batch_loss.detach() * len(y)
        running = total.item() / len(data.train)
        if not math.isfinite(running):
            bar.close()
            raise DivergedError(
                f"Training diverged in epoch {epoch}: the training loss became {running}. Try a smaller learning "
                f"rate (lr={lr} now), a smaller initialisation or gradient clipping, and check the inputs for NaN "
                "or very large values."
            )
        measure(epoch, running)
        bar.set_postfix({k: f"{v:.3f}" for k, v in history.final.items() if k.endswith(("_loss", "_acc"))}, refresh=False)
        if any([cb.on_epoch(history, model) for cb in callbacks]):
            break
    bar.close()
    for cb in callbacks:
        cb.on_end(history, model)
    return history
