"""New data and shifted distributions: MNIST-1D test sets drawn afresh or from changed generator settings, image
corruptions and changes of scale computed in code, the probit-scaled line on which Miller et al. (2021) found shifted
accuracy to lie, test-time augmentation, and three signals that a test set has moved (the model's confidence, two
networks' disagreement and a two-sample test on the inputs)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import data as gdata
from .device import run_seed
from .models import evaluating


def mnist1d_test_set(n: int = 1000, seed: int = 1, **settings) -> gdata.TensorData:
    """`n` MNIST-1D signals drawn with `seed` from the generator, its settings changed by `settings`
    (`gt.data.MNIST1D_SETTINGS`; none: a fresh test set from the same process, as Recht et al. (2019) built theirs),
    standardised as the reference distribution is. On gentools' device. Like every seed a chapter uses, `seed` is
    shifted by GENTOOLS_SEED (gt.device.run_seed), so that a redraw of the chapter draws new test sets."""
    return gdata.load("mnist1d", n_train=n, n_test=0, seed=run_seed(seed), **settings).train


def mnist1d_mixture(n: int, seed: int, parts: Sequence[Mapping]) -> gdata.TensorData:
    """MNIST-1D signals, ``n // len(parts)`` drawn under each of `parts` (generator settings, `{}` the defaults),
    each share with a seed of its own: a training set whose diversity is chosen at a fixed size."""
    shares = [mnist1d_test_set(n // len(parts), seed=seed * 1000 + i, **settings) for i, settings in enumerate(parts)]
    return gdata.TensorData(torch.cat([share.x for share in shares]), torch.cat([share.y for share in shares]))


CORRUPTIONS = {  # kind: its parameter at severities 1 to 5 (ours, in the manner of Hendrycks & Dietterich 2019)
    "gaussian noise": (0.04, 0.06, 0.08, 0.09, 0.10),   # the noise's standard deviation, pixels in [0, 1]
    "gaussian blur": (0.5, 0.75, 1.0, 1.5, 2.0),        # the blur's standard deviation, in pixels
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),            # the share of each pixel's distance from the image mean kept
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),            # added to every pixel
}


def corrupt(x: Tensor, kind: str, severity: int, seed: int = 0) -> Tensor:
    """Images (N, C, H, W) with pixels in [0, 1] corrupted by `kind` (a key of CORRUPTIONS) at `severity` 1 to 5,
    clipped to [0, 1]: a shifted test set computed in code, as CIFAR-10-C was, with nothing to download."""
    if kind not in CORRUPTIONS or severity not in range(1, 6):
        raise ValueError(f"kind must be one of {', '.join(CORRUPTIONS)} and severity 1 to 5, got {kind!r}, {severity!r}")
    value = CORRUPTIONS[kind][severity - 1]
    if kind == "gaussian noise":
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(run_seed(seed)))
        moved = x + value * noise.to(x)
    elif kind == "gaussian blur":
        from torchvision.transforms.functional import gaussian_blur

        moved = gaussian_blur(x, kernel_size=2 * int(np.ceil(3 * value)) + 1, sigma=value)
    elif kind == "contrast":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        moved = mean + value * (x - mean)
    else:
        moved = x + value
    return moved.clamp(0, 1)


def corrupted(split: gdata.TensorData, severities: Sequence[int] = (1, 3, 5), seed: int = 0) -> dict[str, gdata.TensorData]:
    """The test split under every corruption of CORRUPTIONS at each of `severities`, named '<kind> <severity>'."""
    return {f"{kind} {severity}": gdata.TensorData(corrupt(split.x, kind, severity, seed), split.y)
            for kind in CORRUPTIONS for severity in severities}


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


def zoom(x: Tensor, factor: float | Tensor) -> Tensor:
    """Images (N, C, H, W) scaled about their centre by `factor` (bilinear): above 1 the content grows and its
    edges leave the frame, below 1 it shrinks and the border fills with zeros, the background of the digits data
    sets. A tensor of N factors scales each image by its own: a change of scale, computed in code."""
    factor = torch.as_tensor(factor, dtype=x.dtype, device=x.device).reshape(-1)
    if len(factor) not in (1, len(x)) or (factor <= 0).any():
        raise ValueError(f"zoom takes one positive factor or one for each of the {len(x)} images, got {factor.tolist()}")
    theta = torch.zeros(x.shape[0], 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / factor  # the output at p reads the input at p / factor
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def tta_probabilities(model: nn.Module, x: Tensor, views: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """Test-time augmentation: the model's class probabilities averaged over `views` of the inputs (functions of
    a batch; include `lambda x: x` for the input itself), in evaluation mode."""
    if not views:
        raise ValueError("views must hold at least one function of the inputs")
    with evaluating(model):
        return torch.stack([model(view(x)).softmax(1) for view in views]).mean(0)


def _probabilities(model: nn.Module, x: Tensor) -> Tensor:
    return tta_probabilities(model, x, [lambda batch: batch])


@torch.no_grad()
def confidence(model: nn.Module, x: Tensor) -> float:
    """The mean over `x` of the model's largest class probability, in evaluation mode: what a model "believes"
    its accuracy to be. Low confidence flags single inputs unlike the training data (Hendrycks & Gimpel 2017); its
    mean over a test set is a candidate signal of a shift."""
    return _probabilities(model, x).amax(1).mean().item()


@torch.no_grad()
def disagreement(models: Sequence[nn.Module], x: Tensor) -> float:
    """The fraction of the inputs `x` on which two of `models` predict different classes, averaged over every pair,
    in evaluation mode. It needs no labels: for networks that differ only in their run of SGD it is close to their
    test error in distribution (Jiang et al. 2022), which makes it a candidate estimate of the error on new data."""
    return _pairwise_disagreement([_probabilities(model, x).argmax(1) for model in models])


def _pairwise_disagreement(predictions: Sequence[Tensor]) -> float:
    if len(predictions) < 2:
        raise ValueError(f"disagreement compares models in pairs; got {len(predictions)} model(s)")
    pairs = [(a != b).float().mean().item() for i, a in enumerate(predictions) for b in predictions[i + 1:]]
    return sum(pairs) / len(pairs)


def report(model: nn.Module, test_sets: Mapping[str, gdata.TensorData],
           views: Sequence[Callable[[Tensor], Tensor]] | None = None) -> dict[str, float]:
    """Accuracy and confidence (the mean largest class probability) on each of `test_sets`, as '<name> acc' and
    '<name> confidence': one model against many test distributions, with test-time augmentation over `views` if
    given."""
    scores = {}
    for name, split in test_sets.items():
        probabilities = tta_probabilities(model, split.x, views or [lambda batch: batch])
        scores[f"{name} acc"] = (probabilities.argmax(1) == split.y).float().mean().item()
        scores[f"{name} confidence"] = probabilities.amax(1).mean().item()
    return scores


def disagreement_report(models: Sequence[nn.Module], test_sets: Mapping[str, gdata.TensorData]) -> list[dict]:
    """One row a test set: the models' mean error, their disagreement (`disagreement`) and their mean confidence,
    the labelled truth beside two estimates of it that need no labels (each model evaluated once a test set)."""
    rows = []
    for name, split in test_sets.items():
        probabilities = [_probabilities(model, split.x) for model in models]
        rows.append({"test set": name,
                     "error": 1 - float(np.mean([(p.argmax(1) == split.y).float().mean().item() for p in probabilities])),
                     "disagreement": _pairwise_disagreement([p.argmax(1) for p in probabilities]),
                     "confidence": float(np.mean([p.amax(1).mean().item() for p in probabilities]))})
    return rows


class FromScikit(nn.Module):
    """A fitted scikit-learn classifier (k nearest neighbours, say) as a module whose outputs are the logarithms
    of its class probabilities, so that it joins a zoo of networks in `report` and `tta_probabilities`."""

    def __init__(self, estimator, n_classes: int):
        super().__init__()
        self.estimator, self.n_classes = estimator, n_classes

    def forward(self, x: Tensor) -> Tensor:
        known = self.estimator.predict_proba(x.detach().cpu().flatten(1).numpy())
        probabilities = np.zeros((len(x), self.n_classes))
        probabilities[:, self.estimator.classes_] = known
        return torch.as_tensor(probabilities, dtype=torch.float32, device=x.device).clamp_min(1e-12).log()


def ks_shift_test(reference: Tensor, sample: Tensor) -> float:
    """A p-value for the hypothesis that `reference` and `sample` come from one distribution: a two-sample
    Kolmogorov-Smirnov test on each feature, the smallest p-value times the number of features (Bonferroni), as in
    Rabanser et al. (2019). Small when some feature's marginal distribution has moved; blind to changes that leave
    every marginal as it was."""
    a, b = (np.asarray(t.detach().cpu().flatten(1)) for t in (reference, sample))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the samples have {a.shape[1]} and {b.shape[1]} features")
    p = scipy.stats.ks_2samp(a, b, axis=0).pvalue
    return float(min(1.0, p.min() * a.shape[1]))
