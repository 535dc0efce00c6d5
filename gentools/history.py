"""What a training run leaves behind and how to hook into it: History (the per-epoch metrics), and callbacks
for early stopping and for measuring more."""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor, nn


@dataclass
class History:
    """Per-epoch metrics of one run. Record 0 is the model before training; record e is after epoch e.

    Keys: `epoch`, `time` (seconds since the start), `train_loss_running` and, for classes, `train_acc_running`
    (mean loss and accuracy over the epoch's mini-batches, as most frameworks report them), and `<split>_loss`,
    `<split>_acc` for every split (train, valid, test) measured on the whole split at the end of the epoch (with
    fit's measure_every, only every so many epochs: NaN in between).
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

    def reaches(self, metric: str, level: float) -> float:
        """The first epoch at which `metric` is at least `level` (for example the epochs needed to fit the training
        set: reaches('train_acc_running', 0.99)); NaN if it never does."""
        hits = np.nonzero(self[metric] >= level)[0]
        return float(self.records[hits[0]]["epoch"]) if len(hits) else math.nan

    def frame(self):
        """The history as a pandas DataFrame, one row an epoch."""
        import pandas as pd

        return pd.DataFrame(self.records).set_index("epoch")

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "meta": self.meta}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> History:
        return cls(records=list(value["records"]), meta=dict(value.get("meta", {})))


def frames(runs, *keys: str, column: str = "history"):
    """The histories of a sweep's runs as one table, one row a run and an epoch, each row labelled with the run's
    `keys` (its grid values): the shape that gt.plots.metric_vs and groupby want."""
    import pandas as pd

    return pd.concat([run[column].frame().reset_index().assign(**{key: run[key] for key in keys})
                      for _, run in runs.iterrows()], ignore_index=True)


def at_level(runs, column: str, level: float, read: str | Sequence[str], by: str | Sequence[str] = ()):
    """What `read` was when `column` first reached `level` along a run's epochs, interpolated between epochs; NaN if
    it never did, or if it had already reached it at the first epoch recorded (when is then unknown). Compares
    training rules at equal progress, not at equal time, so that a rule that only trains more slowly is not mistaken
    for one that learns differently. `runs` is a frames() table: of one run (a float, or a Series if `read` is a
    list), or of many, told apart by the keys `by` (then one row a run). Epochs where `column` is NaN are skipped."""
    import pandas as pd

    keys = [by] if isinstance(by, str) else list(by)
    if keys:
        groups = runs.groupby(keys if len(keys) > 1 else keys[0], sort=False)
        values = {key: at_level(run, column, level, read) for key, run in groups}
        return (pd.Series(values) if isinstance(read, str) else pd.DataFrame(values).T).rename_axis(keys)
    if runs["epoch"].duplicated().any():
        raise ValueError("at_level: the table holds several runs (an epoch appears twice); name the keys that tell "
                         "them apart with by=")
    run = runs.dropna(subset=[column]).sort_values("epoch")
    reached = np.maximum.accumulate(run[column].to_numpy(dtype=float))
    first = np.r_[True, np.diff(reached) > 0]                       # the epochs at which a new height is first reached
    values = {name: float(np.interp(level, reached[first], run[name].to_numpy(dtype=float)[first],
                                    left=np.nan, right=np.nan))
              for name in ([read] if isinstance(read, str) else read)}
    return values[read] if isinstance(read, str) else pd.Series(values)


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
        if isinstance(history, list):
            raise TypeError("EarlyStopping stops one model; a stack trains every member for the same epochs: "
                            "take each member's best epoch from its History (History.best).")
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


class StopAt(Callback):
    """Stop once `metric` is at or below `value` (or at or above it, mode='max'): Jiang et al. (2020) train every
    network of a comparison to the same training loss, so that no measure is confounded with how long each trained.
    The epoch is recorded in history.meta['stopped_epoch'] and in `reached` (None if never reached), both set
    afresh by each fit the instance watches."""

    def __init__(self, metric: str = "train_loss_running", value: float = 0.01, mode: str = "min"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.metric, self.value, self.mode, self.reached = metric, value, mode, None

    def on_epoch(self, history: History, model: nn.Module) -> bool:
        if isinstance(history, list):
            raise TypeError("StopAt stops one model; a stack trains every member for the same epochs.")
        record = history.final
        if self.metric not in record:
            raise KeyError(f"StopAt watches {self.metric!r}, which fit() does not record; it records {', '.join(record)}.")
        value = record[self.metric]
        met = (value <= self.value) if self.mode == "min" else (value >= self.value)
        self.reached = int(record["epoch"]) if met else None
        return met

    def on_end(self, history: History, model: nn.Module) -> None:
        history.meta["stopped_epoch"] = self.reached


class Record(Callback):
    """Measure more after every measured epoch: Record(noisy_acc=lambda model: ...) adds the number `noisy_acc` to
    each such record (from epoch 1; record 0 has none). For a stack, `measure(model)` gives one number per member."""

    def __init__(self, **metrics: Callable[[nn.Module], float]):
        self.metrics = metrics

    def on_epoch(self, history: History | list[History], model: nn.Module) -> None:
        for name, measure in self.metrics.items():
            if isinstance(history, list):
                for member, value in zip(history, np.asarray(measure(model), dtype=float), strict=True):
                    member.final[name] = float(value)
            else:
                history.final[name] = float(measure(model))
