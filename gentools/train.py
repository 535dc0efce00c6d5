"""One training contract for every chapter: fit() trains one model, or a stack of K same-shaped ones
(gt.models.StackedMLP: seeds, noise levels, label sets) at once, and returns History; evaluate() measures a split;
fitted() trains one model through the cache, for the cells that need its weights.

The loop keeps everything on the device: batches are index slices of resident tensors, the running loss
is summed on the device, and the host reads numbers once an epoch (a stack: once a measurement), never per step.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune
from tqdm.auto import tqdm

from . import config
from .data import DataSet, TensorData
from .device import autocast, generator, random_state_kept, run_seed
from .history import Callback, EarlyStopping, History, Record, StopAt, at_level, frames  # noqa: F401  (gt.train.History and friends)
from .losses import mean_loss, per_example_loss
from .models import StackedMLP, evaluating
from .settings import Settings
from .sweep import sweep


class TrainingOutsideCache(RuntimeError):
    """gt.fit was called while GENTOOLS_CACHED_ONLY is set (gentools.config.cached_only)."""


_UNCACHED_ALLOWED = contextvars.ContextVar("training outside the cache allowed", default=False)


@contextlib.contextmanager
def uncached_training():
    """Let fit train under GENTOOLS_CACHED_ONLY: for an exercise check's reference runs, which are not cached, so that
    no file holds the numbers a student is asked to produce."""
    token = _UNCACHED_ALLOWED.set(True)
    try:
        yield
    finally:
        _UNCACHED_ALLOWED.reset(token)


class DivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


def make_optimizer(settings: Settings, params) -> torch.optim.Optimizer:
    """The optimiser `settings` name ('sgd' with momentum, 'adam', 'adamw', or a callable params -> optimizer)."""
    spec, lr, weight_decay = settings.optimizer, settings.lr, settings.weight_decay
    if callable(spec):
        return spec(params)
    makers = {
        "sgd": lambda: torch.optim.SGD(params, lr=lr, momentum=settings.momentum, weight_decay=weight_decay),
        "adam": lambda: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay),
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay),
    }
    return makers[spec]()


@torch.inference_mode()
def evaluate(model: nn.Module, split: TensorData | Sequence[TensorData], loss: str | None = None,
             n_classes: int | None = None, batch_size: int = 8192) -> dict[str, float] | list[dict[str, float]]:
    """Mean loss (and accuracy, for classes) of `model` on a whole split, in eval mode. The loss defaults to
    cross-entropy for classes and squared error otherwise. For a StackedMLP: one dict per member, each on its own
    split (a list of K) or all on the same one."""
    loss = loss or ("cross_entropy" if n_classes else "mse")
    if isinstance(model, StackedMLP):
        x, y = _stacked([split] if isinstance(split, TensorData) else split, len(model), model.weights[0].device)
        measured = _evaluate_stack(model, x, y, loss, n_classes)
        return [dict(zip(measured, values)) for values in zip(*(v.tolist() for v in measured.values()))]
    loss_fn = mean_loss(loss, n_classes)
    total_loss = torch.zeros((), device=split.device)
    correct = torch.zeros((), device=split.device)
    with evaluating(model), autocast(split.device):
        for x, y in split.batches(batch_size, shuffle=False):
            out = model(x).float()
            total_loss += loss_fn(out, y) * len(y)
            if n_classes:
                correct += (out.argmax(1) == y).sum()
    result = {"loss": total_loss.item() / len(split)}
    if n_classes:
        result["acc"] = correct.item() / len(split)
    return result


def accuracy_on(n_classes: int, **splits: TensorData) -> Record:
    """A callback that records the accuracy on each named split after every measured epoch: with
    `accuracy_on(10, clean_fit=kept, noisy_fit=changed)` the history gains `clean_fit` and `noisy_fit`."""
    return Record(**{name: (lambda net, split=split: evaluate(net, split, n_classes=n_classes)["acc"])
                     for name, split in splits.items()})


def fit(model: nn.Module, data: DataSet | Sequence[DataSet], settings: Settings | None = None, *,
        callbacks: Sequence[Callback] = (), penalty: Callable[[nn.Module], Tensor] | None = None,
        augment: Callable[[Tensor], Tensor] | None = None, label_smoothing: float = 0.0,
        gradient: Callable[..., Any] | None = None, adversary: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None,
        progress: bool | None = None, **changes: Any) -> History | list[History]:
    """Train `model` on data.train as `settings` say (a gt.Settings; `changes` are settings given or changed by
    keyword: ``fit(model, data, epochs=50, lr=1e-2)``) and measure the splits as it goes.

    Every split (or those named in settings.measure) is measured on the whole split before training, every
    settings.measure_every epochs (None: never between) and after the last, and callbacks' on_epoch runs after each
    measurement; the running training loss (and accuracy) over each epoch's mini-batches is recorded every epoch.
    The seed (default 0) fixes the batch order, dropout and augmentation; seed the model's initialisation yourself
    (gt.seed_everything) before building it. Regularizers: `penalty(model)` is added to every batch's loss
    (gt.regularize.l1_penalty), `augment(x)` transforms every training batch, `label_smoothing` smooths the
    training targets. The losses measured on each split are always the plain ones, so runs stay comparable.
    `gradient` replaces the batch's mean gradient by another aggregate of its per-example gradients
    (gt.gradients.winsorized(c), gt.gradients.median_of_means(3), any function marked gt.gradients.aggregate); the
    penalty's gradient is added to it.
    `adversary(model, x, y)` replaces every training batch by perturbed inputs (adversarial training, for example
    with gt.attacks.fgsm); it runs after `augment`.

    A gt.models.StackedMLP of K members trains all of them at once, each on its own data set (`data` a list of K
    with the same split sizes) or all on one, and returns K Histories: member i's equals what gt.fit would give
    member i alone with seed=seeds[i] (the stack's seeds unless `seed` is given). Callbacks then see the list of
    Histories. The per-batch options (penalty, augment, label_smoothing, gradient, adversary) are single-model only.
    Raises DivergedError if the loss becomes NaN or infinite.
    """
    settings = Settings.of(settings, **changes)
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if config.cached_only() and not _UNCACHED_ALLOWED.get():
        raise TrainingOutsideCache("GENTOOLS_CACHED_ONLY is set, so every training run must come from the cache, but "
                                   "gt.fit was called: train through gt.sweep or gt.fitted, whose results are cached (if "
                                   "you did, their cache missed, or was off: a warning above then says why).")
    if gradient is not None and not hasattr(gradient, "backward"):
        raise TypeError("gradient= takes an aggregate of per-example gradients: gt.gradients.mean, winsorized(c), "
                        "median_of_means(k), or a function marked with @gt.gradients.aggregate")
    if gradient is not None and label_smoothing:
        raise ValueError("gradient= aggregates the plain per-example losses; it does not combine with label_smoothing.")
    first = data if isinstance(data, DataSet) else data[0]
    settings = settings.replace(loss=settings.loss or ("cross_entropy" if first.n_classes else "mse"),
                                measure_every=settings.measure_every or max(settings.epochs, 1))
    names = list(first.splits) if settings.measure is None else list(settings.measure)
    if unknown := [name for name in names if name not in first.splits]:
        raise ValueError(f"measure names splits the data does not have: {unknown}; it has {list(first.splits)}")
    if isinstance(model, StackedMLP):
        single_only = dict(penalty=penalty, augment=augment, label_smoothing=label_smoothing, gradient=gradient,
                           adversary=adversary)
        if used := [name for name, value in single_only.items() if value]:
            raise ValueError(f"{', '.join(used)} apply to a single model; train the members one by one with gt.fit.")
        return _fit_stack(model, data, settings, callbacks=callbacks, names=names, progress=progress)
    if not isinstance(data, DataSet):
        raise TypeError("a single model trains on one DataSet; a list of data sets needs a gt.models.StackedMLP")
    if isinstance(settings.seed, tuple):
        raise ValueError(f"a single model trains with one seed, got {list(settings.seed)}")
    seed = 0 if settings.seed is None else settings.seed
    epochs, loss, measure_every, batch_size = settings.epochs, settings.loss, settings.measure_every, settings.batch_size
    dev = data.train.device
    model.to(dev)
    loss_fn = mean_loss(loss, data.n_classes, label_smoothing)
    opt = make_optimizer(settings, model.parameters())
    order = generator(seed)
    torch.manual_seed(run_seed(seed))  # dropout and any other randomness inside the model
    step_hooks = [cb for cb in callbacks if type(cb).on_step is not Callback.on_step]
    history = History(meta=_meta(settings, seed, label_smoothing=label_smoothing,
                                 penalty=penalty is not None, augment=augment is not None, adversary=adversary is not None,
                                 gradient="mean" if gradient is None else getattr(gradient, "__qualname__", "custom")))
    start = time.perf_counter()

    def record(epoch: int, running: dict[str, float]) -> bool:
        history.records.append({"epoch": epoch, "time": time.perf_counter() - start, **running})
        if epoch % measure_every and epoch != epochs:
            return False
        for name in names:
            for key, value in evaluate(model, data.splits[name], loss, data.n_classes).items():
                history.final[f"{name}_{key}"] = value
        return True

    record(0, {"train_loss_running": math.nan})
    show = config.show_progress() if progress is None else progress
    bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not show, leave=False)
    for epoch in bar:
        model.train()
        total = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev)
        for x, y in data.train.batches(batch_size, order):
            if augment is not None:
                x = augment(x)
            if adversary is not None:
                x = adversary(model, x, y)
            opt.zero_grad(set_to_none=True)
            if gradient is None:
                with autocast(dev):
                    out = model(x).float()
                    batch_loss = loss_fn(out, y)
                (batch_loss if penalty is None else batch_loss + penalty(model)).backward()
            else:
                batch_loss, out = gradient.backward(model, x, y, loss=loss, n_classes=data.n_classes).mean(), None
                if penalty is not None:
                    penalty(model).backward()
            opt.step()
            for cb in step_hooks:
                cb.on_step(model)
            total += batch_loss.detach() * len(y)
            if data.n_classes and out is not None:
                correct += (out.detach().argmax(1) == y).sum()
        running = {"train_loss_running": total.item() / len(data.train)}
        if data.n_classes and gradient is None:
            running["train_acc_running"] = correct.item() / len(data.train)
        _check_finite(running["train_loss_running"], epoch, settings.lr)
        if record(epoch, running) and _measured(bar, history.final, callbacks, history, model):
            break
    return _finish(bar, callbacks, history, model)


def fitted(build: Callable[[], nn.Module], data: DataSet, settings: Settings | None = None, *, name: str, seed: int = 0,
           **options: Any) -> tuple[nn.Module, History]:
    """A trained model, for the cells that need the model itself, trained once: build() (after
    gt.seed_everything(seed)) trained by ``fit(model, data, settings, seed=seed, **options)``. Its weights and History
    are cached as a gt.sweep run named `name`, so the notebook's next execution (a restarted kernel, the book build
    after the tests) reads them instead of training again. Returns (model, history), the model on the data's device
    and in training mode, as fit leaves it.
    """
    if "seed" in options or (settings is not None and settings.seed is not None):
        raise ValueError("gt.fitted takes the run's seed as seed= (it seeds the initialisation and the batch order); "
                         "leave the settings' seed unset.")
    table = sweep(_fit_and_keep, grid=dict(seed=[seed]), name=name,
                  fixed=dict(build=build, data=data, settings=settings, options=options))
    with random_state_kept():
        model = build().to(data.train.device)
    weights = table["weights"].iloc[0]
    if set(weights) != set(model.state_dict()):
        raise ValueError(f"gt.fitted {name!r}: the trained model's weights ({', '.join(weights)}) are not those of a "
                         f"model build() returns ({', '.join(model.state_dict())}); make every change to the model "
                         "(masks, new layers) inside build().")
    model.load_state_dict({key: torch.as_tensor(np.asarray(weights[key]), dtype=value.dtype).reshape(value.shape)
                           for key, value in model.state_dict().items()})
    for module in model.modules():  # a pruned layer's weight is recomputed from its loaded original and mask
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, torch_prune.BasePruningMethod):
                hook(module, ())
    return model, table["history"].iloc[0]


def _fit_and_keep(build: Callable[[], nn.Module], data: DataSet, settings: Settings | None, options: dict[str, Any],
                  seed: int) -> dict:
    model = build()
    history = fit(model, data, settings, **{**options, "seed": seed})
    return {"history": history, "weights": model.state_dict()}


def _measured(bar, shown: dict[str, float], callbacks: Sequence[Callback], history, model: nn.Module) -> bool:
    """After a measurement: show it on the progress bar and run the callbacks; True if one asks to stop."""
    bar.set_postfix({key: f"{value:.3f}" for key, value in shown.items() if key.endswith(("_loss", "_acc"))}, refresh=False)
    return any([cb.on_epoch(history, model) for cb in callbacks])


def _finish(bar, callbacks: Sequence[Callback], history, model: nn.Module):
    bar.close()
    for cb in callbacks:
        cb.on_end(history, model)
    return history


def _meta(settings: Settings, seed: int, **more) -> dict:
    return dict(optimizer=settings.optimizer if isinstance(settings.optimizer, str) else "custom", lr=settings.lr,
                weight_decay=settings.weight_decay, batch_size=settings.batch_size, loss=settings.loss, seed=seed, **more)


def _check_finite(running_loss: float, epoch: int, lr: float, members: list[int] | None = None) -> None:
    if math.isfinite(running_loss) and not members:
        return
    who = f" for members {members}" if members else ""
    raise DivergedError(
        f"Training diverged in epoch {epoch}{who}: the training loss became {running_loss}. Try a smaller learning "
        f"rate (lr={lr} now), a smaller initialisation or gradient clipping, and check the inputs for NaN or very "
        "large values.")


def _stacked(parts: Sequence[TensorData], k: int, dev: torch.device) -> tuple[Tensor, Tensor]:
    """K splits as (K, n, ...) inputs and (K, n[, out]) targets; one shared split as a view (no copy)."""
    if len(parts) == 1:
        return parts[0].x.to(dev).expand(k, *parts[0].x.shape), parts[0].y.to(dev).expand(k, *parts[0].y.shape)
    if len(parts) != k or len({len(part) for part in parts}) != 1:
        raise ValueError(f"a stack of {k} trains on one data set or {k} with the same split sizes; got "
                         f"{len(parts)} of sizes {sorted({len(part) for part in parts})}")
    return torch.stack([part.x for part in parts]).to(dev), torch.stack([part.y for part in parts]).to(dev)


def _member_losses(out: Tensor, y: Tensor, loss: str, n_classes: int | None) -> Tensor:
    """Mean loss of each member over its batch: shape (K,)."""
    return per_example_loss(loss, n_classes)(out, y).flatten(1).mean(1)


@torch.inference_mode()
def _evaluate_stack(model: StackedMLP, x: Tensor, y: Tensor, loss: str, n_classes: int | None,
                    batch_size: int = 8192) -> dict[str, Tensor]:
    """Each member's mean loss (and accuracy) on its (K, n, ...) split: tensors of shape (K,), on the device."""
    total = torch.zeros(len(model), device=x.device)
    correct = torch.zeros(len(model), device=x.device)
    for start in range(0, x.shape[1], batch_size):
        xb, yb = x[:, start:start + batch_size], y[:, start:start + batch_size]
        out = model(xb).float()
        total += per_example_loss(loss, n_classes)(out, yb).flatten(1).sum(1)
        if n_classes:
            correct += (out.argmax(-1) == yb).sum(1)
    result = {"loss": total / x.shape[1]}
    if n_classes:
        result["acc"] = correct / x.shape[1]
    return result


def _fit_stack(model: StackedMLP, data: DataSet | Sequence[DataSet], settings: Settings, *,
               callbacks: Sequence[Callback], names: list[str], progress: bool | None) -> list[History]:
    """fit() for a StackedMLP: the same loop, every member's batch drawn by its own generator, all on the device."""
    datasets = [data] if isinstance(data, DataSet) else list(data)
    k, dev = len(model), model.weights[0].device
    n_classes = datasets[0].n_classes
    splits = {name: _stacked([d.splits[name] for d in datasets], k, dev) for name in {"train", *names}}
    x, y = splits["train"]
    n = x.shape[1]
    seed, epochs, loss, batch_size, measure_every = (settings.seed, settings.epochs, settings.loss, settings.batch_size,
                                                     settings.measure_every)
    seeds = model.seeds if seed is None else [seed] * k if isinstance(seed, int) else list(seed)
    if len(seeds) != k:
        raise ValueError(f"seed must be one int or {k} of them, got {len(seeds)}")
    opt = make_optimizer(settings, model.parameters())
    orders = [generator(s) for s in seeds]
    rows = torch.arange(k, device=dev)[:, None]
    step_hooks = [cb for cb in callbacks if type(cb).on_step is not Callback.on_step]
    histories = [History(meta=_meta(settings, s, member=i))
                 for i, s in enumerate(seeds)]
    pending: list[tuple[int, float, dict[str, Tensor]]] = []  # kept on the device, read at the next measurement
    start = time.perf_counter()

    def record(epoch: int, running: dict[str, Tensor]) -> bool:
        pending.append((epoch, time.perf_counter() - start, running))
        if epoch % measure_every and epoch != epochs:
            return False
        measured = {f"{name}_{key}": value for name in names
                    for key, value in _evaluate_stack(model, *splits[name], loss, n_classes).items()}
        for number, (at, seconds, values) in enumerate(pending):
            columns = {**values, **measured} if number == len(pending) - 1 else values
            table = {key: value.tolist() for key, value in columns.items()}
            for i, history in enumerate(histories):
                history.records.append({"epoch": at, "time": seconds, **{key: table[key][i] for key in table}})
        pending.clear()
        if epoch and not all(math.isfinite(h.final["train_loss_running"]) for h in histories):
            bad = [i for i, h in enumerate(histories) if not math.isfinite(h.final["train_loss_running"])]
            _check_finite(math.nan, epoch, settings.lr, bad)
        return True

    record(0, {"train_loss_running": torch.full((k,), math.nan)})
    show = config.show_progress() if progress is None else progress
    bar = tqdm(range(1, epochs + 1), desc=f"{k} models", disable=not show, leave=False)
    for epoch in bar:
        model.train()
        xs, ys = x, y
        if batch_size < n:  # one gather an epoch; the batches are then views
            index = torch.stack([torch.randperm(n, generator=g) for g in orders]).to(dev)
            xs, ys = x[rows, index], y[rows, index]
        total = torch.zeros(k, device=dev)
        correct = torch.zeros(k, device=dev)
        for begin in range(0, n, batch_size):
            xb, yb = xs[:, begin:begin + batch_size], ys[:, begin:begin + batch_size]
            with autocast(dev):
                out = model(xb).float()
                member_loss = _member_losses(out, yb, loss, n_classes)
            opt.zero_grad(set_to_none=True)
            member_loss.sum().backward()  # members share no parameters: each gets its own gradient
            opt.step()
            for cb in step_hooks:
                cb.on_step(model)
            total += member_loss.detach() * yb.shape[1]
            if n_classes:
                correct += (out.detach().argmax(-1) == yb).sum(1)
        running = {"train_loss_running": total / n}
        if n_classes:
            running["train_acc_running"] = correct / n
        if record(epoch, running):
            means = {key: float(np.mean([h.final[key] for h in histories])) for key in histories[0].final}
            if _measured(bar, means, callbacks, histories, model):
                break
    return _finish(bar, callbacks, histories, model)
