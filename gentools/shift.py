"""New data and shifted distributions: MNIST-1D test sets drawn afresh or from changed generator settings, the
probit-scaled line on which Miller et al. (2021) found shifted accuracy to lie, test-time augmentation, and two
signals that a test set has moved (the model's confidence and a two-sample test on the inputs)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import data as gdata


def mnist1d_test_set(n: int = 1000, seed: int = 1, **settings) -> gdata.TensorData:
    """`n` MNIST-1D signals drawn with `seed` from the generator, its settings changed by `settings`
    (`gt.data.MNIST1D_SETTINGS`; none: a fresh test set from the same process, as Recht et al. (2019) built theirs),
    standardised as the reference distribution is. On gentools' device."""
    return gdata.load("mnist1d", n_train=n, n_test=0, seed=seed, **settings).train


def probit(accuracy) -> np.ndarray:
    """The inverse of the standard normal CDF, the scale on which Miller et al. fit their lines; accuracies of 0 or 1
    are pulled in by 1e-4 so that the result stays finite."""
    return scipy.stats.norm.ppf(np.clip(np.asarray(accuracy, dtype=float), 1e-4, 1 - 1e-4))


@dataclass(frozen=True)
class LineFit:
    """probit(shifted accuracy) = slope * probit(accuracy) + intercept, with Pearson's r of the probit values."""

    slope: float
    intercept: float
    r: float

    def predict(self, accuracy) -> np.ndarray:
        """The shifted accuracy the line predicts for an in-distribution `accuracy`."""
        return scipy.stats.norm.cdf(self.slope * probit(accuracy) + self.intercept)


def line_fit(accuracy, shifted_accuracy) -> LineFit:
    """Least squares of probit(shifted_accuracy) on probit(accuracy), one point a model (Miller et al. 2021)."""
    fit = scipy.stats.linregress(probit(accuracy), probit(shifted_accuracy))
    return LineFit(float(fit.slope), float(fit.intercept), float(fit.rvalue))


def resample(x: Tensor, compress: float | Tensor = 1.0, offset: float | Tensor = 0.0) -> Tensor:
    """Signals (N, L) with their time axis changed: the output at position p is the input at ``compress * p -
    offset`` (positions measured from the centre, in samples), by linear interpolation with the edge values
    repeated. `compress` above 1 shrinks a signal toward its centre and below 1 widens it, the change of time scale
    MNIST-1D's generator makes when it pads and stretches a template; `offset` moves it right. Tensors of shape
    (N, 1) give each signal its own change."""
    n, length = x.shape[0], x.shape[-1]
    position = torch.linspace(-1, 1, length, device=x.device)[None]  # grid_sample's coordinates
    source = (position * compress - 2 * offset / (length - 1)).to(x.dtype).expand(n, length)
    grid = torch.stack([source, torch.zeros_like(source)], -1)[:, None]  # (N, 1, L, 2)
    moved = F.grid_sample(x.reshape(n, 1, 1, length), grid, align_corners=True, padding_mode="border")
    return moved.reshape(x.shape)


@torch.no_grad()
def tta_probabilities(model: nn.Module, x: Tensor, views: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """Test-time augmentation: the model's class probabilities averaged over `views` of the inputs (functions of
    a batch; include `lambda x: x` for the input itself), in evaluation mode."""
    if not views:
        raise ValueError("views must hold at least one function of the inputs")
    was_training = model.training
    model.eval()
    try:
        return torch.stack([model(view(x)).softmax(1) for view in views]).mean(0)
    finally:
        model.train(was_training)


@torch.no_grad()
def confidence(model: nn.Module, x: Tensor) -> float:
    """The mean over `x` of the model's largest class probability, in evaluation mode: what a model "believes"
    its accuracy to be, and a shift detector when it falls (Hendrycks & Gimpel 2017)."""
    return tta_probabilities(model, x, [lambda batch: batch]).amax(1).mean().item()


def ks_shift_test(reference: Tensor, sample: Tensor) -> float:
    """The p-value that `sample` comes from the distribution of `reference`, by a two-sample Kolmogorov-Smirnov
    test on each feature and a Bonferroni correction over the features (Rabanser et al. 2019): small when any
    feature's distribution has moved."""
    a, b = (np.asarray(t.detach().cpu().flatten(1)) for t in (reference, sample))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the samples have {a.shape[1]} and {b.shape[1]} features")
    p = scipy.stats.ks_2samp(a, b, axis=0).pvalue
    return float(min(1.0, p.min() * a.shape[1]))
