import pytest
import torch

import gentools as gt
from gentools.ensemble import StackedMLP, evaluate_stacked, fit_stacked, stack


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 1e-2)])
def test_models_trained_together_equal_models_trained_one_by_one(small_mnist1d, optimizer, lr):
    seeds = [0, 1, 2]
    options = dict(epochs=3, optimizer=optimizer, lr=lr, weight_decay=1e-4, batch_size=64)
    stacked = StackedMLP(40, [16, 16], 10, seeds=seeds)
    fit_stacked(stacked, stack(small_mnist1d.train.x, 3), stack(small_mnist1d.train.y, 3), loss="cross_entropy",
                n_classes=10, **options)
    together = evaluate_stacked(stacked, stack(small_mnist1d.test.x, 3), stack(small_mnist1d.test.y, 3),
                                loss="cross_entropy", n_classes=10)
    for i, seed in enumerate(seeds):
        torch.manual_seed(seed)
        alone = gt.models.MLP(40, [16, 16], 10)
        gt.fit(alone, small_mnist1d, seed=seed, **options)
        for mine, theirs in zip(stacked.member(i).parameters(), alone.parameters()):
            torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)
        assert together["acc"][i].item() == pytest.approx(gt.evaluate(alone, small_mnist1d.test, n_classes=10)["acc"])


def test_each_member_can_have_its_own_training_set():
    x, y = gt.biasvar.training_sets("sin", n=20, noise=0.1, repeats=4, seed=0)
    model = StackedMLP(1, [32], 1, seeds=range(4))
    before = evaluate_stacked(model, x, y)["loss"]
    final = fit_stacked(model, x, y, epochs=300, lr=1e-2)
    assert final.shape == (4,) and bool((final < before / 5).all())
    shifted = y.clone()
    shifted[0] += 10.0  # only member 0 sees different targets
    other = StackedMLP(1, [32], 1, seeds=range(4))
    fit_stacked(other, x, shifted, epochs=300, lr=1e-2)
    assert torch.allclose(other.member(1)(x[1]), model.member(1)(x[1]))
    assert not torch.allclose(other.member(0)(x[0]), model.member(0)(x[0]))


def test_shapes_are_checked_and_divergence_is_reported():
    model = StackedMLP(1, [4], 1, seeds=[0, 1])
    with pytest.raises(ValueError, match="must have shape"):
        fit_stacked(model, torch.zeros(3, 5, 1), torch.zeros(3, 5, 1), epochs=1)
    with pytest.raises(gt.train.DivergedError, match="smaller learning rate"):
        fit_stacked(model, torch.full((2, 5, 1), float("nan")), torch.zeros(2, 5, 1), epochs=1)
    with pytest.raises(ValueError, match="at least one member"):
        StackedMLP(1, [4], 1, seeds=[])


def test_evaluate_splits_measures_every_split_for_every_member(small_mnist1d):
    data = small_mnist1d.hold_out(0.25)
    model = StackedMLP(40, [8], 10, seeds=[0, 1])
    measured = gt.ensemble.evaluate_splits(model, data, loss="cross_entropy")
    assert list(measured) == ["train", "valid", "test"]
    alone = gt.evaluate(model.member(1), data.valid, n_classes=10)
    assert measured["valid"]["acc"].shape == (2,) and measured["valid"]["acc"][1].item() == pytest.approx(alone["acc"])
    assert measured["valid"]["loss"][1].item() == pytest.approx(alone["loss"], rel=1e-5)


def test_recorded_curves_match_the_final_loss(small_mnist1d):
    k = 2
    x, y = stack(small_mnist1d.train.x, k), stack(small_mnist1d.train.y, k)
    final = fit_stacked(StackedMLP(40, [16], 10, seeds=[0, 1]), x, y, epochs=4, lr=1e-2, batch_size=100,
                        loss="cross_entropy", n_classes=10)
    curves = fit_stacked(StackedMLP(40, [16], 10, seeds=[0, 1]), x, y, epochs=4, lr=1e-2, batch_size=100,
                         loss="cross_entropy", n_classes=10, record=True)
    assert curves["loss"].shape == curves["acc"].shape == (4, k)
    torch.testing.assert_close(curves["loss"][-1], final.cpu())
    assert curves["loss"][-1].lt(curves["loss"][0]).all() and curves["acc"][-1].gt(curves["acc"][0]).all()


def test_on_epoch_runs_after_every_epoch_with_the_model(small_mnist1d):
    model = StackedMLP(40, [8], 10, seeds=[0, 1])
    seen = []
    fit_stacked(model, stack(small_mnist1d.train.x, 2), stack(small_mnist1d.train.y, 2), epochs=3, loss="cross_entropy",
                n_classes=10, batch_size=100, on_epoch=lambda epoch, net: seen.append((epoch, net is model)))
    assert seen == [(1, True), (2, True), (3, True)]


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 1e-2)])
def test_a_padded_member_trains_exactly_like_the_narrow_network_alone(small_mnist1d, optimizer, lr):
    own = [[4, 4], [16, 16], [9, 5]]
    seeds = [0, 0, 1]
    options = dict(epochs=3, optimizer=optimizer, lr=lr, weight_decay=1e-3, batch_size=64)
    stacked = StackedMLP(40, [16, 16], 10, seeds=seeds, member_widths=own)
    fit_stacked(stacked, stack(small_mnist1d.train.x, 3), stack(small_mnist1d.train.y, 3), loss="cross_entropy",
                n_classes=10, **options)
    for i, (widths, seed) in enumerate(zip(own, seeds)):
        torch.manual_seed(seed)
        alone = gt.models.MLP(40, widths, 10)
        gt.fit(alone, small_mnist1d, seed=seed, **options)
        for mine, theirs in zip(stacked.member(i).parameters(), alone.parameters()):
            torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)
        first, second = stacked.weights[0][i], stacked.weights[1][i]
        assert first[:, widths[0]:].eq(0).all() and second[widths[0]:].eq(0).all() and second[:, widths[1]:].eq(0).all()
        assert stacked.weights[2][i, widths[1]:].eq(0).all() and stacked.biases[0][i, 0, widths[0]:].eq(0).all()


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "identity"])
def test_member_is_the_network_that_was_trained(activation):
    stacked = StackedMLP(5, [7, 6], 3, seeds=[3, 4], activation=activation, member_widths=[[7, 6], [2, 3]])
    x = torch.randn(2, 11, 5)
    out = stacked(x)
    for i in range(2):
        member = stacked.member(i)
        assert [layer.out_features for layer in member if isinstance(layer, torch.nn.Linear)] == [*stacked.member_widths[i], 3]
        assert all(type(member[j]) is type(stacked.activation) for j in (2, 4))
        torch.testing.assert_close(member(x[i]), out[i])


def test_member_widths_are_checked():
    with pytest.raises(ValueError, match="at most"):
        StackedMLP(5, [7], 3, seeds=[0], member_widths=[[8]])
    with pytest.raises(ValueError, match="each of the 2 members"):
        StackedMLP(5, [7], 3, seeds=[0, 1], member_widths=[[3]])


def brute_force_cost(widths, copies, overhead):
    """The cheapest split into consecutive groups, by trying every one."""
    import itertools
    best = float("inf")
    for cuts in itertools.product([False, True], repeat=len(widths) - 1):
        groups, group = [], [widths[0]]
        for cut, w in zip(cuts, widths[1:]):
            if cut:
                groups.append(group)
                group = []
            group.append(w)
        groups.append(group)
        best = min(best, sum(overhead + len(g) * copies * (max(g) ** 2 + 50 * max(g)) for g in groups))
    return best


@pytest.mark.parametrize("overhead", [0.0, 3e3, 3e4, 1e9])
def test_width_groups_split_at_the_least_cost(overhead):
    widths = [2, 8, 30, 31, 90, 100, 300]
    groups = gt.ensemble.width_groups(widths, depth=2, copies=2, overhead=overhead)
    assert [w for g in sorted(groups, key=min) for w in g] == widths  # consecutive widths, each once
    cost = sum(overhead + len(g) * 2 * (max(g) ** 2 + 50 * max(g)) for g in groups)
    assert cost == pytest.approx(brute_force_cost(widths, 2, overhead))
    if overhead == 0:
        assert len(groups) == len(widths)
    if overhead == 1e9:
        assert len(groups) == 1


def test_fit_widths_gives_a_row_per_data_set_and_width(small_mnist1d):
    noisy = gt.data.corrupt_labels(small_mnist1d, 0.5, seed=0)
    rows = gt.ensemble.fit_widths({"clean": small_mnist1d, "noisy": noisy}, [3, 12], depth=2, epochs=4, lr=0.05,
                                  test_every=2)
    assert [(row["data"], row["width"]) for row in rows] == [("clean", 3), ("clean", 12), ("noisy", 3), ("noisy", 12)]
    for row in rows:
        assert row["parameters"] == gt.models.count_parameters(gt.models.MLP(40, [row["width"]] * 2, 10))
        assert len(row["test_error_curve"]) == 2 and row["early_stopped_test_error"] == min(row["test_error_curve"])
        assert row["test_error"] == pytest.approx(row["test_error_curve"][-1], abs=1e-6)
    torch.manual_seed(0)
    alone = gt.models.MLP(40, [12, 12], 10)
    gt.fit(alone, noisy, epochs=4, optimizer="sgd", lr=0.05, momentum=0.9, batch_size=100, seed=0)
    assert rows[3]["test_error"] == pytest.approx(1 - gt.evaluate(alone, noisy.test, n_classes=10)["acc"], abs=1e-6)
    assert rows[3]["train_error"] == pytest.approx(1 - gt.evaluate(alone, noisy.train, n_classes=10)["acc"], abs=1e-6)
