"""Small changes to the input that change a network's answer: gradient attacks under an L-infinity budget, a
one-coordinate attack by differential evolution, and how often a one-step shift flips a prediction.

Every attack runs the model in eval mode, on the inputs' device, and keeps its result inside the budget and inside
the data's valid range `bounds` = (low, high) when one is given.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .data import TensorData
from .device import generator
from .losses import mean_loss
from .models import evaluating

Bounds = tuple[float, float] | None


def _input_gradient(model: nn.Module, x: Tensor, y: Tensor, loss: str, n_classes: int | None) -> Tensor:
    """The gradient of the mean loss with respect to the inputs, the model in eval mode (restored after)."""
    with evaluating(model):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            value = mean_loss(loss, n_classes)(model(x), y)
            (gradient,) = torch.autograd.grad(value, x)
    return gradient


def _clip(x: Tensor, bounds: Bounds) -> Tensor:
    return x if bounds is None else x.clamp(*bounds)


def fgsm(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, bounds: Bounds = None, loss: str = "cross_entropy",
         n_classes: int | None = 10) -> Tensor:
    """The fast gradient sign method (Goodfellow, Shlens & Szegedy 2015): x + eps * sign(grad_x loss), clipped to
    `bounds`. One gradient, the steepest ascent of the loss's linearisation under ``|delta|_inf <= eps``."""
    if eps < 0:
        raise ValueError(f"eps must be at least 0, got {eps}")
    return _clip(x + eps * _input_gradient(model, x, y, loss, n_classes).sign(), bounds).detach()


def pgd(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, steps: int = 10, step_size: float | None = None,
        random_start: bool = False, bounds: Bounds = None, loss: str = "cross_entropy", n_classes: int | None = 10,
        seed: int = 0) -> Tensor:
    """Projected gradient descent on the loss (Madry et al. 2018): `steps` signed-gradient steps of `step_size`
    (default 2.5 * eps / steps), each projected back into the eps-box around x and into `bounds`. With one step of
    size eps and no random start, it is FGSM."""
    if eps < 0 or steps < 1:
        raise ValueError(f"need eps >= 0 and steps >= 1, got eps={eps}, steps={steps}")
    step_size = 2.5 * eps / steps if step_size is None else step_size
    adversarial = x.detach()
    if random_start:
        noise = torch.rand(x.shape, generator=generator(seed)).to(x.device) * 2 - 1
        adversarial = _clip(x + eps * noise, bounds)
    for _ in range(steps):
        adversarial = adversarial + step_size * _input_gradient(model, adversarial, y, loss, n_classes).sign()
        adversarial = _clip(torch.max(torch.min(adversarial, x + eps), x - eps), bounds).detach()
    return adversarial


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    return (model(x).argmax(1) == y).float().mean().item()


def robust_accuracy(model: nn.Module, split: TensorData, eps: float, *, attack: str = "pgd", bounds: Bounds = None,
                    batch_size: int = 1000, restarts: int = 1, **options) -> float:
    """Accuracy on `split` when every example is first perturbed by `attack` ('fgsm' or 'pgd') with budget eps.
    With `restarts` > 1 (PGD only), PGD runs that many times from random starts (Madry et al. 2018) and an example
    counts as correct only if it survives every run: a stronger test, and a common check for gradient masking."""
    attacks = {"fgsm": fgsm, "pgd": pgd}
    if attack not in attacks:
        raise ValueError(f"attack must be one of {', '.join(attacks)}, got {attack!r}")
    if restarts < 1 or (restarts > 1 and attack != "pgd"):
        raise ValueError(f"restarts must be at least 1, and more than 1 only with attack='pgd'; "
                         f"got {restarts} with {attack!r}")
    with evaluating(model):
        correct = 0.0
        for batch, (x, y) in enumerate(split.batches(batch_size, shuffle=False)):
            if eps == 0:
                correct += _accuracy(model, x, y) * len(y)
                continue
            if restarts == 1:
                survived = _correct(model, attacks[attack](model, x, y, eps, bounds=bounds, **options), y)
            else:
                survived = torch.ones_like(y, dtype=torch.bool)
                for run in range(restarts):  # each restart from its own random start
                    start = {"random_start": True, "seed": options.get("seed", 0) + 7919 * batch + run}
                    adversarial = pgd(model, x, y, eps, bounds=bounds, **{**options, **start})
                    survived &= _correct(model, adversarial, y)
            correct += survived.float().sum().item()
    return correct / len(split)


@torch.no_grad()
def _correct(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return model(x).argmax(1) == y


# --- one coordinate -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OnePixel:
    """The result of a one-coordinate attack on one input: whether the prediction changed, where and to what."""

    success: bool
    index: int
    value: float
    true_probability: float  # the model's probability of the true class after the change


def one_pixel(model: nn.Module, x: Tensor, y: int, bounds: tuple[float, float], *, max_change: float | None = None,
              population: int = 40, iterations: int = 30, seed: int = 0) -> OnePixel:
    """Change one coordinate of the input `x` (any shape) to any value in `bounds` so as to make another class more
    likely than the true class `y` (Su, Vargas & Sakurai 2019): scipy's differential evolution over (position, value)
    minimises the true class's lead in log-probability. With `max_change`, the new value also stays within
    max_change of the old one (a budget on the size of the change, not only on the number of coordinates).
    The whole population is evaluated in one forward pass; the search stops as soon as the prediction changes."""
    from scipy.optimize import differential_evolution

    if max_change is not None and not max_change > 0:
        raise ValueError(f"max_change must be positive or None, got {max_change}")
    flat = x.detach().reshape(-1)
    size = flat.numel()
    # the search's second variable: the new value itself, or its change from the old value
    second = bounds if max_change is None else (-max_change, max_change)

    def values(candidates: np.ndarray, positions: Tensor) -> Tensor:
        chosen = torch.as_tensor(candidates[1], dtype=flat.dtype, device=flat.device)
        return chosen if max_change is None else (flat[positions] + chosen).clamp(*bounds)

    @torch.no_grad()
    def probabilities(candidates: np.ndarray) -> Tensor:  # candidates: (2, S) positions and values (or changes)
        positions = torch.as_tensor(candidates[0], device=flat.device).round().long().clamp(0, size - 1)
        batch = flat.repeat(candidates.shape[1], 1)
        batch[torch.arange(len(batch), device=flat.device), positions] = values(candidates, positions)
        return model(batch.reshape(-1, *x.shape)).softmax(1)

    def objective(candidates: np.ndarray) -> np.ndarray:  # the true class's lead over the best other: < 0 is a flip
        logp = probabilities(candidates).clamp_min(1e-30).log()
        return (logp[:, y] - torch.cat([logp[:, :y], logp[:, y + 1:]], 1).amax(1)).cpu().numpy()

    def changed(intermediate_result) -> bool:  # scipy passes the best so far; True stops the search
        return bool(probabilities(intermediate_result.x[:, None]).argmax(1).item() != y)

    with evaluating(model):
        found = differential_evolution(objective, [(0, size - 1), second], integrality=[True, False], popsize=population // 2,
                                       maxiter=iterations, vectorized=True, updating="deferred", polish=False, seed=seed,
                                       callback=changed, tol=0)
        best = probabilities(found.x[:, None])[0]
    index = int(round(found.x[0]))
    value = float(values(found.x[:, None], torch.tensor([index], device=flat.device))[0])
    return OnePixel(success=bool(best.argmax().item() != y), index=index, value=value, true_probability=float(best[y]))


# --- shifts -------------------------------------------------------------------------------------------------------

def shift(x: Tensor, steps: int = 1, *, dim: int = -1, mode: str = "circular") -> Tensor:
    """x shifted by `steps` positions along `dim`: 'circular' wraps around, 'zeros' fills the vacated positions with 0."""
    if mode == "circular":
        return torch.roll(x, steps, dims=dim)
    if mode != "zeros":
        raise ValueError(f"mode must be 'circular' or 'zeros', got {mode!r}")
    moved = torch.roll(x, steps, dims=dim)
    index = torch.arange(x.shape[dim], device=x.device)
    vacated = index < steps if steps >= 0 else index >= x.shape[dim] + steps
    shape = [1] * x.ndim
    shape[dim] = -1
    return moved.masked_fill(vacated.view(shape), 0)


@torch.no_grad()
def shift_flip_rate(model: nn.Module, x: Tensor, steps: int = 1, *, dim: int = -1, mode: str = "circular") -> float:
    """The share of inputs whose predicted class changes when they are shifted by `steps` (Azulay & Weiss 2019)."""
    with evaluating(model):
        return (model(x).argmax(1) != model(shift(x, steps, dim=dim, mode=mode)).argmax(1)).float().mean().item()


def random_shifts(max_steps: int, seed: int = 0):
    """An augmentation for gt.fit: every example circularly shifted along its last dimension by its own random
    number of steps in [-max_steps, max_steps]."""
    gen = generator(seed)

    def augment(x: Tensor) -> Tensor:
        length = x.shape[-1]
        steps = torch.randint(-max_steps, max_steps + 1, (len(x),), generator=gen).to(x.device)
        index = (torch.arange(length, device=x.device) - steps.view(-1, *[1] * (x.ndim - 1))) % length
        return x.gather(-1, index.expand(x.shape))

    return augment
