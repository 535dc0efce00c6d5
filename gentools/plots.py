"""The house style and the standard figures: learning curves, generalization curves, a metric against a
swept parameter with error bars over seeds."""
from __future__ import annotations

import itertools
from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

# Okabe-Ito: distinguishable with every common form of colour blindness
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
SPLIT_COLOURS = {"train": COLOURS[0], "valid": COLOURS[1], "test": COLOURS[2]}
SPLIT_NAMES = {"train": "training", "valid": "validation", "test": "test"}
METRIC_NAMES = {"loss": "loss", "acc": "accuracy", "err": "error"}


def style() -> None:
    """Set the course's plot style (readable on screen and on the website)."""
    mpl.rcParams.update({
        "figure.figsize": (6.4, 4.0), "figure.dpi": 100, "savefig.dpi": 150, "figure.constrained_layout.use": True,
        "axes.prop_cycle": mpl.cycler(color=COLOURS), "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.alpha": 0.3, "axes.titlesize": 12, "axes.labelsize": 11, "legend.frameon": False,
        "lines.linewidth": 1.8,
    })


def _axes(ax):
    return ax if ax is not None else plt.subplots()[1]


def learning_curves(history, metric: str = "loss", splits: Sequence[str] | None = None, ax=None, title: str | None = None):
    """`metric` (loss or acc) of each split against the epoch."""
    ax = _axes(ax)
    splits = splits or [s for s in SPLIT_NAMES if f"{s}_{metric}" in history.final]
    epochs = history["epoch"]
    for split in splits:
        ax.plot(epochs, history[f"{split}_{metric}"], label=SPLIT_NAMES.get(split, split),
                color=SPLIT_COLOURS.get(split))
    ax.set(xlabel="epoch", ylabel=METRIC_NAMES.get(metric, metric), title=title)
    ax.legend()
    return ax


def generalization_curves(history, watch: str = "valid", ax=None, title: str | None = None):
    """Training and `watch` loss per epoch, the epoch of lowest `watch` loss, and the under- and overfitting zones."""
    ax = learning_curves(history, "loss", splits=["train", watch], ax=ax, title=title)
    best = int(history.best(f"{watch}_loss")["epoch"])
    last = int(history.final["epoch"])
    ax.axvspan(0, best, color=COLOURS[5], alpha=0.08, lw=0)
    ax.axvspan(best, last, color=COLOURS[1], alpha=0.08, lw=0)
    ax.axvline(best, color="0.3", ls="--", lw=1)
    top = ax.get_ylim()[1]
    ax.text(best / 2, top, "underfitting", ha="center", va="top", color="0.3")
    ax.text((best + last) / 2, top, "overfitting", ha="center", va="top", color="0.3")
    ax.annotate(f"lowest {SPLIT_NAMES[watch]} loss\n(epoch {best})", xy=(best, history.best(f"{watch}_loss")[f"{watch}_loss"]),
                xytext=(8, 20), textcoords="offset points", fontsize=9, arrowprops=dict(arrowstyle="->", color="0.3"))
    return ax


def metric_vs(table, x: str, y: str, hue: str | None = None, ax=None, logx: bool = False, xlabel: str | None = None,
              ylabel: str | None = None, title: str | None = None, label: str | None = None, marker: str = "o"):
    """Mean of `y` against `x` over repeated runs (seeds), with one-standard-deviation error bars;
    one line per value of `hue`."""
    ax = _axes(ax)
    groups = [(None, table)] if hue is None else list(table.groupby(hue, sort=True))
    for key, group in groups:
        stats = group.groupby(x, sort=True)[y].agg(["mean", "std", "count"])
        spread = stats["std"].fillna(0).to_numpy()
        line_label = label if hue is None else f"{hue} = {key}"
        ax.errorbar(stats.index.to_numpy(), stats["mean"].to_numpy(), yerr=spread, marker=marker, ms=4,
                    capsize=3, label=line_label)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    if hue is not None or label is not None:
        ax.legend()
    return ax


def paths(table, x: str, y: str, hue: str, ax=None, along: str = "epoch", xlabel: str | None = None,
          ylabel: str | None = None, title: str | None = None):
    """The path of `y` against `x` along training (both averaged over runs, epoch by epoch), one line per value of
    `hue` in order of appearance: training rules compared at equal progress, not at equal time. (gt.train.at_level
    reads each run at a level, then averages: a figure of means and a table of it may differ a little.)"""
    ax = _axes(ax)
    for key, group in table.groupby(hue, sort=False):
        mean = group.groupby(along, sort=True)[[x, y]].mean()
        ax.plot(mean[x].to_numpy(), mean[y].to_numpy(), label=str(key))
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    ax.legend()
    return ax


def interval(ax, x: float, low: float, high: float, label: str | None = None, colour: str = COLOURS[1]):
    """A vertical interval (for example a confidence interval) drawn at position x."""
    ax.plot([x, x], [low, high], color=colour, lw=3, solid_capstyle="butt", label=label)
    return ax


def bar_compare(names: Sequence[str], ours: Sequence[float], reference: Sequence[float] | None = None, ax=None,
                ylabel: str = "test accuracy", ours_label: str = "this run", reference_label: str = "published"):
    """Side-by-side bars of our numbers and reference numbers, labelled with their values."""
    ax = _axes(ax)
    positions = np.arange(len(names))
    width = 0.38 if reference is not None else 0.6
    bars = ax.bar(positions - (width / 2 if reference is not None else 0), ours, width, label=ours_label)
    ax.bar_label(bars, fmt="%.2f", fontsize=9)
    if reference is not None:
        ref_bars = ax.bar(positions + width / 2, reference, width, label=reference_label, color=COLOURS[4])
        ax.bar_label(ref_bars, fmt="%.2f", fontsize=9)
        ax.legend()
    ax.set_xticks(positions, names)
    ax.set(ylabel=ylabel)
    return ax


def table_heatmap(table, ax=None, label: str = "", vmin: float = -1, vmax: float = 1, title: str | None = None):
    """A table of numbers (a DataFrame) as a coloured grid with each value written in, blank where it is NaN: for
    correlations, where the sign matters (red negative, blue positive)."""
    ax = _axes(ax)
    values = np.asarray(table.values, dtype=float)
    image = ax.imshow(values, cmap="RdBu", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(values.shape[1]), table.columns, rotation=30, ha="right")
    ax.set_yticks(range(values.shape[0]), table.index)
    for (row, column), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=8)
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax


def resampled_fits(study, ax=None, n_show: int = 20, title: str | None = None):
    """A few of the fitted models, their mean, and the true function (a bias-variance Study)."""
    ax = _axes(ax)
    x = study.x[:, 0].numpy()
    for row in study.predictions[:n_show].numpy():
        ax.plot(x, row, color=COLOURS[0], alpha=0.25, lw=0.8)
    ax.plot(x, study.predictions.mean(0).numpy(), color=COLOURS[1], lw=2, label="mean of all fits")
    ax.plot(x, study.truth.numpy(), color="black", ls="--", lw=1.5, label="true function")
    spread = float(study.truth.abs().max()) * 2.5
    ax.set(ylim=(-spread, spread), xlabel="x", ylabel="prediction", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return ax


def decomposition_bars(decomposition, ax=None, title: str = "Expected test error"):
    """bias^2, variance and noise as bars, with the directly measured error for comparison."""
    ax = _axes(ax)
    names = ["bias²", "variance", "noise", "sum", "measured"]
    values = [decomposition.bias2, decomposition.variance, decomposition.noise, decomposition.total, decomposition.measured]
    colours = [COLOURS[1], COLOURS[0], "0.6", COLOURS[2], COLOURS[3]]
    ax.bar(names, values, color=colours)
    ax.set_yscale("symlog", linthresh=1e-3)  # linear near zero: an estimated bias² of about 0 stays visible
    ax.set(ylabel="mean squared error", title=title)
    return ax


def decomposition_curves(table, x: str, ax=None, xlabel: str | None = None, title: str | None = None, logx: bool = False):
    """bias^2, variance, noise, their sum and the measured test error against a swept parameter `x`
    (columns bias2, variance, noise, measured of a table)."""
    ax = _axes(ax)
    ax.plot(table[x], table["bias2"], marker="o", color=COLOURS[1], label="bias²")
    ax.plot(table[x], table["variance"], marker="o", color=COLOURS[0], label="variance")
    ax.plot(table[x], table["noise"], ls=":", color="0.5", label="noise")
    ax.plot(table[x], table["bias2"] + table["variance"] + table["noise"], color=COLOURS[2], lw=2.5, label="bias² + variance + noise")
    ax.plot(table[x], table["measured"], ls="", marker="x", ms=8, color="black", label="measured test error")
    ax.set_yscale("symlog", linthresh=1e-3)  # linear below 1e-3: estimates that are zero within noise stay visible
    if logx:
        ax.set_xscale("log", base=2)
    ax.set(xlabel=xlabel or x, ylabel="mean squared error", title=title)
    ax.legend(fontsize=8)
    return ax


def probit_lines(table, x: str, ys: Sequence[str], ax=None, labels: Sequence[str] | None = None, title: str | None = None):
    """Miller et al.'s figure: each row of `table` (a model) a point per column of `ys` (its accuracy under a shift)
    against column `x` (its accuracy in distribution), both on the probit scale with accuracies on the ticks, each
    shift's fitted line (gt.shift.line_fit), and the diagonal of no change."""
    from .shift import line_fit, probit

    ax = _axes(ax)
    grid = np.linspace(*probit([0.15, 0.98]), 50)
    for y, label in zip(ys, labels or ys):
        points = ax.scatter(probit(table[x]), probit(table[y]), s=14, label=label)
        fit = line_fit(table[x], table[y])
        ax.plot(grid, fit.slope * grid + fit.intercept, lw=1, color=points.get_facecolor()[0])
    ax.plot(grid, grid, "k:", lw=1, label="no change")
    ticks = np.array([0.2, 0.4, 0.6, 0.8, 0.9, 0.95])
    ax.set(xticks=probit(ticks), xticklabels=ticks, yticks=probit(ticks), yticklabels=ticks,
           xlabel="accuracy in distribution (probit scale)", ylabel="accuracy under the shift (probit scale)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return ax


def estimates_vs_truth(table, truth: str, estimates: Sequence[str], ax=None, xlabel: str | None = None,
                       ylabel: str = "estimate", title: str | None = None):
    """Each row of `table` a point per column of `estimates` against column `truth`, with the line where an
    estimate equals the truth: how far, and in which direction, each estimate misses."""
    ax = _axes(ax)
    for column, marker in zip(estimates, itertools.cycle("oxs^v")):
        ax.scatter(table[truth], table[column], marker=marker, s=20, label=column)
    ax.axline((0, 0), slope=1, color="k", ls=":", lw=1, label="equal to the truth")
    ax.set(xlabel=xlabel or truth, ylabel=ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def signals(named: dict, index: int = 0, reference: str | None = None, columns: int = 4, title: str | None = None):
    """Example `index` of each split in `named` ({name: TensorData} of 1-D signals), one panel a split, with the
    `reference` split's example drawn in grey behind each: the same example under several changes of its data."""
    shown = [name for name in named if name != reference]
    rows = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.8 * columns, 2.6 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, shown):
        if reference is not None:
            ax.plot(named[reference].x[index].cpu(), color="0.65", label=reference)
        ax.plot(named[name].x[index].cpu(), label=name)
        ax.set_title(f"{name} (class {int(named[name].y[index])})", fontsize=9)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    fig.supxlabel("position")
    fig.supylabel("signal")
    if title:
        fig.suptitle(title)
    return fig
