"""Closed-form linear models: polynomial features, least squares with an optional ridge, and the
minimum-norm solution when there are more features than examples.

Everything is batched: a leading dimension of R independent problems is solved at once.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .device import generator


def polynomial_features(x: Tensor, degree: int) -> Tensor:
    """Legendre polynomials P_0 ... P_degree of x in [-1, 1] (well conditioned, unlike raw powers).

    x: (..., n, 1) or (..., n) -> (..., n, degree + 1), in float64.
    """
    if degree < 0:
        raise ValueError(f"degree must be at least 0, got {degree}")
    values = x.squeeze(-1) if x.ndim > 1 and x.shape[-1] == 1 else x
    values = values.to(torch.float64)
    columns = [torch.ones_like(values), values]
    for k in range(1, degree):  # Bonnet's recursion: (k+1) P_{k+1} = (2k+1) x P_k - k P_{k-1}
        columns.append(((2 * k + 1) * values * columns[k] - k * columns[k - 1]) / (k + 1))
    return torch.stack(columns[: degree + 1], dim=-1)


def least_squares(features: Tensor, targets: Tensor, ridge: float = 0.0) -> Tensor:
    """Weights w minimising ||X w - y||^2 + ridge ||w||^2; with ridge = 0, the minimum-norm solution
    (pseudo-inverse), which also covers more features than examples. Batched over leading dimensions."""
    if ridge < 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    x = features.to(torch.float64)
    y = targets.to(torch.float64)
    if ridge == 0:
        return torch.linalg.pinv(x) @ y
    n, p = x.shape[-2:]
    xt = x.transpose(-1, -2)
    if p > n:  # the dual form: an n x n system instead of p x p
        eye = torch.eye(n, dtype=x.dtype, device=x.device)
        return xt @ torch.linalg.solve(x @ xt + ridge * eye, y)
    eye = torch.eye(p, dtype=x.dtype, device=x.device)
    return torch.linalg.solve(xt @ x + ridge * eye, xt @ y)


def gradient_descent_path(features: Tensor, targets: Tensor, steps, lr: float | None = None,
                          feature_lr: Tensor | None = None) -> Tensor:
    """The weights of gradient descent from zero on ||X w - y||^2 / (2n) after each number of `steps`, exactly and
    at once: along an eigenvector of X^T X / n with eigenvalue lam, the weight moves toward its least-squares value
    by the fraction 1 - (1 - lr lam)^t, so directions of small eigenvalue are learned late (the analysis of
    Heckel & Yilmaz 2020). `lr` defaults to 1 / the largest eigenvalue. `feature_lr` scales each feature's step
    (per-group learning rates): descent in the features X diag(feature_lr)^(1/2). Returns (len(steps), p[, k])."""
    x, y = features.to(torch.float64), targets.to(torch.float64)
    root = torch.ones(x.shape[-1], dtype=torch.float64) if feature_lr is None else feature_lr.to(torch.float64).sqrt()
    x = x * root
    n = x.shape[0]
    lam, vectors = torch.linalg.eigh(x.T @ x / n)
    lam = lam.clamp_min(0)
    lr = float(1 / lam.max()) if lr is None else lr
    if lr * lam.max() >= 2:
        raise ValueError(f"lr={lr} diverges: gradient descent needs lr < 2 / {lam.max().item():.3g}")
    projected = vectors.T @ (x.T @ y / n)  # (p[, k])
    t = torch.as_tensor(list(steps), dtype=torch.float64)[:, None]
    learned = torch.where(lam > 1e-12 * lam.max(), (1 - (1 - lr * lam) ** t) / lam.clamp_min(1e-300), 0.0)  # (T, p)
    weights = learned[..., None] * projected if y.ndim > 1 else learned * projected
    path = torch.einsum("ij,tj...->ti...", vectors, weights)
    return path * (root[:, None] if y.ndim > 1 else root)


def sgd_from_zero(features: Tensor, targets: Tensor, epochs: int, batch_size: int = 20, lr: float | None = None,
                  seed: int = 0, reference: Tensor | None = None) -> tuple[Tensor, np.ndarray]:
    """Plain mini-batch SGD from w = 0 on the squared loss ||X w - y||^2 / (2n), in float64. Returns the final
    weights and, after every epoch, their distance to `reference` relative to its norm (by default the
    least-squares solution of least minimum norm). Every step adds a combination of training rows, so w stays in
    their span: where the model interpolates, SGD converges to the minimum-norm interpolant (Zhang et al. 2017,
    section 5). `lr` defaults to a safe constant step, n / (2 b lam_max(X X^T)); one at or above the full-batch
    limit 2n / lam_max(X X^T) diverges, and is refused."""
    x, y = features.to(torch.float64), targets.to(torch.float64)
    n = len(x)
    reference = least_squares(x, y) if reference is None else reference.to(torch.float64)
    largest = torch.linalg.eigvalsh(x @ x.T).max().item()
    lr = 0.5 * n / (batch_size * largest) if lr is None else lr
    if lr >= 2 * n / largest:
        raise ValueError(f"lr={lr} diverges: SGD on these features needs lr < {2 * n / largest:.3g}")
    w = torch.zeros(x.shape[1], *y.shape[1:], dtype=torch.float64)
    gen, distances = generator(seed), []
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            w -= lr * x[rows].T @ (x[rows] @ w - y[rows]) / len(rows)
        distances.append(((w - reference).norm() / reference.norm()).item())
    return w, np.array(distances)


def fit_polynomial(x: Tensor, y: Tensor, degree: int, ridge: float = 0.0):
    """Fit a polynomial of `degree` by least squares; returns a function that predicts at new x."""
    weights = least_squares(polynomial_features(x, degree), y, ridge)
    return lambda new_x: polynomial_features(new_x, degree) @ weights


def rank_fraction(features: Tensor) -> float:
    """rank / n of an (n, p) feature matrix: the share of n random signs a least-squares fit can match on average."""
    return float(np.linalg.matrix_rank(features.cpu().numpy())) / features.shape[-2]


def random_relu_features(x: Tensor, n_features: int, seed: int = 0) -> Tensor:
    """Random ReLU features relu(x W / sqrt(d)) with Gaussian W (a variant of Belkin et al.'s random Fourier features),
    in float64; the same seed gives the same W, so train and test features match."""
    x = x.reshape(len(x), -1).to(torch.float64)
    gen = generator(seed)
    weights = torch.randn(x.shape[1], n_features, generator=gen, dtype=torch.float64).to(x.device)
    return torch.relu(x @ weights / np.sqrt(x.shape[1]))


def random_fourier_features(x: Tensor, n_features: int, bandwidth: float, seed: int = 0) -> Tensor:
    """sqrt(2/p) cos(x W / bandwidth + b), Gaussian W and uniform phases b (Rahimi & Recht): their inner products
    approximate the Gaussian kernel ``exp(-|x - x'|^2 / (2 bandwidth^2))``. In float64; the same seed gives the same
    features, so train and test match. Standardise x first: the bandwidth is in the units of x."""
    x = x.reshape(len(x), -1).to(torch.float64)
    gen = generator(seed)
    directions = torch.randn(x.shape[1], n_features, generator=gen, dtype=torch.float64).to(x.device) / bandwidth
    phases = 2 * np.pi * torch.rand(n_features, generator=gen, dtype=torch.float64).to(x.device)
    return np.sqrt(2 / n_features) * torch.cos(x @ directions + phases)


def random_features_errors(p: int, train, valid, test, n_classes: int = 10,
                           ridges=(1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0), draws: int = 3) -> dict[str, float]:
    """Least-squares read-outs of p random ReLU features (Belkin et al.'s model-wise double descent) on class labels
    (one-hot targets), averaged over `draws` draws of the features (seeds 0, 1, ...): the minimum-norm solution's
    test squared error and test error, and the test error of the ridge (from `ridges`) with the lowest validation
    squared error.
    `train`, `valid`, `test`: splits (gt.data.TensorData)."""
    def one_hot(y: Tensor) -> Tensor:
        return torch.nn.functional.one_hot(y, n_classes).double()

    def mse(f: Tensor, w: Tensor, y: Tensor) -> float:
        return float(((f @ w - one_hot(y)) ** 2).sum(1).mean())

    def error(f: Tensor, w: Tensor, y: Tensor) -> float:
        return float(((f @ w).argmax(1) != y).double().mean())

    results = []
    for seed in range(draws):
        f_train, f_valid, f_test = (random_relu_features(part.x, p, seed) for part in (train, valid, test))
        minimum_norm = least_squares(f_train, one_hot(train.y))
        tuned = min((least_squares(f_train, one_hot(train.y), ridge=r) for r in ridges), key=lambda w: mse(f_valid, w, valid.y))
        results.append([mse(f_test, minimum_norm, test.y), error(f_test, minimum_norm, test.y), error(f_test, tuned, test.y)])
    test_mse, test_error, ridge_test_error = np.mean(results, axis=0)
    return {"p": p, "test_mse": test_mse, "test_error": test_error, "ridge_test_error": ridge_test_error}


def interpolating_relu_network(x: Tensor, y: Tensor, seed: int = 0) -> torch.nn.Sequential:
    """The two-layer ReLU network of Zhang et al.'s finite-sample expressivity theorem: with 2n + d distinct
    weights it fits any real labels y of n distinct points x in d dimensions exactly.

    Project the points on a random direction a (all projections z_i distinct), sort them, put one ReLU kink b_j
    just below each z_j, and solve the lower-triangular system relu(z_i - b_j) w = y. Built in float64; every
    hidden unit shares the input weights a, so the network's n * d first-layer entries hold only d distinct values.
    """
    x = x.reshape(len(x), -1).to(torch.float64).cpu()
    y = y.reshape(len(y)).to(torch.float64).cpu()
    n, d = x.shape
    a = torch.randn(d, generator=generator(seed), dtype=torch.float64)
    z = x @ a
    order = torch.argsort(z)
    z_sorted = z[order]
    gaps = torch.diff(z_sorted)
    if not torch.all(gaps > 0):
        raise ValueError("two points project to the same value: are there duplicate inputs?")
    below = torch.cat([gaps[:1], gaps]) / 2  # each kink sits halfway to the previous point
    b = z_sorted - below
    activations = torch.relu(z_sorted[:, None] - b[None, :])  # lower triangular with a positive diagonal
    w = torch.linalg.solve_triangular(activations, y[order][:, None], upper=False)[:, 0]
    hidden = torch.nn.Linear(d, n, dtype=torch.float64)
    out = torch.nn.Linear(n, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        hidden.weight.copy_(a.expand(n, d))
        hidden.bias.copy_(-b)
        out.weight.copy_(w[None])
    return torch.nn.Sequential(torch.nn.Flatten(), hidden, torch.nn.ReLU(), out)
