import numpy as np
import pytest
import torch

import gentools as gt
from gentools.models import StackedMLP


def assert_same_histories(together, alone, rtol=1e-4, atol=1e-5):
    """Every metric of every epoch, the clock aside."""
    assert [record["epoch"] for record in together.records] == [record["epoch"] for record in alone.records]
    for mine, theirs in zip(together.records, alone.records):
        assert set(mine) == set(theirs)
        for key in set(mine) - {"time"}:
            np.testing.assert_allclose(mine[key], theirs[key], rtol=rtol, atol=atol, err_msg=f"{key} at epoch {mine['epoch']}")


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 1e-2)])
def test_a_stack_of_k_equals_k_runs_one_by_one_in_every_metric(small_mnist1d, optimizer, lr):
    data = small_mnist1d.hold_out(0.25)
    seeds = [0, 1, 2]
    options = dict(epochs=3, optimizer=optimizer, lr=lr, weight_decay=1e-4, batch_size=64)
    stacked = StackedMLP(40, [16, 16], 10, seeds=seeds)
    histories = gt.fit(stacked, data, **options)
    assert len(histories) == 3 and list(histories[0].final) == ["epoch", "time", "train_loss_running",
        "train_acc_running", "train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc"]
    for i, seed in enumerate(seeds):
        torch.manual_seed(seed)
        alone = gt.models.MLP(40, [16, 16], 10)
        assert_same_histories(histories[i], gt.fit(alone, data, seed=seed, **options))
        for mine, theirs in zip(stacked.member(i).parameters(), alone.parameters()):
            torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


def test_each_member_can_train_on_its_own_data_set(small_mnist1d):
    levels = [0.0, 0.5, 1.0]
    noisy = [gt.data.corrupt_labels(small_mnist1d, p, seed=1) for p in levels]
    options = dict(epochs=2, lr=1e-2, seed=7, measure_every=2)
    histories = gt.fit(StackedMLP(40, [16], 10, seeds=[0, 0, 0]), noisy, **options)
    for level, data, history in zip(levels, noisy, histories):
        torch.manual_seed(0)
        assert_same_histories(history, gt.fit(gt.models.MLP(40, [16], 10), data, **options))
    assert np.isnan(histories[0]["test_acc"][1]) and not np.isnan(histories[0]["train_acc_running"][1])  # epoch 1 unmeasured


def test_a_regression_stack_defaults_to_squared_error_and_full_batches_are_one_step():
    x, y = gt.biasvar.training_sets("sin", n=20, noise=0.1, repeats=4, seed=0)
    sets = [gt.data.DataSet("sin", train=gt.data.TensorData(x[i], y[i]), test=gt.data.TensorData(x[i], y[i])) for i in range(4)]
    model = StackedMLP(1, [32], 1, seeds=range(4))
    histories = gt.fit(model, sets, epochs=300, lr=1e-2, measure_every=300)
    assert all(h.meta["loss"] == "mse" and h.final["train_loss"] < h["train_loss"][0] / 5 for h in histories)
    assert [len(h) for h in histories] == [301] * 4 and np.isnan(histories[0]["train_loss"][1:300]).all()
    shifted = [sets[0].replace(train=gt.data.TensorData(x[0], y[0] + 10)), *sets[1:]]
    other = StackedMLP(1, [32], 1, seeds=range(4))
    gt.fit(other, shifted, epochs=300, lr=1e-2)  # only member 0 sees different targets
    assert torch.allclose(other.member(1)(x[1]), model.member(1)(x[1]))
    assert not torch.allclose(other.member(0)(x[0]), model.member(0)(x[0]))


def test_stacks_check_their_data_and_options_and_report_divergence(small_mnist1d):
    model = StackedMLP(40, [4], 10, seeds=[0, 1])
    with pytest.raises(ValueError, match="one data set or 2"):
        gt.fit(model, [small_mnist1d] * 3, epochs=1)
    with pytest.raises(ValueError, match="penalty, augment apply to a single model"):
        gt.fit(model, small_mnist1d, epochs=1, penalty=gt.regularize.l2_penalty(1e-3), augment=lambda x: x)
    with pytest.raises(TypeError, match="History.best"):
        gt.fit(model, small_mnist1d.hold_out(0.25), epochs=1, callbacks=[gt.EarlyStopping()])
    with pytest.raises(TypeError, match="needs a gt.models.StackedMLP"):
        gt.fit(gt.models.MLP(40, [4], 10), [small_mnist1d], epochs=1)
    with pytest.raises(ValueError, match="one int or 2 of them"):
        gt.fit(model, small_mnist1d, epochs=1, seed=[1, 2, 3])
    with pytest.raises(ValueError, match="measure names"):
        gt.fit(model, small_mnist1d, epochs=1, measure=["valid"])
    broken = small_mnist1d.replace(train=gt.data.TensorData(small_mnist1d.train.x * float("nan"), small_mnist1d.train.y))
    with pytest.raises(gt.train.DivergedError, match=r"members \[0, 1\].*smaller learning rate"):
        gt.fit(model, broken, epochs=1)
    with pytest.raises(ValueError, match="at least one member"):
        StackedMLP(1, [4], 1, seeds=[])


def test_evaluate_gives_one_result_per_member(small_mnist1d):
    model = StackedMLP(40, [8], 10, seeds=[0, 1])
    measured = gt.evaluate(model, small_mnist1d.test, n_classes=10)
    alone = gt.evaluate(model.member(1), small_mnist1d.test, n_classes=10)
    assert len(measured) == 2 and measured[1]["acc"] == pytest.approx(alone["acc"])
    assert measured[1]["loss"] == pytest.approx(alone["loss"], rel=1e-5)


def test_callbacks_see_the_stack_and_record_one_number_per_member(small_mnist1d):
    model = StackedMLP(40, [8], 10, seeds=[0, 1])
    seen = []

    class Spy(gt.train.Callback):
        def on_epoch(self, histories, net):
            seen.append((histories[0].final["epoch"], net is model))

    record = gt.train.Record(first_weight=lambda net: net.weights[0][:, 0, 0].tolist())
    histories = gt.fit(model, small_mnist1d, epochs=4, measure_every=2, callbacks=[Spy(), record])
    assert seen == [(2, True), (4, True)]
    assert [h.final["first_weight"] for h in histories] == pytest.approx(model.weights[0][:, 0, 0].tolist())


def test_ensembles_average_their_members_probabilities(small_mnist1d):
    model = StackedMLP(40, [8], 10, seeds=range(6))
    gt.fit(model, small_mnist1d, epochs=2, lr=1e-2)
    averaged = gt.ensemble.average_probabilities(model, small_mnist1d.test, groups=2)
    assert averaged["member_acc"].shape == (2, 3) and averaged["ensemble_acc"].shape == (2,)
    members = [torch.softmax(model.member(i)(small_mnist1d.test.x), -1) for i in range(3, 6)]
    expected = (sum(members) / 3).argmax(-1).eq(small_mnist1d.test.y).float().mean()
    assert averaged["ensemble_acc"][1].item() == pytest.approx(expected.item())
    assert averaged["member_acc"][1, 0].item() == pytest.approx(gt.evaluate(model.member(3), small_mnist1d.test, n_classes=10)["acc"])
    with pytest.raises(ValueError, match="equal groups"):
        gt.ensemble.average_probabilities(model, small_mnist1d.test, groups=4)


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 1e-2)])
def test_a_padded_member_trains_exactly_like_the_narrow_network_alone(small_mnist1d, optimizer, lr):
    own = [[4, 4], [16, 16], [9, 5]]
    seeds = [0, 0, 1]
    options = dict(epochs=3, optimizer=optimizer, lr=lr, weight_decay=1e-3, batch_size=64)
    stacked = StackedMLP(40, [16, 16], 10, seeds=seeds, member_widths=own)
    histories = gt.fit(stacked, small_mnist1d, **options)
    for i, (widths, seed) in enumerate(zip(own, seeds)):
        torch.manual_seed(seed)
        alone = gt.models.MLP(40, widths, 10)
        assert_same_histories(histories[i], gt.fit(alone, small_mnist1d, seed=seed, **options))
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


def test_fit_widths_gives_a_row_per_data_set_for_each_point(small_mnist1d):
    noisy = gt.data.corrupt_labels(small_mnist1d, 0.5, seed=0)
    points = [{"width": width, "seed": seed} for width in (3, 12) for seed in (0, 5)]
    results = gt.ensemble.fit_widths(points, {"clean": small_mnist1d, "noisy": noisy}, depth=2, epochs=4, optimizer="sgd", lr=0.05,
                                     measure_every=2)
    assert [[(row["data"], row["width"], row["seed"]) for row in rows] for rows in results] == [
        [(data, point["width"], point["seed"]) for data in ("clean", "noisy")] for point in points]
    for row in (row for rows in results for row in rows):
        assert row["parameters"] == gt.models.count_parameters(gt.models.MLP(40, [row["width"]] * 2, 10))
        assert len(row["test_error_curve"]) == 2 and row["early_stopped_test_error"] == min(row["test_error_curve"])
        assert row["test_error"] == pytest.approx(row["test_error_curve"][-1], abs=1e-6)
    torch.manual_seed(5)
    alone = gt.models.MLP(40, [12, 12], 10)
    gt.fit(alone, noisy, epochs=4, optimizer="sgd", lr=0.05, momentum=0.9, batch_size=100, seed=5)
    noisy_12_5 = results[3][1]
    assert noisy_12_5["test_error"] == pytest.approx(1 - gt.evaluate(alone, noisy.test, n_classes=10)["acc"], abs=1e-6)
    assert noisy_12_5["train_error"] == pytest.approx(1 - gt.evaluate(alone, noisy.train, n_classes=10)["acc"], abs=1e-6)


def test_a_width_sweep_trains_its_points_in_stacks_and_a_new_width_alone(small_mnist1d, tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    stacks = []
    fit = gt.ensemble.fit
    monkeypatch.setattr(gt.ensemble, "fit", lambda nets, *args, **kwargs: stacks.append(len(nets)) or fit(nets, *args, **kwargs))
    options = dict(fixed=dict(data={"clean": small_mnist1d}, epochs=2, measure_every=None), name="widths")
    first = gt.sweep(gt.ensemble.fit_widths, grid=dict(width=[4, 5, 6], seed=[0, 1]), **options)
    assert first.attrs["computed"] == 6 and len(stacks) < 6 and sum(stacks) == 6  # packed: fewer stacks than runs
    assert first[["width", "seed"]].values.tolist() == [[w, s] for w in (4, 5, 6) for s in (0, 1)]
    stacks.clear()
    grown = gt.sweep(gt.ensemble.fit_widths, grid=dict(width=[4, 5, 6, 7], seed=[0, 1]), **options)
    assert grown.attrs["computed"] == 2 and stacks == [2]  # the new width's two seeds, one stack
    assert grown.iloc[:6].equals(first)


def test_fit_widths_refuses_an_architecture_it_cannot_size(small_mnist1d):
    for architecture, depth in [("cnn", 1), ("MLP", 1), ("resnet18", 2)]:
        with pytest.raises(ValueError, match="fit_widths\\(\\) sweeps 'mlp' \\(any depth\\) or a registry network sized by a width"):
            gt.ensemble.fit_widths([{"width": 4}], {"clean": small_mnist1d}, architecture=architecture, depth=depth, epochs=1)


def test_thinned_networks_are_the_models_with_fresh_masks_and_batch_norm_in_eval_mode():
    torch.manual_seed(0)
    # one input through dropout 0.5 into a linear read-out: a thinned network's logits are b (input dropped) or
    # b + 2 w x (kept and scaled by 1 / (1 - p)), computed here by hand
    model = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(1, 2), torch.nn.BatchNorm1d(2))
    model[2].running_mean.fill_(0.5)
    model.train()
    x = torch.tensor([[1.5]])
    w, b = model[1].weight[:, 0].detach(), model[1].bias.detach()
    bn = model[2]
    normalised = lambda z: (z - bn.running_mean) / (bn.running_var + bn.eps).sqrt() * bn.weight.detach() + bn.bias.detach()
    dropped, kept = normalised(b).softmax(-1), normalised(b + 2 * w * 1.5).softmax(-1)
    samples = gt.ensemble.thinned_probabilities(model, x, samples=200, seed=3)
    assert samples.shape == (200, 1, 2)
    is_dropped = torch.isclose(samples[:, 0], dropped, atol=1e-6).all(-1)
    is_kept = torch.isclose(samples[:, 0], kept, atol=1e-6).all(-1)
    assert bool((is_dropped | is_kept).all())
    assert 60 < int(is_kept.sum()) < 140   # about half kept (binomial(200, 0.5): 100 +- 7)
    assert model.training and torch.equal(bn.running_mean, torch.full((2,), 0.5))   # its mode and statistics untouched
    assert torch.equal(samples, gt.ensemble.thinned_probabilities(model, x, samples=200, seed=3))   # seeded
    with pytest.raises(ValueError, match="no dropout"):
        gt.ensemble.thinned_probabilities(torch.nn.Linear(1, 2), x, samples=5)


def test_averaged_accuracy_votes_with_the_mean_probability():
    # two members on three examples: the mean decides, not a majority of members (worked out by hand)
    probabilities = torch.tensor([[[0.9, 0.1], [0.4, 0.6], [0.45, 0.55]],
                                  [[0.2, 0.8], [0.3, 0.7], [0.9, 0.1]]])
    # means: [0.55, 0.45] -> 0, [0.35, 0.65] -> 1, [0.675, 0.325] -> 0
    assert gt.ensemble.averaged_accuracy(probabilities, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert gt.ensemble.averaged_accuracy(probabilities[:1], torch.tensor([0, 1, 1])) == pytest.approx(1.0)
