"""How sure a measured number is: intervals for accuracies and for means over seeds; and how well one number ranks
another (Kendall's tau, overall and granulated by hyperparameter)."""
from __future__ import annotations

import numpy as np
from scipy import stats as _scipy

from .device import run_seed


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for an accuracy of `correct` out of `n` independent test examples."""
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must lie between 0 and n={n}, got {correct}")
    z = _scipy.norm.ppf(0.5 + confidence / 2)
    p = correct / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return float(centre - half), float(centre + half)


def bootstrap_interval(values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
                       statistic=np.mean) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over `values` (for example per-example correctness)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(run_seed(seed))
    resampled = statistic(values[rng.integers(0, len(values), size=(n_resamples, len(values)))], axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(resampled, tail)), float(np.quantile(resampled, 1 - tail))


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of a few repeated measurements (seeds): (mean, low, high)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = _scipy.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def fit_power_law(n, error) -> tuple[float, float]:
    """Fit error = c * n^(-alpha) by least squares on log-log axes; returns (alpha, c)."""
    log_n, log_err = np.log(np.asarray(n, dtype=float)), np.log(np.asarray(error, dtype=float))
    slope, intercept = np.polyfit(log_n, log_err, 1)
    return float(-slope), float(np.exp(intercept))


def interpolation_peak(x, train_error, test_error, zero: float = 1e-9) -> dict[str, float]:
    """Landmarks of a double-descent curve over increasing model sizes x:
    threshold: the first x whose training error is (near) zero, where the model first interpolates;
    first_min: the lowest test error at or before the threshold (the bottom of the first descent);
    peak: the highest test error from first_min on; last: the test error at the largest x."""
    x, train_error, test_error = (np.asarray(v, dtype=float) for v in (x, train_error, test_error))
    fitted = np.nonzero(train_error <= zero)[0]
    if len(fitted) == 0:
        raise ValueError("no model size reaches zero training error: widen the sweep or train longer")
    at = int(fitted[0])
    low = int(np.argmin(test_error[: at + 1]))
    top = low + int(np.argmax(test_error[low:]))
    return {"threshold": float(x[at]), "first_min_x": float(x[low]), "first_min": float(test_error[low]),
            "peak_x": float(x[top]), "peak": float(test_error[top]), "last": float(test_error[-1])}


def welch_p(a, b, alternative: str = "two-sided") -> float:
    """p-value of Welch's t-test (unequal variances) that measurements `a` (seeds) and `b` have equal means;
    alternative 'greater' tests mean(a) > mean(b). Identical samples (zero spread) give 1."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.std() == 0 and b.std() == 0:  # no spread: the difference is exact (scipy would return NaN)
        differs = {"two-sided": a.mean() != b.mean(), "greater": a.mean() > b.mean(), "less": a.mean() < b.mean()}
        return 0.0 if differs[alternative] else 1.0
    return float(_scipy.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)


def welch_verdict(a, b, alpha: float = 0.05) -> str:
    """'better', 'worse' or 'within noise': how the mean of `a` compares with the mean of `b`, by a two-sided
    Welch test at level `alpha`. With a few seeds the test is weak: 'within noise' means not shown to differ."""
    if not welch_p(a, b) < alpha:
        return "within noise"
    return "better" if np.mean(a) > np.mean(b) else "worse"


def granulated_tau(frame, measure: str, target: str, hyperparameters) -> dict[str, float]:
    """Jiang et al.'s (2020) granulated Kendall tau: for each hyperparameter, the rank correlation of `measure` with
    `target` among the rows (networks) that differ in that hyperparameter alone, averaged over every combination of
    the others; a grid that is a product has one such group per combination. A measure that only tracks one
    hyperparameter scores high on it and near zero on the rest. Groups where a tau is undefined (all ties) are
    skipped; a hyperparameter with none left gets NaN."""
    taus = {}
    for name in hyperparameters:
        others = [other for other in hyperparameters if other != name]
        groups = frame.groupby(others) if others else [((), frame)]
        values = [_scipy.kendalltau(group[measure], group[target]).statistic for _, group in groups if len(group) > 1]
        values = [value for value in values if np.isfinite(value)]
        taus[name] = float(np.mean(values)) if values else float("nan")
    return taus


def tau_table(frame, measures, target: str, hyperparameters):
    """Jiang et al.'s table: for each of `measures` (rows), Kendall's tau with `target` over all rows of `frame`
    ('overall'), its granulated tau for each hyperparameter, and the mean of those over the hyperparameters where it
    is defined (a measure constant across one has no tau there)."""
    import pandas as pd

    table = pd.DataFrame({name: {"overall": _scipy.kendalltau(frame[name], frame[target]).statistic,
                                 **granulated_tau(frame, name, target, hyperparameters)} for name in measures}).T
    table["mean over the hyperparameters it varies with"] = table[list(hyperparameters)].mean(axis=1)
    return table
