"""The bias-variance decomposition, measured by resampling training sets.

For squared error and targets y = f(x) + noise, the expected test error of a learner, averaged over
training sets S and test noise, splits at every test point x into

    E[(f_S(x) - y)^2] = (E_S f_S(x) - f(x))^2 + Var_S f_S(x) + sigma^2
                      =        bias^2         +   variance   +  noise.

decompose() estimates the three terms from the predictions of models fitted to R independent training
sets, and measures the left-hand side directly against fresh noisy targets, so the identity can be checked.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .data import regression_function
from .device import generator
from .settings import Settings


def training_sets(function: str, n: int, noise: float, repeats: int, seed: int = 0,
                  design: str = "grid") -> tuple[Tensor, Tensor]:
    """`repeats` independent training sets of n points with y = f(x) + N(0, noise^2). design='grid' keeps
    x on n evenly spaced points of [-1, 1] and redraws only the noise (the fixed-design setting);
    design='random' draws x uniformly each time. Returns x, y of shape (repeats, n, 1)."""
    f = regression_function(function)
    gen = generator(seed)
    if design == "grid":
        x = torch.linspace(-1, 1, n).expand(repeats, n)[..., None]
    elif design == "random":
        x = torch.rand(repeats, n, 1, generator=gen) * 2 - 1
    else:
        raise ValueError(f"design must be 'grid' or 'random', got {design!r}")
    return x, f(x) + noise * torch.randn(repeats, n, 1, generator=gen)


@dataclass(frozen=True)
class Decomposition:
    """Terms averaged over the test points; `measured` is the directly measured expected test error,
    `measured_se` its Monte-Carlo standard error (across training sets)."""

    bias2: float
    variance: float
    noise: float
    measured: float
    measured_se: float

    @property
    def total(self) -> float:
        return self.bias2 + self.variance + self.noise

    def as_dict(self) -> dict[str, float]:
        return {**dataclasses.asdict(self), "total": self.total}


def table(decompositions):
    """A pandas table of decompositions, one row each: bias2, variance, noise, measured, measured_se, total."""
    import pandas as pd

    return pd.DataFrame([d.as_dict() for d in decompositions])


def decompose(predictions: Tensor, truth: Tensor, noise: float, seed: int = 0) -> Decomposition:
    """predictions: (R, T) predictions of R models (one per training set) at T test points;
    truth: (T,) the noiseless f at those points; noise: the standard deviation of the target noise."""
    predictions = predictions.reshape(predictions.shape[0], -1).to(torch.float64).cpu()
    truth = truth.reshape(-1).to(torch.float64).cpu()
    mean = predictions.mean(0)
    variance = predictions.var(0, unbiased=True)
    bias2 = float(((mean - truth) ** 2 - variance / len(predictions)).mean())  # unbiased: the sample mean is off by var/R
    variance = float(variance.mean())
    fresh_targets = truth + noise * torch.randn(predictions.shape, generator=generator(seed), dtype=torch.float64)
    per_set = ((predictions - fresh_targets) ** 2).mean(1)  # each training set's test error
    measured_se = float(per_set.std(unbiased=True) / np.sqrt(len(per_set))) if len(per_set) > 1 else float("nan")
    return Decomposition(bias2, variance, noise**2, float(per_set.mean()), measured_se)


@dataclass(frozen=True)
class Study:
    """R models fitted to R resampled training sets: their predictions on a grid and the decomposition."""

    x: Tensor  # (T, 1) test grid on [-1, 1]
    truth: Tensor  # (T,) noiseless f on the grid
    predictions: Tensor  # (R, T)
    decomposition: Decomposition
    train_loss: float | None = None  # the learners' mean training error, where they report one


def polynomial_study(degree: int, n: int = 20, noise: float = 0.3, repeats: int = 200, function: str = "sin",
                     seed: int = 0, grid: int = 200, design: str = "grid") -> Study:
    """Least-squares polynomials of `degree` fitted to `repeats` training sets of n points each."""
    from .linear import least_squares, polynomial_features

    x, y = training_sets(function, n, noise, repeats, seed, design)
    x_test = torch.linspace(-1, 1, grid)[:, None]
    truth = regression_function(function)(x_test)[:, 0]
    weights = least_squares(polynomial_features(x, degree), y)
    predictions = (polynomial_features(x_test, degree) @ weights)[..., 0]
    return Study(x_test, truth, predictions, decompose(predictions, truth, noise, seed))


def network_study(width: int, n: int = 20, noise: float = 0.3, repeats: int = 100, function: str = "sin",
                  seed: int = 0, grid: int = 200, design: str = "grid", *, settings: Settings | None = None,
                  **changes) -> Study:
    """One-hidden-layer ReLU networks of `width` units trained on `repeats` training sets of n points each, all at
    once as one stack, by gt.fit with `settings` (and `changes` to them), always in full batches of n, measuring
    the training split at the end; network r starts from seed r and sees its batch order. `train_loss` is the networks' mean final training loss."""
    from .data import DataSet, TensorData
    from .models import StackedMLP
    from .train import fit

    x, y = training_sets(function, n, noise, repeats, seed, design)
    x_test = torch.linspace(-1, 1, grid)[:, None]
    truth = regression_function(function)(x_test)
    sets = [DataSet(function, train=TensorData(x[r], y[r]), test=TensorData(x_test, truth)) for r in range(repeats)]
    nets = StackedMLP(1, [width], 1, seeds=range(repeats))
    settings = Settings.of(settings, **changes).without_seed("gt.biasvar.network_study")
    histories = fit(nets, sets, settings.replace(batch_size=n, measure=("train",), measure_every=None))
    with torch.no_grad():
        predictions = nets(x_test.expand(repeats, *x_test.shape))[..., 0]
    study = Study(x_test, truth[:, 0], predictions, decompose(predictions, truth[:, 0], noise, seed))
    return dataclasses.replace(study, train_loss=float(np.mean([h.final["train_loss"] for h in histories])))


def explore(function: str = "sin", repeats: int = 100):
    """Sliders for degree, noise and training-set size that redraw the resampled fits and the
    decomposition (Jupyter only: the website shows static small multiples instead)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from . import plots

    def draw(degree: int = 3, noise: float = 0.3, n: int = 20):
        study = polynomial_study(degree, n, noise, repeats, function)
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 2]})
        plots.resampled_fits(study, ax=left, title=f"degree {degree}, n = {n}, noise {noise:g}")
        plots.decomposition_bars(study.decomposition, ax=right)
        plt.show()

    return widgets.interactive(draw, degree=widgets.IntSlider(3, 0, 12, description="degree"),
                               noise=widgets.FloatSlider(0.3, min=0.0, max=2.5, step=0.05, description="noise"),
                               n=widgets.IntSlider(20, 10, 100, step=5, description="n"))
