"""Every exercise check accepts the right answer and rejects a stub and the mistake a student is most likely to
make. The right answers here are written independently of the chapters' solution cells."""
import copy
import functools

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from sklearn.tree import DecisionTreeClassifier
from torch import nn

import gentools as gt
from gentools.claims import CheckFailed


def stub(*args):
    raise NotImplementedError()


def rejects(check, *answers):
    for answer in answers:
        with pytest.raises(CheckFailed):
            check(answer)


def test_a_prediction_is_graded_on_being_made_any_valid_choice_passes():
    for valid in ("raises", "lowers"):  # an honest wrong guess passes too: the run reveals the outcome afterwards
        gt.checks.prediction(valid, ("raises", "lowers"))
    rejects(lambda a: gt.checks.prediction(a, ("raises", "lowers")), "maybe", None, "Raises", ["raises"])
    gt.checks.prediction(False, (True, False))
    rejects(lambda a: gt.checks.prediction(a, (True, False)), 0, "False", None)  # 0 == False, but not a choice
    for valid in (0, 0.3, 1):
        gt.checks.estimate(valid, 0, 1)
    rejects(lambda a: gt.checks.estimate(a, 0, 1), 1.5, -0.1, float("nan"), "0.3", None, True)


def test_tree_gap():
    data = gt.data.load("mnist1d")
    x, y, x_test, y_test = (t.cpu().numpy() for t in (data.train.x, data.train.y, data.test.x, data.test.y))
    tree = DecisionTreeClassifier(max_depth=5, random_state=0).fit(x, y)
    gt.checks.tree_gap(tree.score(x, y) - tree.score(x_test, y_test))
    full = DecisionTreeClassifier(random_state=0).fit(x, y)
    rejects(gt.checks.tree_gap, tree.score(x_test, y_test) - tree.score(x, y),  # the sign turned round
            full.score(x, y) - full.score(x_test, y_test), 0.0)                # the full tree; a placeholder


def test_wilson():
    def right(k, n, z=1.959963984540054):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return centre - half, centre + half

    def normal_approximation(k, n, z=1.96):
        p = k / n
        return p - z * np.sqrt(p * (1 - p) / n), p + z * np.sqrt(p * (1 - p) / n)

    gt.checks.wilson(right)
    rejects(gt.checks.wilson, stub, normal_approximation, lambda k, n: right(k, n, z=1.0))


def test_k_fold_indices():
    gt.checks.k_fold_indices(lambda n, k, seed=0: np.array_split(np.random.default_rng(seed).permutation(n), k))
    rejects(gt.checks.k_fold_indices, stub,
            lambda n, k, seed=0: np.array_split(np.arange(n), k),                       # not shuffled
            lambda n, k, seed=0: [np.random.default_rng(seed).permutation(n)[i::k][:n // k] for i in range(k)],  # drops some
            lambda n, k, seed=0: np.array_split(np.random.permutation(n), k))            # ignores the seed


def test_best_degree_by_noise():
    levels = [0.3, 0.6, 1.0, 2.0]
    errors = {level: [gt.biasvar.polynomial_study(d, n=20, noise=level, repeats=200, seed=1).decomposition
                      for d in range(16)] for level in levels}
    check = functools.partial(gt.checks.best_degree_by_noise, n=20, repeats=200)
    check({level: int(np.argmin([e.measured for e in errors[level]])) for level in levels})
    rejects(check,
            {level: int(np.argmax([e.measured for e in errors[level]])) for level in levels},   # max for min
            {level: int(np.argmin([e.variance for e in errors[level]])) for level in levels},  # the variance alone
            {level: 3 for level in levels}, {0.3: 3})


def test_variance_term():
    gt.checks.variance_term(lambda predictions: float(predictions.var(dim=0, unbiased=True).mean()))
    rejects(gt.checks.variance_term, stub,
            lambda predictions: float(predictions.var(dim=0, unbiased=False).mean()),  # divides by R
            lambda predictions: float(predictions.var(dim=1).mean()))                # across test points


def test_dropconnect():
    def right(layer, x, p):
        keep = torch.rand(layer.weight.shape) >= p
        return F.linear(x, layer.weight * keep / (1 - p), layer.bias)

    def right_other_order(layer, x, p):  # another way of drawing the mask must pass too
        mask = torch.bernoulli(torch.full_like(layer.weight, 1 - p))
        return x @ (layer.weight * mask).T / (1 - p) + layer.bias

    gt.checks.dropconnect(right)
    gt.checks.dropconnect(right_other_order)
    rejects(gt.checks.dropconnect, stub,
            lambda layer, x, p: F.linear(x, layer.weight * (torch.rand_like(layer.weight) >= p), layer.bias),  # no 1/(1-p)
            lambda layer, x, p: layer(F.dropout(x, p)),                                                          # drops inputs
            lambda layer, x, p: F.dropout(layer(x) - layer.bias, p) + layer.bias,                                # drops units
            lambda layer, x, p: layer(x))                                                                        # no mask


def test_smoothed_targets():
    def right(labels, classes, epsilon):
        return torch.full((len(labels), classes), epsilon / classes).scatter_(
            1, labels[:, None], 1 - epsilon + epsilon / classes)

    def other_convention(labels, classes, epsilon):   # the hand-written convention: s / (K - 1) on the other classes
        return torch.full((len(labels), classes), epsilon / (classes - 1)).scatter_(1, labels[:, None], 1 - epsilon)

    gt.checks.smoothed_targets(right)
    gt.checks.smoothed_targets(lambda labels, classes, epsilon: (1 - epsilon) * F.one_hot(labels, classes) + epsilon / classes)
    rejects(gt.checks.smoothed_targets, stub, other_convention,
            lambda labels, classes, epsilon: F.one_hot(labels, classes).float(),                     # no smoothing
            lambda labels, classes, epsilon: (1 - epsilon) * F.one_hot(labels, classes) + epsilon)   # rows sum above 1


def test_thinned_average(small_mnist1d):
    gt.seed_everything(0)
    model = gt.models.MLP(40, [32, 32], 10, dropconnect=0.5)
    gt.fit(model, small_mnist1d, epochs=3, seed=0)
    test = small_mnist1d.test
    model.eval()
    with torch.no_grad():
        scaled = float((model(test.x).argmax(1) == test.y).float().mean())
        model.train()
        torch.manual_seed(1)   # masks of another seed than the check's
        probabilities = torch.stack([model(test.x).softmax(1) for _ in range(100)])
        one_mask = float((probabilities[0].argmax(1) == test.y).float().mean())
    averaged = float((probabilities.mean(0).argmax(1) == test.y).float().mean())
    assert abs(one_mask - averaged) > 0.03   # the mistake below is a real one for this model
    check = functools.partial(gt.checks.thinned_average, model=model, split=test)
    check({"weight scaling": scaled, "average of 100": averaged})
    assert model.training   # the check leaves the model's mode alone
    rejects(check, {}, {"weight scaling": scaled, "average of 100": one_mask},        # one thinned network, not 100
            {"weight scaling": averaged, "average of 100": scaled},                    # swapped
            {"weight scaling": one_mask, "average of 100": averaged})                  # scaled in training mode


def test_random_pixels():
    def right(x, seed):
        gen = torch.Generator().manual_seed(seed)
        return torch.gather(x, 1, torch.argsort(torch.rand(x.shape, generator=gen), dim=1))

    def shared_permutation(x, seed):  # the shuffled-pixels condition
        return x[:, torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(seed))]

    def rows_shuffled(x, seed):
        return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))]

    gt.checks.random_pixels(right)
    rejects(gt.checks.random_pixels, stub, shared_permutation, rows_shuffled,
            lambda x, seed: torch.gather(x, 1, torch.argsort(torch.rand(x.shape), dim=1)))  # ignores the seed


def test_min_norm_curve():
    digits = gt.data.load("digits", test_fraction=0.4, seed=0)
    train, test = digits.train.subset(slice(0, 60)), digits.test.subset(slice(0, 100))
    counts = [10, 30, 60, 120, 400]

    def curve(training, seed=0):
        result = {}
        for p in counts:
            w = gt.linear.least_squares(gt.linear.random_relu_features(training.x, p, seed), F.one_hot(training.y, 10).double())
            out = gt.linear.random_relu_features(test.x, p, seed) @ w
            result[p] = float(((out - F.one_hot(test.y, 10).double()) ** 2).sum(1).mean())
        return result

    right = curve(train)
    peak = max(right, key=right.get)
    gt.checks.min_norm_curve(right, peak, counts, train, test)
    half = curve(train.subset(slice(0, 30)))  # the original, smaller training set
    with pytest.raises(CheckFailed):
        gt.checks.min_norm_curve(half, max(half, key=half.get), counts, train, test)
    with pytest.raises(CheckFailed):
        gt.checks.min_norm_curve({}, 2 * 60, counts, train, test)  # the constant, without the curve
    with pytest.raises(CheckFailed):
        gt.checks.min_norm_curve(right, min(right, key=right.get), counts, train, test)


def test_global_masks():
    torch.manual_seed(0)
    model = gt.models.MLP(40, [30, 20], 10)

    def right(net, fraction):
        weights = {name: layer.weight.detach().abs() for name, layer in gt.prune.layers(net).items()}
        everything = torch.cat([w.flatten() for w in weights.values()])
        threshold = everything.sort().values[round(fraction * everything.numel()) - 1]
        return {name: (w > threshold).float() for name, w in weights.items()}

    def layer_wise(net, fraction):
        return gt.prune.magnitude_masks(net, fraction, scope="layer")

    def keeps_smallest(net, fraction):
        masks = right(net, 1 - fraction)
        return {name: 1 - mask for name, mask in masks.items()}

    gt.checks.global_masks(right, model)
    for wrong in (stub, layer_wise, keeps_smallest):
        with pytest.raises(CheckFailed):
            gt.checks.global_masks(wrong, model)


def test_tree_accuracy_by_size():
    data = gt.data.load("mnist1d")
    x, y, x_test, y_test = (t.cpu().numpy() for t in (data.train.x, data.train.y, data.test.x, data.test.y))
    right = {n: DecisionTreeClassifier(random_state=0).fit(x[:n], y[:n]).score(x_test, y_test) for n in (250, 1000, 4000)}
    gt.checks.tree_accuracy_by_size(right)
    rejects(gt.checks.tree_accuracy_by_size,
            {n: DecisionTreeClassifier(random_state=0).fit(x[:n], y[:n]).score(x[:n], y[:n]) for n in right},  # training accuracy
            {n: DecisionTreeClassifier(max_depth=5, random_state=0).fit(x[:n], y[:n]).score(x_test, y_test) for n in right},
            {250: 0.2})


def test_early_stopping_epochs(small_mnist1d):
    data = small_mnist1d.hold_out(0.25, seed=0)

    def run(patience=None):
        gt.seed_everything(0)
        callbacks = [gt.EarlyStopping("valid_loss", patience=patience)] if patience else []
        return gt.fit(gt.models.MLP(40, [64, 64], 10), data, epochs=40, lr=3e-3, seed=0, callbacks=callbacks)

    full = run()
    runs = {p: run(p) for p in (2, 5, 20)}
    gt.checks.early_stopping_epochs({p: h.meta["best_epoch"] for p, h in runs.items()}, full)
    rejects(lambda kept: gt.checks.early_stopping_epochs(kept, full),
            {p: h.meta["stopped_epoch"] for p, h in runs.items()},  # where training stopped, not the epoch kept
            {p: int(h.final["epoch"]) + 1 for p, h in runs.items()}, {})


def test_constructed_network_accuracy():
    data = gt.data.load("mnist1d", n_train=200, n_test=100, seed=3)

    def accuracy(labels, to_class=lambda out: out.round().clamp(0, 9).long()):
        net = gt.linear.interpolating_relu_network(data.train.x, labels.double(), seed=0)
        with torch.no_grad():
            return float((to_class(net(data.test.x.double())[:, 0]) == data.test.y).double().mean())

    right = accuracy(data.train.y)
    gt.checks.constructed_network_accuracy(right, data)
    mistakes = [accuracy(gt.data.random_labels(data, seed=2).train.y),  # built on random labels
                accuracy(data.train.y, to_class=lambda out: out.long())]  # truncated instead of rounded
    rejects(lambda a: gt.checks.constructed_network_accuracy(a, data), *[m for m in mistakes if m != right], 10.0)
    assert any(m != right for m in mistakes)


def test_min_norm():
    gt.checks.min_norm(lambda x, y: torch.linalg.pinv(x) @ y)
    gt.checks.min_norm(lambda x, y: x.T @ torch.linalg.solve(x @ x.T, y))
    rejects(gt.checks.min_norm, stub,
            lambda x, y: torch.linalg.lstsq(torch.cat([x, torch.zeros(len(x), 1, dtype=x.dtype)], 1), y).solution[:-1] + 0.1,  # not fitting
            lambda x, y: torch.cat([torch.linalg.solve(x[:, :len(x)], y), torch.zeros(x.shape[1] - len(x), y.shape[1], dtype=x.dtype)]))  # fits, not minimal


def test_pruned_accuracies(small_mnist1d):
    gt.seed_everything(0)
    model = gt.models.MLP(40, [64, 32], 10)
    gt.fit(model, small_mnist1d, epochs=3, seed=0)

    def accuracies(scope, keep_fraction_as_fraction=False):
        result = {}
        for kept in (0.05, 0.2, 0.5):
            pruned = copy.deepcopy(model)
            amount = kept if keep_fraction_as_fraction else 1 - kept
            gt.prune.apply_masks(pruned, gt.prune.magnitude_masks(pruned, amount, scope=scope))
            result[kept] = gt.evaluate(pruned, small_mnist1d.test, n_classes=10)["acc"]
        return result

    gt.checks.pruned_accuracies(accuracies("layer"), model, small_mnist1d)
    rejects(lambda a: gt.checks.pruned_accuracies(a, model, small_mnist1d),
            accuracies("layer", keep_fraction_as_fraction=True),  # prunes the kept share instead
            {kept: gt.evaluate(model, small_mnist1d.test, n_classes=10)["acc"] for kept in (0.05, 0.2, 0.5)},  # not pruned
            {0.5: 0.3})


def test_coherence_alpha():
    gt.checks.coherence_alpha(lambda g: float(g.mean(0).pow(2).sum() / g.pow(2).sum(1).mean()))
    rejects(gt.checks.coherence_alpha, stub,
            lambda g: float(g.pow(2).sum(1).mean() / g.mean(0).pow(2).sum()),          # upside down
            lambda g: float(g.norm(dim=1).mean() ** 2 / g.pow(2).sum(1).mean()),       # mean of the norms, not norm of the mean
            lambda g: float(g.sum(0).pow(2).sum() / g.pow(2).sum(1).mean()))           # sum instead of mean: m times too large


def test_subset_coherence(small_mnist1d):
    gt.seed_everything(0)
    model = gt.models.MLP(40, [32], 10)
    gt.fit(model, small_mnist1d, epochs=2, seed=0)
    train = small_mnist1d.train
    subsets = {"first": train.subset(slice(0, 150)), "rest": train.subset(slice(150, None))}
    right = {name: gt.gradients.coherence(model, split, n_classes=10).alpha for name, split in subsets.items()}
    gt.checks.subset_coherence(right, model, subsets)
    fresh = gt.models.MLP(40, [32], 10)
    wrong_model = {name: gt.gradients.coherence(fresh, split, n_classes=10).alpha for name, split in subsets.items()}
    swapped = {"first": right["rest"], "rest": right["first"]}
    m_coherence = {name: gt.gradients.coherence(model, split, n_classes=10).m_coherence for name, split in subsets.items()}
    rejects(lambda answer: gt.checks.subset_coherence(answer, model, subsets), {}, wrong_model, swapped, m_coherence)


def test_fgsm_check(small_mnist1d):
    gt.seed_everything(0)
    model = gt.models.MLP(40, [32], 10)
    gt.fit(model, small_mnist1d, epochs=2, seed=0)

    def input_gradient(net, x, y):
        x = x.clone().requires_grad_(True)
        F.cross_entropy(net(x), y).backward()
        return x.grad

    def right(net, x, y, eps):
        return (x + eps * input_gradient(net, x, y).sign()).detach()

    def descends(net, x, y, eps):
        return (x - eps * input_gradient(net, x, y).sign()).detach()

    def raw_gradient(net, x, y, eps):
        return (x + eps * input_gradient(net, x, y)).detach()

    gt.checks.fgsm(right, model, small_mnist1d)
    def half_step(net, x, y, eps):
        return (x + eps / 2 * input_gradient(net, x, y).sign()).detach()

    rejects(lambda fn: gt.checks.fgsm(fn, model, small_mnist1d), stub, descends, raw_gradient, half_step)


def test_flip_by_steps(small_mnist1d):
    torch.manual_seed(0)
    model = gt.models.CNN1d()
    x = small_mnist1d.test.x
    right = {s: gt.attacks.shift_flip_rate(model, x, s) for s in (1, 2, 4, 8)}
    gt.checks.flip_by_steps(right, model, x)
    zeros = {s: gt.attacks.shift_flip_rate(model, x, s, mode="zeros") for s in (1, 2, 4, 8)}
    rejects(lambda answer: gt.checks.flip_by_steps(answer, model, x), {1: right[1]}, zeros, {s: 1 - v for s, v in right.items()})


def test_linear_ntk():
    gt.checks.linear_ntk(lambda x, z: x @ z.T)
    rejects(gt.checks.linear_ntk, stub, lambda x, z: z @ x.T, lambda x, z: x @ z.T * 3, lambda x, z: (x * x).sum(1, keepdim=True) @ (z * z).sum(1, keepdim=True).T)


def test_fine_tuning_accuracy(small_mnist1d):
    """The reference here is the recipe written out in the test, not the check's code."""
    low, high = small_mnist1d.train.y < 5, small_mnist1d.train.y >= 5
    source = small_mnist1d.replace(train=small_mnist1d.train.subset(low), test=small_mnist1d.test.subset(small_mnist1d.test.y < 5))
    relabel = lambda split: gt.data.TensorData(split.x, split.y - 5)
    target = small_mnist1d.replace(train=relabel(small_mnist1d.train.subset(high).subset(slice(0, 25))),
                                   test=relabel(small_mnist1d.test.subset(small_mnist1d.test.y >= 5)))
    gt.seed_everything(0)
    pretrained = gt.models.MLP(40, [256, 256], 10)
    gt.fit(pretrained, source, epochs=30, optimizer="adam", lr=1e-3, seed=0)
    right, frozen_head = {}, {}
    for rate in (1e-3, 1e-4, 0.0):
        for answers, head_rate in ((right, 1e-3), (frozen_head, rate)):   # the mistake: one rate for the whole network
            gt.seed_everything(1000)
            net = copy.deepcopy(pretrained)
            net[-1] = torch.nn.Linear(256, 10)
            body = [p for layer in list(net)[:-1] for p in layer.parameters()]
            make = lambda params: torch.optim.Adam([{"params": body, "lr": rate}, {"params": net[-1].parameters(), "lr": head_rate}])
            answers[rate] = gt.fit(net, target, epochs=100, seed=0, optimizer=make).final["test_acc"]
    gt.checks.fine_tuning_accuracy(right, source, target)
    wrong_at_one = {**right, 1e-4: right[1e-4] + 0.1 if right[1e-4] < 0.8 else right[1e-4] - 0.1}
    rejects(lambda answer: gt.checks.fine_tuning_accuracy(answer, source, target), {}, {1e-3: 0.41, 1e-4: 0.47},
            {rate: 100 * value for rate, value in right.items()}, wrong_at_one, frozen_head)

def _path_norm_by_paths(model, square=True, biases=True):
    """The path norm layer by layer: one path starts at each input and at each bias, and every layer multiplies the
    paths through it by its (squared) weights. Written here, apart from the check, as the reference it is tested on."""
    power = 2 if square else 1
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    paths = torch.ones(layers[0].in_features, dtype=torch.float64)
    for layer in layers:
        paths = layer.weight.detach().double().abs().pow(power) @ paths
        paths = paths + layer.bias.detach().double().abs().pow(power) if biases else paths
    return paths.sum().item() ** (1 / power)


def test_path_norm_check():
    torch.manual_seed(0)
    net = gt.models.MLP(4, [6, 4], 3)
    assert _path_norm_by_paths(net) == pytest.approx(gt.measures.path_norm(net), rel=1e-9)
    gt.checks.path_norm(_path_norm_by_paths)
    rejects(gt.checks.path_norm, stub, lambda model: _path_norm_by_paths(model) ** 2,
            lambda model: _path_norm_by_paths(model, biases=False), lambda model: _path_norm_by_paths(model, square=False),
            lambda model: torch.ones(2))


def test_speed_tau_check():
    grid = pd.DataFrame({"epochs": [10, 20, np.nan, 40, 15, 30], "gap": [0.5, 0.52, 0.6, 0.58, 0.49, 0.55],
                         "test_acc": [0.5, 0.48, 0.4, 0.42, 0.51, 0.45]})
    reached = grid.dropna()
    right = scipy.stats.kendalltau(reached.epochs, reached.gap).statistic
    gt.checks.speed_tau(right, grid)
    rejects(lambda tau: gt.checks.speed_tau(tau, grid), None, 2.0, -right,
            scipy.stats.pearsonr(reached.epochs, reached.gap).statistic,
            scipy.stats.kendalltau(grid.epochs.fillna(300), grid.gap).statistic,
            scipy.stats.kendalltau(reached.epochs, reached.test_acc).statistic)


def _line_by_hand(accuracy, shifted, probit=True):
    """Miller et al.'s line written out with numpy (a reference apart from gt.shift.line_fit)."""
    scale = scipy.stats.norm.ppf if probit else (lambda values: values)
    slope, intercept = np.polyfit(scale(accuracy), scale(shifted), 1)
    return float(slope), float(intercept)


def test_line_fit_check():
    gt.checks.line_fit(_line_by_hand)
    rejects(gt.checks.line_fit, stub, lambda a, s: _line_by_hand(a, s, probit=False),   # on the raw accuracies
            lambda a, s: _line_by_hand(s, a),                                                # the axes swapped
            lambda a, s: _line_by_hand(a, s)[0], lambda a, s: (1.0, 0.0))


def test_tta_check():
    torch.manual_seed(0)
    net = gt.models.CNN1d().train()
    x = torch.randn(50, 40)
    views = [lambda batch: batch, lambda batch: torch.roll(batch, 1, 1)]

    def by_hand(model, views, mode="eval", average="probabilities"):
        model.train(mode == "train")
        with torch.no_grad():
            outputs = torch.stack([model(view(x)) for view in views])
        return outputs.softmax(2).mean(0) if average == "probabilities" else outputs.mean(0).softmax(1)

    gt.checks.tta(by_hand(net, views), views, net, x)
    rejects(lambda answer: gt.checks.tta(answer, views, net, x), stub, torch.zeros(50, 10),
            by_hand(net, views, average="logits"),              # the logits averaged, then the softmax
            by_hand(net, views[:1]),                            # one view only
            by_hand(net, views).argmax(1))                      # labels, not probabilities
    rejects(lambda answer: gt.checks.tta(by_hand(net, views[:1]), answer, net, x), [views[0]], views[0])
