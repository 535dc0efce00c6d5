"""How a model is trained, stated once: `gt.Settings` holds the settings that gt.fit and every experiment built on it
take (optimiser, learning rate, epochs, batch size, loss, what to measure and how often, seed), with their defaults
and their checks in one place. A chapter can state its settings once (chapter 3's BASE) and pass them on; a
variation is `settings.replace(lr=...)`. Each bad value gets one clear message before anything trains.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from typing import Any

OPTIMIZERS = ("sgd", "adam", "adamw")
LOSSES = ("cross_entropy", "mse")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings of one training run.

    epochs: passes over the training split. optimizer: 'sgd' (with `momentum`), 'adam', 'adamw', or a callable
    params -> torch optimizer. lr, weight_decay, momentum: the optimiser's. batch_size: examples a step.
    loss: 'cross_entropy' or 'mse' (None: cross-entropy for classes, squared error for regression).
    measure_every: measure the splits every so many epochs (None: only before and after training); measure: the
    splits to measure (None: all). seed: the batch order (and dropout, augmentation); for a stack of models, one seed
    or one per member (None: 0, or the stack's own seeds). Every seed is shifted by GENTOOLS_SEED (device.run_seed).
    """

    epochs: int
    optimizer: str | Callable[[Any], Any] = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    batch_size: int = 100
    loss: str | None = None
    measure_every: int | None = 1
    measure: tuple[str, ...] | None = None
    seed: int | tuple[int, ...] | None = None

    def __post_init__(self):
        if isinstance(self.measure, str):  # one split named alone
            object.__setattr__(self, "measure", (self.measure,))
        for name in ("measure", "seed"):  # lists and arrays become tuples, so that settings stay hashable and frozen
            value = getattr(self, name)
            if not isinstance(value, (str, Integral)) and isinstance(value, Iterable):
                object.__setattr__(self, name, tuple(value))
        for name in ("epochs", "batch_size", "measure_every", "seed"):  # NumPy integers become Python ones
            value = getattr(self, name)
            if isinstance(value, Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
            elif name == "seed" and isinstance(value, tuple):
                object.__setattr__(self, name, tuple(int(s) if isinstance(s, Integral) and not isinstance(s, bool) else s
                                                     for s in value))
        problems = [f"{name} must be {rule}, got {getattr(self, name)!r}" for name, ok, rule in [
            ("epochs", _whole(self.epochs, 0), "a whole number, 0 or more"),
            ("optimizer", callable(self.optimizer) or self.optimizer in OPTIMIZERS,
             f"one of {', '.join(OPTIMIZERS)} or a callable params -> optimizer"),
            ("lr", _number(self.lr, 0), "a number, 0 or more"),
            ("weight_decay", _number(self.weight_decay, 0), "a number, 0 or more"),
            ("momentum", _number(self.momentum, 0) and self.momentum < 1, "in [0, 1)"),
            ("batch_size", _whole(self.batch_size, 1), "a whole number, 1 or more"),
            ("loss", self.loss is None or self.loss in LOSSES, f"None or one of {', '.join(LOSSES)}"),
            ("measure_every", self.measure_every is None or _whole(self.measure_every, 1), "None or a whole number, 1 or more"),
            ("measure", self.measure is None or all(isinstance(name, str) for name in self.measure),
             "None or a list of split names"),
            ("seed", self.seed is None or _whole(self.seed, 0)
             or (isinstance(self.seed, tuple) and all(_whole(s, 0) for s in self.seed)),
             "None, a whole number 0 or more, or a list of them"),
        ] if not ok]
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def of(cls, settings: Settings | None = None, **changes: Any) -> Settings:
        """`settings` with `changes` applied; without settings, new ones from `changes` (which then need epochs)."""
        if unknown := sorted(set(changes) - {field.name for field in dataclasses.fields(cls)}):
            raise TypeError(f"{', '.join(unknown)}: not a training setting; the settings are "
                            f"{', '.join(field.name for field in dataclasses.fields(cls))}.")
        if settings is None:
            if "epochs" not in changes:
                raise TypeError("epochs is needed: pass gt.Settings(epochs=...) or epochs=... as a keyword.")
            return cls(**changes)
        if not isinstance(settings, cls):
            raise TypeError(f"settings must be a gt.Settings, got {type(settings).__name__}")
        return settings.replace(**changes) if changes else settings

    def without_seed(self, who: str) -> Settings:
        """These settings, checked to leave the seed to `who`, which seeds its own runs (their points or members)."""
        if self.seed is not None:
            raise ValueError(f"{who} seeds its runs itself (their seed points or members), so the settings' seed must "
                             f"be left unset, got seed={self.seed!r}")
        return self

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (checked again)."""
        return dataclasses.replace(self, **changes)


def _whole(value: Any, least: int) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= least


def _number(value: Any, least: float) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and value >= least
