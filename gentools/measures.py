"""Measures of a trained network that might predict how well it generalizes: norms and margins (Neyshabur et al. 2017;
Bartlett, Foster & Telgarsky 2017), sharpness (Keskar et al. 2017) and its rescaling problem (Dinh et al. 2017), and the
PAC-Bayes bound that Dziugaite & Roy (2017) made non-vacuous. Each takes a fully connected network as gt.models.MLP
builds it (linear layers and positively homogeneous activations such as ReLU, no normalization layers).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math

import scipy.optimize
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .models import evaluating


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The network's linear layers, input to output: the matrices every norm-based measure is made of."""
    layers = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no linear layers; the measures need a fully connected network")
    if any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules()):
        raise ValueError("the measures assume no normalization layers: batch normalization rescales what the "
                         "weights say")
    others = {type(module).__name__ for module in model.modules()
              if not isinstance(module, nn.Linear) and next(module.parameters(recurse=False), None) is not None}
    if others:
        raise ValueError(f"the measures take fully connected networks; {', '.join(sorted(others))} has weights of "
                         "its own")
    return layers


_HOMOGENEOUS = (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Flatten, nn.Dropout, nn.Sequential)


def _positively_homogeneous(model: nn.Module) -> list[nn.Linear]:
    """The linear layers, after checking that every other module commutes with positive scaling (ReLU, not tanh):
    what the path norm and the rescaling argument rest on."""
    layers = linear_layers(model)
    others = {type(module).__name__ for module in model.modules() if not isinstance(module, _HOMOGENEOUS)}
    if others:
        raise ValueError("this needs ReLU-like activations, which commute with positive scaling; "
                         f"{', '.join(sorted(others))} does not")
    return layers


def norm_product(model: nn.Module, ord: str | int = "fro") -> float:
    """The product over layers of each weight matrix's norm: 'fro' (Frobenius) or 2 (spectral, the largest singular
    value). With ReLU activations the spectral product bounds how fast the network's output can change with its input
    (its Lipschitz constant), which is why bounds contain it."""
    if ord not in ("fro", 2):
        raise ValueError(f"ord must be 'fro' or 2, got {ord!r}")
    with torch.no_grad():
        return math.prod(torch.linalg.matrix_norm(layer.weight.double(), ord=ord).item()
                         for layer in linear_layers(model))


def path_norm(model: nn.Module) -> float:
    """The l2 path norm: the square root of the sum, over every path from an input (or a bias) to an output, of the
    product of the squared weights along it. Computed by one forward pass of the network with every parameter squared
    on an input of ones (a ReLU passes non-negative values unchanged). Unchanged when a layer is scaled by a > 0 and
    the next by 1/a, unlike the norm of the parameters."""
    _positively_homogeneous(model)
    squared = copy.deepcopy(model).double().eval()   # eval: no dropout mask on the paths
    with torch.no_grad():
        for parameter in squared.parameters():
            parameter.pow_(2)
        first = linear_layers(squared)[0]
        ones = torch.ones(1, first.in_features, dtype=torch.float64, device=first.weight.device)
        return squared(ones).sum().sqrt().item()


def spectral_complexity(model: nn.Module, reference: nn.Module | None = None) -> float:
    """Bartlett, Foster & Telgarsky's spectral complexity (ReLU, so every Lipschitz constant is 1):
    ``prod_i s(A_i) * (sum_i (r(A_i - M_i) / s(A_i))^(2/3))^(3/2)``, where s is the spectral norm, r(B) the (2,1)
    norm of B transposed (the sum of the l2 norms of B's rows, each unit's incoming weights) and M_i the reference
    weights (zero, or the initialisation); biases are left out, as in the paper."""
    layers = linear_layers(model)
    references = linear_layers(reference) if reference is not None else [None] * len(layers)
    if len(references) != len(layers):
        raise ValueError(f"the reference has {len(references)} linear layers, the model {len(layers)}")
    with torch.no_grad():
        spectral, ratios = 1.0, 0.0
        for layer, ref in zip(layers, references):
            weight = layer.weight.double()
            difference = weight - (ref.weight.double().to(weight) if ref is not None else 0)
            sigma = torch.linalg.matrix_norm(weight, ord=2).item()
            spectral *= sigma
            ratios += (difference.norm(dim=1).sum().item() / sigma) ** (2 / 3)
        return spectral * ratios ** 1.5


def margins(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Each example's output margin: the true class's output minus the largest other output (negative: misclassified).
    Norm-based measures are divided by a low quantile of these: scaling the last layer by c multiplies both the norms
    and the margins by c, so the ratio ignores the scale of the outputs."""
    with evaluating(model), torch.no_grad():
        outputs = model(x).double()
    true = outputs.gather(1, y.view(-1, 1)).squeeze(1)
    others = outputs.scatter(1, y.view(-1, 1), float("-inf")).amax(1)
    return true - others


def margin(model: nn.Module, x: Tensor, y: Tensor, quantile: float = 0.1) -> float:
    """gamma: a low quantile of the output margins over (x, y), the 10th percentile by default as in Jiang et al.
    (2020), so that a few hard examples do not decide it."""
    return float(torch.quantile(margins(model, x, y), quantile))


def vc_bound(d: int, n: int, delta: float = 0.05) -> float:
    """The complexity terms of the VC bound in its growth-function form, ``sqrt(2 ln Pi(n) / n) + sqrt(ln(1/delta)
    / (2n))``, for a class of VC dimension d: ``ln Pi(n) = n ln 2`` up to n = d, ``d ln(e n / d)`` beyond (Sauer's
    lemma). Added to the training error, it bounds the test error with probability 1 - delta."""
    if not (d >= 1 and n >= 1 and 0 < delta < 1):
        raise ValueError(f"need d >= 1, n >= 1 and 0 < delta < 1, got d={d}, n={n}, delta={delta}")
    log_growth = n * math.log(2) if n <= d else d * math.log(math.e * n / d)
    return math.sqrt(2 * log_growth / n) + math.sqrt(math.log(1 / delta) / (2 * n))


def summary(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, float]:
    """Every measure of this module for a network and its training set (x, y), under the names a table of them uses:
    the margin gamma; the Frobenius, spectral and path norms (squared, over gamma squared) and the spectral complexity
    (over gamma); the leading terms of the Frobenius and spectral margin bounds (Golowich et al. 2018, Bartlett et
    al. 2017, constants and logarithms left out); Keskar et al.'s sharpness (radius 1e-3), the relative sharpness
    (radius 5e-3, offset 0), the random relative sharpness (radius 0.05); and the number of weights. A network that
    misclassifies a tenth of (x, y) or more has gamma <= 0, and its margin-normalised entries are NaN."""
    measured, n = margin(model, x, y), len(x)
    gamma = measured if measured > 0 else math.nan
    complexity = spectral_complexity(model)
    frobenius = norm_product(model, "fro")
    return {"margin": measured, "Frobenius": frobenius ** 2 / gamma ** 2, "spectral": norm_product(model, 2) ** 2 / gamma ** 2,
            "path": path_norm(model) ** 2 / gamma ** 2, "spectral complexity": complexity / gamma,
            "Frobenius bound": float(x.flatten(1).norm(dim=1).max()) * frobenius / (gamma * math.sqrt(n)),
            "spectral bound": float(x.norm()) * complexity / (gamma * n),
            "sharpness": sharpness(model, x, y, radius=1e-3),
            "relative sharpness": sharpness(model, x, y, radius=5e-3, offset=0),
            "random sharpness": random_sharpness(model, x, y, radius=0.05, offset=0),
            "parameters": sum(parameter.numel() for parameter in model.parameters())}


def rescaled(model: nn.Module, layer: int, factor: float) -> nn.Module:
    """A copy with linear layer `layer` (weights and bias) multiplied by `factor` > 0 and the next layer's weights
    divided by it: for a ReLU network the same function with other weights (Dinh et al.'s argument)."""
    if not factor > 0:
        raise ValueError(f"factor must be positive (a ReLU commutes only with positive scaling), got {factor}")
    copied = copy.deepcopy(model)
    layers = _positively_homogeneous(copied)
    if not 0 <= layer < len(layers) - 1:
        raise ValueError(f"layer must be from 0 to {len(layers) - 2} (it needs a next layer), got {layer}")
    with torch.no_grad():
        layers[layer].weight.mul_(factor)
        if layers[layer].bias is not None:
            layers[layer].bias.mul_(factor)
        layers[layer + 1].weight.div_(factor)
    return copied


def _loss_with(model: nn.Module, parameters: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(functional_call(model, parameters, (x,)), y)


@contextlib.contextmanager
def _at_rest(model: nn.Module, x: Tensor, y: Tensor, radius: float, offset: float):
    """The model in evaluation mode and gradients off for the duration, with its weights, the perturbation box
    (half-widths radius * (abs(w) + offset), weight by weight) and the loss at the weights themselves."""
    if not radius >= 0 or not offset >= 0:
        raise ValueError(f"radius and offset must be 0 or more, got {radius} and {offset}")
    weights = {name: parameter.detach() for name, parameter in model.named_parameters()}
    box = {name: radius * (weight.abs() + offset) for name, weight in weights.items()}
    with evaluating(model), torch.no_grad():
        yield weights, box, _loss_with(model, weights, x, y).item()


def sharpness(model: nn.Module, x: Tensor, y: Tensor, radius: float, offset: float = 1.0, steps: int = 20) -> float:
    """Keskar et al.'s sharpness: the largest relative rise of the loss, ``(L(w + z) - L(w)) / (1 + L(w))``, over
    perturbations with ``abs(z_i) <= radius * (abs(w_i) + offset)``, without their factor of 100. The maximum is
    sought by projected sign-gradient ascent (they used L-BFGS-B), so the value is a lower bound on it. offset=1 is
    their box; with offset=0 the box scales with each weight, so rescaling layers (gt.measures.rescaled) leaves the
    value unchanged."""
    with _at_rest(model, x, y, radius, offset) as (weights, box, base):
        shift = {name: torch.zeros_like(weight, requires_grad=True) for name, weight in weights.items()}
        highest = base
        for step in range(steps + 1):
            with torch.enable_grad():
                loss = _loss_with(model, {name: weights[name] + shift[name] for name in weights}, x, y)
                highest = max(highest, loss.item())
                if step == steps:
                    break
                gradients = torch.autograd.grad(loss, list(shift.values()))
            for (name, z), gradient in zip(shift.items(), gradients):
                z.add_(gradient.sign() * box[name] / 4).clamp_(min=-box[name], max=box[name])
    return (highest - base) / (1 + base)


def random_sharpness(model: nn.Module, x: Tensor, y: Tensor, radius: float, offset: float = 1.0, samples: int = 10,
                     seed: int = 0) -> float:
    """The mean rise of the loss, relative as in `sharpness`, under random perturbations drawn uniformly from the
    same box: how flat the minimum is on average, not in its worst direction."""
    generator = torch.Generator().manual_seed(seed)
    with _at_rest(model, x, y, radius, offset) as (weights, box, base):
        draws = [{name: weight + box[name] * (2 * torch.rand(weight.shape, generator=generator) - 1).to(weight)
                  for name, weight in weights.items()} for _ in range(samples)]
        rises = [_loss_with(model, perturbed, x, y).item() - base for perturbed in draws]
    return sum(rises) / len(rises) / (1 + base)


def gaussian_kl(q_mean: Tensor, q_std: Tensor, p_mean: Tensor, p_std: Tensor | float) -> float:
    """``KL(Q || P)`` between two diagonal Gaussians over the weights: the complexity term of a PAC-Bayes bound."""
    q = torch.distributions.Normal(q_mean.double(), torch.as_tensor(q_std).double())
    p = torch.distributions.Normal(torch.as_tensor(p_mean).double(), torch.as_tensor(p_std).double())
    return torch.distributions.kl_divergence(q, p).sum().item()


def bernoulli_kl(q: float, p: float) -> float:
    """``kl(q || p)`` between Bernoulli distributions with means q and p."""
    if not (0 <= q <= 1 and 0 <= p <= 1):
        raise ValueError(f"q and p must lie in [0, 1], got {q} and {p}")
    terms = [(q, p), (1 - q, 1 - p)]
    return sum(a * math.log(a / b) for a, b in terms if a > 0) if 0 < p < 1 else (0.0 if p == q else math.inf)


def kl_inverse(q: float, bound: float) -> float:
    """The largest p >= q with ``kl(q || p) <= bound``: how large the true error can be, given the training error q."""
    if not 0 <= q <= 1 or not bound >= 0:
        raise ValueError(f"q must lie in [0, 1] and bound be 0 or more, got {q} and {bound}")
    if q == 1 or bernoulli_kl(q, 1 - 1e-12) <= bound:
        return 1.0
    return scipy.optimize.brentq(lambda p: bernoulli_kl(q, p) - bound, q, 1 - 1e-12, xtol=1e-12)


def pac_bayes_bound(train_error: float, kl: float, n: int, delta: float = 0.05) -> float:
    """With probability 1 - delta over the n training examples, the error of the random network Q is at most
    ``kl_inverse(train_error, (KL(Q || P) + log(n / delta)) / (n - 1))`` (the Langford-Seeger form of the PAC-Bayes
    theorem, as Dziugaite & Roy state it), for a prior P chosen before seeing the data. train_error is Q's (expected)
    error on the training set. A prior picked from several (Dziugaite & Roy's grid of variances) adds the cost of
    the choice to `kl`, by a union bound."""
    if not n > 1 or not 0 < delta < 1 or not kl >= 0:
        raise ValueError(f"need n > 1, 0 < delta < 1 and kl >= 0, got n={n}, delta={delta}, kl={kl}")
    return kl_inverse(train_error, (kl + math.log(n / delta)) / (n - 1))


def _flat(parameters: dict[str, Tensor]) -> Tensor:
    return torch.cat([tensor.flatten() for tensor in parameters.values()])


@dataclasses.dataclass
class Posterior:
    """A Gaussian Q = N(mean, diag(std**2)) over a network's weights, with the prior P = N(initial, prior_variance)
    it is bound against: Dziugaite & Roy's setting. The initial weights are drawn before the data are seen, and the
    prior variance is picked from the grid ``c * exp(-j / b)``, j = 1, 2, ..., whose choice the bound pays for."""

    model: nn.Module
    mean: dict[str, Tensor]
    std: dict[str, Tensor]
    initial: dict[str, Tensor]
    j: int
    c: float = 0.1
    b: float = 100.0

    @property
    def prior_variance(self) -> float:
        return self.c * math.exp(-self.j / self.b)

    def kl(self) -> float:
        """KL(Q || P), summed over the weights."""
        mean = _flat(self.mean)
        return gaussian_kl(mean, _flat(self.std), _flat(self.initial).to(mean), math.sqrt(self.prior_variance))

    def error(self, x: Tensor, y: Tensor, samples: int = 100, seed: int = 0) -> float:
        """Q's error on (x, y), estimated from `samples` networks drawn from it: the mean of their error rates."""
        generator = torch.Generator().manual_seed(seed)
        errors = []
        with evaluating(self.model), torch.no_grad():
            for _ in range(samples):
                drawn = {name: mean + self.std[name] * torch.randn(mean.shape, generator=generator).to(mean)
                         for name, mean in self.mean.items()}
                errors.append((functional_call(self.model, drawn, (x,)).argmax(1) != y).float().mean().item())
        return sum(errors) / samples

    def bound(self, x: Tensor, y: Tensor, samples: int = 1000, delta: float = 0.025, delta_sampling: float = 0.01,
              seed: int = 0) -> dict[str, float]:
        """Dziugaite & Roy's bound on Q's error, from the n training examples (x, y): with probability at least
        1 - delta - delta_sampling it holds. Q's training error is estimated from `samples` networks and raised to
        ``kl_inverse(estimate, log(2 / delta_sampling) / samples)``; the choice of j costs ``2 log j + log(pi^2 / 6)``
        (a union bound with delta_j = 6 delta / (pi^2 j^2))."""
        estimate = self.error(x, y, samples, seed)
        train_error = kl_inverse(estimate, math.log(2 / delta_sampling) / samples)
        kl = self.kl()
        bound = pac_bayes_bound(train_error, kl + 2 * math.log(self.j) + math.log(math.pi ** 2 / 6), len(x), delta)
        return {"bound": bound, "kl": kl, "train_error_estimate": estimate, "train_error_bound": train_error,
                "prior_variance": self.prior_variance}


def fit_posterior(model: nn.Module, initial: nn.Module, x: Tensor, y: Tensor, steps: int, lr: float = 1e-3,
                  batch_size: int = 100, delta: float = 0.025, c: float = 0.1, b: float = 100.0,
                  seed: int = 0) -> Posterior:
    """Dziugaite & Roy's optimisation: starting from a trained `model` (its weights the mean, its weights' magnitudes
    the standard deviations), minimise a surrogate of Q's training error (the cross-entropy in bits of one drawn
    network, which is at least 1 on a mistake) plus the square-root form of the PAC-Bayes bound, over the mean, the
    standard deviations and the prior variance, by RMSprop on mini-batches. `initial` is the network before training:
    the prior's mean. The prior variance found is rounded to the grid, and the result is a Posterior."""
    generator = torch.Generator().manual_seed(seed)
    mean = {name: parameter.detach().clone().requires_grad_(True) for name, parameter in model.named_parameters()}
    prior_mean = {name: parameter.detach().clone().to(mean[name]) for name, parameter in initial.named_parameters()}
    log_std = {name: weight.detach().abs().clamp_min(1e-4).log().requires_grad_(True) for name, weight in mean.items()}
    log_variance = torch.tensor(math.log(c) - 6.0, device=x.device, requires_grad=True)
    optimiser = torch.optim.RMSprop([*mean.values(), *log_std.values(), log_variance], lr=lr)
    n, confidence = len(x), math.log(math.pi ** 2 * len(x) / (6 * delta))
    with evaluating(model):
        for _ in range(steps):
            batch = torch.randint(n, (batch_size,), generator=generator).to(x.device)
            drawn = {name: mu + log_std[name].exp() * torch.randn(mu.shape, generator=generator).to(mu)
                     for name, mu in mean.items()}
            surrogate = F.cross_entropy(functional_call(model, drawn, (x[batch],)), y[batch]) / math.log(2)
            variance = log_variance.exp()
            kl = sum((0.5 * ((log_std[name].exp() ** 2 + (mean[name] - prior_mean[name]) ** 2) / variance - 1
                             + variance.log() - 2 * log_std[name])).sum() for name in mean)
            choice = 2 * torch.log(b * torch.log(c / variance)).clamp_min(0)
            objective = surrogate + torch.sqrt((kl + choice + confidence) / (2 * (n - 1)))
            optimiser.zero_grad()
            objective.backward()
            optimiser.step()
            with torch.no_grad():
                log_variance.clamp_(max=math.log(c) - 1 / b)
    j = max(1, round(b * math.log(c / log_variance.exp().item())))
    return Posterior(model, {name: mu.detach() for name, mu in mean.items()},
                     {name: value.detach().exp() for name, value in log_std.items()}, prior_mean, j, c, b)
