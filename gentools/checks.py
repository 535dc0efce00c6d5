"""Checks for the chapters' exercises, one function an exercise: `gt.checks.dropconnect(my_dropconnect)`.

A check tests an answer by its properties, or against a reference that is not the solution in view: a gentools
function, or the digest of a number fixed when the chapter was written (which rejects a wrong number without
printing the right one). tests/test_checks.py shows each check accepting the right answer and rejecting a stub and
the mistake a student is most likely to make.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .claims import CheckFailed
from .device import generator
from .models import evaluating

# Digests of answers that are fixed numbers of a deterministic computation (see digest()).
ANSWERS = {
    "tree_gap": "bc06cdfb91969f0e",
    "tree_accuracy_by_size": "af53ee61a392518d",
}


def digest(value: Any, decimals: int = 4) -> str:
    """A short hash of a number (rounded), or of a structure of numbers and strings."""

    def canonical(item: Any) -> Any:
        if isinstance(item, Mapping):
            return sorted((str(key), canonical(v)) for key, v in item.items())
        if isinstance(item, (list, tuple)):
            return [canonical(v) for v in item]
        if isinstance(item, (bool, np.bool_)):
            return bool(item)
        if isinstance(item, (int, np.integer)):
            return int(item)
        if isinstance(item, (float, np.floating)) or hasattr(item, "item"):
            return round(float(item), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
        return str(item)

    return hashlib.sha256(json.dumps(canonical(value)).encode()).hexdigest()[:16]


def _exercise(check: Callable[..., None]) -> Callable[..., None]:
    """A check says '✔ correct' once, when every part of it passed."""

    @functools.wraps(check)
    def checked(*args: Any, **kwargs: Any) -> None:
        from .train import uncached_training

        with uncached_training():  # a reference a check trains is never cached, where a student could read it
            check(*args, **kwargs)
        print("✔ correct")

    return checked


def _require(condition: Any, hint: str) -> None:
    if not bool(condition):
        raise CheckFailed(f"Not yet: {hint}")


def _matches(value: Any, name: str, hint: str, decimals: int = 4) -> None:
    """Accuracies on 1000 or 4000 examples have at most 5 decimals: rounding them there is exact."""
    _require(digest(value, decimals) == ANSWERS[name], hint)


def _call(fn: Callable, *args: Any) -> Any:
    """Run the student's function; a stub's NotImplementedError becomes a plain 'not yet'."""
    try:
        return fn(*args)
    except NotImplementedError as error:
        raise CheckFailed("Not yet: the function still raises NotImplementedError; replace the stub with your code.") from error


# --- predictions: compared with what the chapter then measures ----------------------------------------------

@_exercise
def prediction(answer: Any, choices: tuple) -> None:
    """A predict-then-run question: graded on a prediction being made before the run, so any one of `choices`
    passes (an honest wrong guess is what the exercise is for); the run after the check reveals the outcome."""
    _require(isinstance(answer, type(choices[0])) and answer in choices,
             f"answer with one of {', '.join(map(repr, choices))}")
    print(f"prediction recorded: {answer!r}; now run the next cell and compare")


@_exercise
def estimate(answer: float, low: float, high: float) -> None:
    """A predicted number, graded on being a number in [low, high] (the range the quantity can take), made before
    the run that measures it."""
    _require(isinstance(answer, (int, float, np.number)) and not isinstance(answer, (bool, np.bool_))
             and np.isfinite(answer) and low <= answer <= high, f"answer with a number from {low:g} to {high:g}")
    print(f"estimate recorded: {answer:g}; now run the next cell and compare")


# --- chapter 1 -----------------------------------------------------------------------------------------------

@_exercise
def tree_gap(gap: float) -> None:
    """The generalization gap of a depth-5 tree on the reference MNIST-1D (a fixed number)."""
    _matches(gap, "tree_gap", decimals=5, hint="train DecisionTreeClassifier(max_depth=5, random_state=0) on (x, y), then subtract "
             "its accuracy on (x_test, y_test) from its accuracy on (x, y)")


@_exercise
def wilson(fn: Callable[[int, int], tuple[float, float]]) -> None:
    """fn(k, n): the 95% Wilson score interval, against gt.stats.wilson_interval."""
    from .stats import wilson_interval

    cases = [(0, 10), (3, 10), (650, 1000), (999, 1000), (5000, 10000)]
    mine = np.array([_call(fn, k, n) for k, n in cases], dtype=float)
    reference = np.array([wilson_interval(k, n) for k, n in cases])
    _require(mine.shape == reference.shape, "return the interval as a pair (low, high)")
    _require(np.allclose(mine, reference, rtol=1e-6, atol=1e-9), "compare your formula term by term with the one above")


@_exercise
def k_fold_indices(fn: Callable[[int, int, int], list]) -> None:
    """fn(n, k, seed): k disjoint, shuffled folds covering range(n), sizes within one."""
    folds = _call(fn, 103, 5, 1)
    _require(len(folds) == 5, "return exactly k folds")
    joined = np.concatenate([np.asarray(fold) for fold in folds])
    _require(sorted(joined.tolist()) == list(range(103)), "every index must appear in exactly one fold")
    _require(max(map(len, folds)) - min(map(len, folds)) <= 1, "fold sizes may differ by at most one")
    _require(not np.array_equal(joined, np.arange(103)), "shuffle the indices before cutting them into folds")
    again = np.concatenate([np.asarray(fold) for fold in _call(fn, 103, 5, 1)])
    _require(np.array_equal(joined, again), "the same seed must give the same folds")


@_exercise
def tree_accuracy_by_size(accuracy: Mapping[int, float]) -> None:
    """Test accuracy of the fully grown tree trained on the first n reference signals (fixed numbers)."""
    _require(isinstance(accuracy, Mapping) and sorted(int(n) for n in accuracy) == [250, 1000, 4000],
             "tree_accuracy_by_n must be a dict with the keys 250, 1000 and 4000")
    _matches({str(int(n)): float(a) for n, a in accuracy.items()}, "tree_accuracy_by_size", decimals=4,
             hint="for each n, fit DecisionTreeClassifier(random_state=0) on x[:n], y[:n] and score it on (x_test, y_test)")


# --- chapter 2 -----------------------------------------------------------------------------------------------

@_exercise
def variance_term(fn: Callable[[torch.Tensor], float]) -> None:
    """fn(predictions): the variance across models (unbiased), averaged over test points, against gt.biasvar."""
    from .biasvar import polynomial_study

    for degree in (1, 6):
        study = polynomial_study(degree, n=20, noise=0.5, repeats=30, seed=7)
        _require(np.isclose(float(_call(fn, study.predictions)), study.decomposition.variance, rtol=1e-9),
                 "take the variance over the first dimension (models, with R - 1 in the denominator), then the mean over test points")


@_exercise
def best_degree_by_noise(best: Mapping[float, int], n: int, repeats: int) -> None:
    """The degree with the lowest measured test error at each noise level, against gt.biasvar's studies (seed 1,
    so the reference follows GENTOOLS_SEED as the student's studies do)."""
    from .biasvar import polynomial_study

    _require(isinstance(best, Mapping) and sorted(best) == [0.3, 0.6, 1.0, 2.0],
             "best_by_noise must be a dict with the keys 0.3, 0.6, 1.0 and 2.0")
    _require(all(isinstance(v, (int, np.integer)) and 0 <= v <= 15 for v in best.values()),
             "each value must be a degree: a whole number from 0 to 15")
    reference = {level: int(np.argmin([polynomial_study(degree, n=n, noise=level, repeats=repeats, seed=1).decomposition.measured
                                        for degree in range(16)])) for level in best}
    _require({float(k): int(v) for k, v in best.items()} == reference,
             "for each noise level, keep the degree whose .decomposition.measured is smallest")


# --- chapter 3 -----------------------------------------------------------------------------------------------

@_exercise
def early_stopping_epochs(kept: Mapping[int, int], history) -> None:
    """The epoch early stopping keeps, for each patience, in a run identical to `history` (the same seed, data and
    settings, trained to the end): worked out from that run's validation losses."""
    losses = history["valid_loss"]
    _require(isinstance(kept, Mapping) and kept, "kept_epoch must be a dict from patience to the epoch kept")
    for patience, epoch in kept.items():
        best_epoch, best = 0, np.inf
        for e in range(1, len(losses)):
            if losses[e] < best:
                best_epoch, best = e, losses[e]
            if e - best_epoch >= int(patience):
                break
        _require(int(epoch) == best_epoch,
                 f"with patience {patience} the epoch kept is not the one early stopping keeps: read "
                 "history.meta['best_epoch'] (the epoch of lowest validation loss), not where training stopped")


@_exercise
def smoothed_targets(fn: Callable[[torch.Tensor, int, float], torch.Tensor]) -> None:
    """fn(labels, classes, epsilon): the target distributions of PyTorch's label smoothing, tested against
    F.cross_entropy(..., label_smoothing=epsilon) on random logits."""
    torch.manual_seed(2024)
    labels = torch.randint(0, 7, (64,))
    logits = torch.randn(64, 7, dtype=torch.float64) * 2
    for epsilon in (0.0, 0.1, 0.35):
        targets = _call(fn, labels, 7, epsilon)
        _require(isinstance(targets, torch.Tensor) and tuple(targets.shape) == (64, 7),
                 f"return a tensor of shape (number of labels, classes) = (64, 7), not {getattr(targets, 'shape', type(targets))}")
        targets = targets.double()
        _require(torch.allclose(targets.sum(1), torch.ones(64, dtype=torch.float64), atol=1e-6),
                 "each row must be a distribution: its entries sum to 1")
        losses = -(targets * logits.log_softmax(1)).sum(1)   # one loss a label, each against PyTorch's
        _require(torch.allclose(losses, F.cross_entropy(logits, labels, label_smoothing=epsilon, reduction="none"), atol=1e-6),
                 f"with epsilon = {epsilon} the targets give another loss than PyTorch's label_smoothing: PyTorch mixes the "
                 "one-hot target with the uniform distribution over all K classes, the true class included")


# --- chapter 4 -----------------------------------------------------------------------------------------------

@_exercise
def dropconnect(fn: Callable[[nn.Linear, torch.Tensor, float], torch.Tensor]) -> None:
    """fn(layer, x, p): a linear layer's training-mode output with DropConnect, tested by its properties: unbiased,
    random, masking weights (not inputs) independently, and the plain layer at p = 0."""
    torch.manual_seed(12345)
    layer = nn.Linear(6, 4)
    x = torch.randn(3, 6)
    with torch.no_grad():
        out = _call(fn, layer, x, 0.0)
        _require(tuple(out.shape) == (3, 4), f"the output must have shape (3, 4) for 3 inputs and 4 units, not {tuple(out.shape)}")
        _require(torch.allclose(out, layer(x), atol=1e-6), "with p = 0 nothing is dropped: the output is layer(x)")
        draws = torch.stack([_call(fn, layer, x, 0.5) for _ in range(4000)])
        _require(draws.std(0).min() > 0.01, "with p = 0.5 the output must change from call to call (a fresh mask each time)")
        error = (draws.mean(0) - layer(x)).abs().max() / (draws.std(0).max() / np.sqrt(len(draws)))
        _require(error < 5, "on average the output must equal layer(x): scale the kept weights by 1 / (1 - p)")
        ones = nn.Linear(5, 8)  # 8 units that read the same 5 inputs with weights 1
        ones.weight.fill_(1.0)
        ones.bias.fill_(0.0)
        units = torch.stack([_call(fn, ones, torch.ones(1, 5), 0.5)[0] for _ in range(200)])
        _require((units != units[:, :1]).any(1).float().mean() > 0.9,
                 "drop weights, not inputs: units that read the same input must each get their own mask")
        _require(len(torch.unique(units)) >= 4,
                 "drop single weights, not whole units: a unit's output must be able to lose some of its inputs only")


@_exercise
def thinned_average(accuracy: Mapping[str, float], model: nn.Module, split: Any) -> None:
    """A DropConnect (or dropout) network's test accuracy with weight scaling and averaged over 100 thinned networks,
    against evaluation mode and gt.ensemble.thinned_probabilities with masks of another seed."""
    from .ensemble import averaged_accuracy, thinned_probabilities

    keys = {"weight scaling", "average of 100"}
    _require(isinstance(accuracy, Mapping) and set(accuracy) == keys, f"answer with a dict with the keys {sorted(keys)}")
    with evaluating(model), torch.inference_mode():
        scaled = float((model(split.x).argmax(-1) == split.y).float().mean())
    _require(abs(float(accuracy["weight scaling"]) - scaled) < 1e-6,
             "weight scaling is the network in evaluation mode (model.eval()), every weight kept, on the test split")
    reference = averaged_accuracy(thinned_probabilities(model, split.x, 100, seed=777), split.y)
    _require(abs(float(accuracy["average of 100"]) - reference) < 0.015,
             "average the predicted probabilities of 100 thinned networks (gt.ensemble.thinned_probabilities), then take "
             "the accuracy of that average (gt.ensemble.averaged_accuracy), on the test split")


# --- chapter 5 -----------------------------------------------------------------------------------------------

@_exercise
def random_pixels(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """fn(x, seed): each row of x permuted by its own random permutation."""
    rows = torch.arange(40.0).repeat(50, 1)  # 50 identical rows: what comes back shows the permutations
    out = _call(fn, rows, 0)
    _require(tuple(out.shape) == (50, 40), f"return a tensor of the input's shape (50, 40), not {tuple(out.shape)}")
    _require(torch.equal(out.sort(dim=1).values, rows), "each row must keep exactly its own values, only reordered")
    _require(len({tuple(row.tolist()) for row in out}) == 50,
             "every row needs its own permutation: one permutation shared by all rows is 'shuffled pixels'")
    data = torch.randn(30, 12, generator=generator(1))
    mixed = _call(fn, data, 0)
    _require(torch.equal(mixed.sort(dim=1).values, data.sort(dim=1).values), "permute within each row, never across rows")
    _require(torch.equal(_call(fn, data, 0), mixed) and not torch.equal(_call(fn, data, 1), mixed),
             "the same seed must give the same permutations, another seed other ones")


@_exercise
def constructed_network_accuracy(accuracy: float, data) -> None:
    """Test accuracy (outputs rounded to the nearest class) of Zhang et al.'s 2n + d network built on the *true*
    labels of `data`, against gentools' own construction."""
    from .linear import interpolating_relu_network

    net = interpolating_relu_network(data.train.x, data.train.y.double(), seed=0)
    with torch.no_grad():
        guessed = net(data.test.x.double().cpu())[:, 0].round().clamp(0, data.n_classes - 1).long()
    reference = float((guessed == data.test.y.cpu()).double().mean())
    _require(isinstance(accuracy, (float, np.floating)) and 0 <= accuracy <= 1, "answer with an accuracy between 0 and 1")
    _require(abs(accuracy - reference) < 1e-9, "build the network on the true labels (seed 0), round its test outputs "
             "to the nearest class (clamped to 0-9) and compare with the test labels")


# --- chapter 6 -----------------------------------------------------------------------------------------------

@_exercise
def min_norm(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """fn(features, targets): the minimum-norm weights that fit every target, for more features than examples."""
    from .linear import least_squares

    gen = generator(5)
    for n, p in ((5, 12), (20, 60)):
        features = torch.randn(n, p, generator=gen, dtype=torch.float64)
        targets = torch.randn(n, 3, generator=gen, dtype=torch.float64)
        weights = torch.as_tensor(_call(fn, features, targets), dtype=torch.float64)
        _require(tuple(weights.shape) == (p, 3), f"return weights of shape (features, outputs) = ({p}, 3)")
        _require(torch.allclose(features @ weights, targets, atol=1e-8), "the weights must fit every training target exactly")
        _require(torch.allclose(weights, least_squares(features, targets), atol=1e-8),
                 "many weights fit the targets; return the one of smallest norm (it lies in the span of the examples)")



@_exercise
def min_norm_curve(mse_by_p: Mapping[int, float], peak_at: int, counts, train, test) -> None:
    """Test MSE of the minimum-norm read-out on p random ReLU features (seed 0) of `train`, for every p in
    `counts`, and the p where it is largest; spot-checked against gentools on three of the counts."""
    from .linear import least_squares, random_relu_features

    _require(isinstance(mse_by_p, Mapping) and sorted(int(p) for p in mse_by_p) == sorted(int(p) for p in counts),
             "mse_by_p must map every number of features in `counts` to a test MSE")
    _require(int(peak_at) == max(mse_by_p, key=mse_by_p.get), "peak_at must be the p with the largest test MSE in mse_by_p")
    ordered = sorted(mse_by_p)
    targets_train, targets_test = F.one_hot(train.y, 10).double(), F.one_hot(test.y, 10).double()
    for p in {peak_at, ordered[0], ordered[len(ordered) // 2]}:
        weights = least_squares(random_relu_features(train.x, int(p), 0), targets_train)
        reference = float(((random_relu_features(test.x, int(p), 0) @ weights - targets_test) ** 2).sum(1).mean())
        _require(np.isclose(mse_by_p[p], reference, rtol=1e-6),
                 f"the test MSE at p = {p} is not the minimum-norm read-out's on the doubled training set: use `bigger` "
                 "for training, `test` for testing, and feature seed 0")


# --- chapter 7 -----------------------------------------------------------------------------------------------

@_exercise
def pruned_accuracies(accuracy: Mapping[float, float], model: nn.Module, data) -> None:
    """Test accuracy of `model` with its weights pruned by magnitude, layer by layer, to each kept share, without
    retraining; against gentools' pruning of a copy."""
    import copy

    from .prune import apply_masks, magnitude_masks
    from .train import evaluate

    _require(isinstance(accuracy, Mapping) and sorted(accuracy) == [0.05, 0.2, 0.5],
             "accuracy_by_kept must be a dict with the keys 0.05, 0.2 and 0.5 (the share of weights kept)")
    for kept, value in accuracy.items():
        pruned = copy.deepcopy(model)
        apply_masks(pruned, magnitude_masks(pruned, 1 - kept))
        reference = evaluate(pruned, data.test, n_classes=data.n_classes)["acc"]
        _require(abs(float(value) - reference) < 1e-9,
                 f"keeping {kept:.0%}: prune a copy of the trained network layer by layer (magnitude_masks with fraction "
                 "1 - kept, all layers alike), then measure its test accuracy; do not retrain")



@_exercise
def global_masks(fn: Callable[[nn.Module, float], dict[str, torch.Tensor]], model: nn.Module) -> None:
    """fn(model, fraction): masks removing `fraction` of all prunable weights at once, smallest magnitudes first."""
    from .prune import layers

    found = layers(model)
    masks = _call(fn, model, 0.8)
    _require(isinstance(masks, Mapping) and set(masks) == set(found), f"return one mask for each layer: {sorted(found)}")
    _require(all(masks[name].shape == layer.weight.shape for name, layer in found.items()), "each mask has its layer's weight shape")
    kept = torch.cat([masks[name].flatten().bool() for name in found])
    magnitude = torch.cat([layer.weight.detach().abs().flatten() for layer in found.values()])
    _require(abs(kept.float().mean().item() - 0.2) < 1e-3, "remove 80% of all the weights, so that 20% remain overall")
    _require(magnitude[kept].min() >= magnitude[~kept].max(),
             "every weight kept must be at least as large in magnitude as every weight removed, across all layers at once")


# --- chapter 8 -----------------------------------------------------------------------------------------------

@_exercise
def coherence_alpha(fn: Callable[[torch.Tensor], float]) -> None:
    """fn(g) for a matrix of per-example gradients (one row an example): ||mean of rows||^2 / mean of ||row||^2.
    Tested on gradients built to be identical and orthogonal, and on random ones against the average pairwise dot
    product (a second route to the same number)."""
    m = 8
    row = torch.randn(1, 5, generator=generator(0))
    _require(abs(float(_call(fn, row.repeat(m, 1))) - 1.0) < 1e-5, "identical gradients must give coherence 1")
    _require(abs(float(fn(3 * torch.eye(m))) - 1 / m) < 1e-6,
             "m orthogonal gradients of equal norm must give 1/m: average the gradients before taking the squared norm")
    g = torch.randn(m, 20, generator=generator(1), dtype=torch.float64) + 0.5
    pairwise = (g @ g.T).mean() / (g * g).sum(1).mean()
    _require(abs(float(fn(g)) - float(pairwise)) < 1e-6 * float(pairwise),
             "divide the squared norm of the mean gradient by the mean of the squared norms (not the norm of the "
             "mean of the norms, and not the other way round)")


@_exercise
def subset_coherence(alphas: Mapping[str, float], model: nn.Module, subsets: Mapping[str, Any]) -> None:
    """The coherence alpha of `model`'s per-example gradients on each subset, against the gradients formed one
    example at a time by torch.func."""
    from .losses import per_example_loss

    _require(isinstance(alphas, Mapping) and set(alphas) == set(subsets),
             f"coherence must be a dict with the keys {sorted(subsets)}")
    each = per_example_loss("cross_entropy", 10)
    params = {name: p.detach() for name, p in model.named_parameters()}
    with evaluating(model):
        for name, split in subsets.items():
            def one(p, xi, yi):
                return each(torch.func.functional_call(model, p, (xi[None],)), yi[None]).sum()

            grads = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0, 0))(params, split.x, split.y)
            flat = torch.cat([g.flatten(1) for g in grads.values()], 1).double()
            reference = float(flat.mean(0).pow(2).sum() / flat.pow(2).sum(1).mean())
            _require(abs(float(alphas[name]) - reference) <= 1e-3 * reference,
                     f"the {name} examples' coherence differs from the measured one: use the trained model as it is, "
                     "all the examples of that subset, and their (noisy) training labels")


# --- chapter 9 -----------------------------------------------------------------------------------------------

@_exercise
def fgsm(fn: Callable[[nn.Module, torch.Tensor, torch.Tensor, float], torch.Tensor], model: nn.Module, data) -> None:
    """fn(model, x, y, eps): the fast gradient sign method, against gt.attacks.fgsm on test inputs."""
    from . import attacks

    x, y = data.test.x[:200], data.test.y[:200]
    answer = _call(fn, model, x, y, 0.1)
    _require(isinstance(answer, torch.Tensor) and answer.shape == x.shape, "return a tensor of the inputs' shape")
    _require(not answer.requires_grad, "detach the result from the graph (return x_adv.detach())")
    _require((answer - x).abs().max() <= 0.1 + 1e-5, "every coordinate may move by at most eps")
    reference = attacks.fgsm(model, x, y, 0.1)
    moved_up = (answer - x) > 0
    _require(torch.equal(moved_up, (reference - x) > 0),
             "move each coordinate by eps in the direction that *increases* the loss: the sign of its gradient")
    _require(torch.allclose(answer, reference, atol=1e-5), "move every coordinate by exactly eps (the sign, not the gradient)")


@_exercise
def flip_by_steps(flips: Mapping[int, float], model: nn.Module, x: torch.Tensor) -> None:
    """The share of predictions changed by circular shifts of 1, 2, 4 and 8 steps, against gt.attacks."""
    from . import attacks

    _require(isinstance(flips, Mapping) and sorted(flips) == [1, 2, 4, 8], "flip_by_steps needs the keys 1, 2, 4 and 8")
    for steps, value in flips.items():
        reference = attacks.shift_flip_rate(model, x, steps)
        _require(abs(float(value) - reference) < 1e-9,
                 f"the flip rate for a shift of {steps} differs: shift all test inputs circularly by that many steps and "
                 "count the predictions that change")


# --- chapter 10 ----------------------------------------------------------------------------------------------

@_exercise
def linear_ntk(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """fn(x, z): the output-averaged NTK of a linear model without bias, between the rows of x and of z."""
    gen = generator(0)
    x, z = torch.randn(6, 4, generator=gen), torch.randn(3, 4, generator=gen)
    answer = _call(fn, x, z)
    _require(isinstance(answer, torch.Tensor) and answer.shape == (6, 3), "return an (n, m) matrix: one row per row of x")
    _require(torch.allclose(answer.double(), (x @ z.T).double(), atol=1e-5),
             "write down the gradient of one output with respect to the weight matrix, take the inner product of that "
             "gradient at a row of x with the same gradient at a row of z, then average over the outputs")


@_exercise
def fine_tuning_accuracy(accuracy: Mapping[float, float], source, target) -> None:
    """Test accuracies after fine-tuning with the pre-trained layers at learning rates 1e-3, 1e-4 and 0 (the new last
    layer at 1e-3). Every entry is compared with a reference trained here by the recipe the exercise states
    (pre-training: seed 0, MLP 40-256-256, Adam 1e-3, 30 epochs on `source`; then a new last layer, seed 1000, 100
    epochs on `target`), so a wrong number is rejected without the right one being shown."""
    rates = [1e-3, 1e-4, 0.0]
    _require(isinstance(accuracy, Mapping) and sorted(accuracy) == sorted(rates),
             "fine_tuning_accuracy needs the keys 0.001, 0.0001 and 0.0 (the pre-trained layers' learning rates)")
    _require(all(0 <= float(v) <= 1 for v in accuracy.values()), "the values are test accuracies, between 0 and 1")
    from .device import seed_everything
    from .models import MLP
    from .train import fit

    seed_everything(0)
    pretrained = MLP(40, [256, 256], source.n_classes)
    fit(pretrained, source, epochs=30, optimizer="adam", lr=1e-3, seed=0, measure_every=None)
    for rate in rates:
        seed_everything(1000)
        net = copy.deepcopy(pretrained)
        net[-1] = nn.Linear(net[-1].in_features, target.n_classes)
        body = [p for layer in list(net)[:-1] for p in layer.parameters()]
        head = list(net[-1].parameters())
        reference = fit(net, target, epochs=100, seed=0, measure_every=None, optimizer=lambda params: torch.optim.Adam(
            [{"params": body, "lr": rate}, {"params": head, "lr": 1e-3}])).final["test_acc"]
        _require(abs(float(accuracy[rate]) - reference) < 0.02,
                 f"the accuracy for the pre-trained layers' rate {rate:g} differs from a run of the recipe: pre-train as "
                 "transfer_run does (seed 0), give the network a new last layer after gt.seed_everything(1000), put the "
                 "pre-trained layers and the new layer in two parameter groups of one Adam, and train 100 epochs")


# --- chapter 11 ----------------------------------------------------------------------------------------------

@_exercise
def path_norm(fn: Callable[[nn.Module], float]) -> None:
    """fn(model): the l2 path norm of a ReLU MLP (biases included), checked on random networks of several depths
    against gt.measures.path_norm, which computes it another way (one forward pass of the squared weights)."""
    from .measures import path_norm as reference
    from .models import MLP

    gen = generator(10)
    for widths in ([5], [6, 4], [3, 5, 4]):
        net = MLP(4, widths, 3)
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=gen))
        answer = _call(fn, net)
        _require(isinstance(answer, (float, int, np.floating, torch.Tensor)) and np.ndim(answer) == 0,
                 "return one number for the network")
        _require(np.isclose(float(answer), reference(net), rtol=1e-4),
                 "sum, over every path from an input or a bias to an output, the product of the squared weights on "
                 "the path (a bias starts a path at its unit), then take the square root; a depth-by-depth product of "
                 "squared weight matrices computes it without listing paths")


@_exercise
def speed_tau(tau: float, grid) -> None:
    """Kendall's tau between the epochs each network of the grid needed to reach the stopping loss and its
    generalization gap, over the networks that reached it; recomputed here from the grid's columns."""
    import scipy.stats

    _require(isinstance(tau, (float, int, np.floating)) and not isinstance(tau, (bool, np.bool_)) and -1 <= tau <= 1,
             "tau is a rank correlation: one number between -1 and 1 (NaN means a network without epochs was kept: "
             "leave out those that never reached the stopping loss)")
    reached = grid[grid["epochs"].notna()]
    reference = scipy.stats.kendalltau(reached["epochs"], reached["gap"]).statistic
    _require(abs(float(tau) - reference) < 1e-6,
             "rank the networks that reached the stopping loss by their epochs and by their gap (training accuracy "
             "minus test accuracy), and compare the two rankings with Kendall's tau (scipy.stats.kendalltau)")


# --- chapter 12 ----------------------------------------------------------------------------------------------

@_exercise
def line_fit(fn: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> None:
    """fn(accuracy, shifted_accuracy) -> (slope, intercept) of Miller et al.'s line, checked on zoos of made-up
    accuracies against gt.shift.line_fit."""
    from .shift import line_fit as reference

    rng = np.random.default_rng(11)
    for _ in range(3):
        accuracy = rng.uniform(0.3, 0.97, 15)
        shifted = np.clip(accuracy - rng.uniform(0.05, 0.4) * accuracy ** 2 + rng.normal(0, 0.02, 15), 0.05, 0.95)
        answer = _call(fn, accuracy.copy(), shifted.copy())
        _require(isinstance(answer, tuple) and len(answer) == 2 and all(np.ndim(value) == 0 for value in answer),
                 "return a pair of numbers: (slope, intercept)")
        expected = reference(accuracy, shifted)
        _require(np.allclose([float(answer[0]), float(answer[1])], [expected.slope, expected.intercept], rtol=1e-4, atol=1e-6),
                 "fit the line to the probit of both accuracies (scipy.stats.norm.ppf), by least squares with the "
                 "shifted accuracy as the response: shifted = slope * accuracy + intercept on that scale")


@_exercise
def tta(probabilities: torch.Tensor, views, model: nn.Module, x: torch.Tensor) -> None:
    """Test-time augmentation by hand: the model's class probabilities averaged over the student's `views` of x
    (at least two, the input itself among them or not), recomputed here by gt.shift.tta_probabilities."""
    from .shift import tta_probabilities

    _require(isinstance(views, (list, tuple)) and len(views) >= 2 and all(callable(view) for view in views),
             "views is a list of at least two functions of a batch of signals (one may be lambda x: x)")
    _require(isinstance(probabilities, torch.Tensor) and probabilities.shape == (len(x), 10),
             f"probabilities holds one row of 10 class probabilities for each of the {len(x)} signals")
    expected = tta_probabilities(model, x, views).cpu()
    answer = probabilities.detach().float().cpu()
    _require(torch.allclose(answer.sum(1), torch.ones(len(x)), atol=1e-4),
             "each row must be probabilities that sum to 1: apply softmax to each view's outputs before averaging")
    _require(torch.allclose(answer, expected, atol=1e-5),
             "average the softmax probabilities over the views, each view applied to the whole batch, with the model "
             "in evaluation mode (model.eval(), under torch.no_grad())")
