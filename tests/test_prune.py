import numpy as np
import pytest
import torch

import gentools as gt
from gentools import prune


def _model(seed=0):
    gt.seed_everything(seed)
    return gt.models.MLP(40, [30, 20], 10)


def test_pruned_weights_stay_exactly_zero_through_training(small_mnist1d):
    model = _model()
    prune.apply_masks(model, prune.magnitude_masks(model, 0.5))
    mask = prune.masks(model)
    gt.fit(model, small_mnist1d, epochs=3, optimizer="adam", lr=1e-2, weight_decay=1e-3)
    for name, layer in prune.layers(model).items():
        assert bool((layer.weight[mask[name] == 0] == 0).all())
        assert bool((layer.weight[mask[name] == 1] != 0).all())


def test_layerwise_rates_and_the_output_layer():
    model = _model()
    new = prune.magnitude_masks(model, 0.2, output_fraction=0.1)
    kept = [float(m.mean()) for m in new.values()]
    assert kept[:2] == [pytest.approx(0.8, abs=1e-3)] * 2 and kept[2] == pytest.approx(0.9, abs=1e-3)
    weights = prune.layers(model)["1"].weight.abs()
    assert weights[new["1"] == 0].max() <= weights[new["1"] == 1].min()  # the smallest magnitudes went


def test_global_scope_ranks_all_layers_together():
    model = _model()
    new = prune.magnitude_masks(model, 0.5, scope="global")
    total = sum(m.numel() for m in new.values())
    assert sum(float(m.sum()) for m in new.values()) == pytest.approx(total / 2, abs=1)
    threshold = min(prune.layers(model)[n].weight.abs()[m == 1].min() for n, m in new.items())
    assert all(bool((prune.layers(model)[n].weight.abs()[m == 0] <= threshold).all()) for n, m in new.items())
    with pytest.raises(ValueError, match="scope"):
        prune.magnitude_masks(model, 0.5, scope="neuron")


def test_sparsity_after_r_rounds_is_one_minus_p_to_the_r(small_mnist1d):
    model = _model()

    def train(net, callbacks):
        gt.fit(net, small_mnist1d, epochs=1, lr=1e-2, callbacks=callbacks)
        return {}

    records = prune.iterative_magnitude_pruning(model, train, rounds=4, fraction=0.2, output_fraction=None)
    for record in records:
        assert record["remaining"] == pytest.approx(0.8 ** record["round"], abs=2e-3)


def test_rewinding_restores_the_saved_values_and_keeps_the_mask(small_mnist1d):
    model = _model()
    start = prune.snapshot(model)
    prune.apply_masks(model, prune.magnitude_masks(model, 0.3))
    gt.fit(model, small_mnist1d, epochs=2, lr=1e-2)
    prune.rewind(model, start)
    for name, layer in prune.layers(model).items():
        torch.testing.assert_close(layer.weight_orig, start[f"{name}.weight"])
        torch.testing.assert_close(layer.weight, start[f"{name}.weight"] * layer.weight_mask)


def test_late_rewinding_snapshots_the_requested_step(small_mnist1d):
    model = _model()
    catcher = prune.SnapshotAt(step=3)
    gt.fit(model, small_mnist1d, epochs=1, lr=1e-2, batch_size=100, callbacks=[catcher])
    assert catcher.seen == 4 and catcher.state is not None
    assert not torch.equal(catcher.state["1.weight"], prune.layers(_model())["1"].weight)


def test_random_masks_match_the_layer_sparsity():
    model = _model()
    like = prune.magnitude_masks(model, 0.6)
    rand = prune.random_masks(like, seed=0)
    for name in like:
        assert rand[name].sum() == like[name].sum() and not torch.equal(rand[name], like[name])


def test_convolutions_can_have_their_own_rate():
    model = gt.models.ConvNet(2, image_size=8)
    new = prune.magnitude_masks(model, 0.2, output_fraction=0.1, conv_fraction=0.15)
    kept = {name: round(float(m.mean()), 2) for name, m in new.items()}
    assert list(kept.values()) == [0.85, 0.85, 0.8, 0.8, 0.9]


def test_the_stacked_lottery_finds_the_same_tickets_as_pruning_one_network_at_a_time(small_mnist1d):
    data = small_mnist1d.hold_out(0.25, seed=0)
    (rows,) = prune.lottery([{"seed": 0}], data, [16, 8], rounds=2, epochs=3, lr=3e-3)

    def train(net, callbacks=()):
        history = gt.fit(net, data, epochs=3, optimizer="adam", lr=3e-3, batch_size=100, seed=0, callbacks=callbacks)
        best = history.best("valid_loss")
        return {"best_epoch": int(best["epoch"]), "test_acc": best["test_acc"]}

    torch.manual_seed(0)
    records = prune.iterative_magnitude_pruning(gt.models.MLP(40, [16, 8], 10), train, rounds=2, fraction=0.2,
                                                output_fraction=0.1)
    assert [row["round"] for row in rows] == [0, 1, 2] and {row["variant"] for row in rows} == {"winning ticket"}
    for row, record in zip(rows, records):
        assert row["remaining"] == pytest.approx(record["remaining"])
        assert row["best_epoch"] == record["best_epoch"]
        assert row["test_acc"] == pytest.approx(record["test_acc"], abs=1e-6)
    ours, theirs = torch.tensor(rows[-1]["first_layer_mask"]), records[-1]["masks"]["1"]
    assert ours.shape == theirs.shape == (16, 40)
    assert (ours == theirs).float().mean() > 0.99  # magnitudes equal to float tolerance: at most a near-tie may swap


def test_lottery_controls_keep_the_tickets_layer_sizes(small_mnist1d):
    data = small_mnist1d.hold_out(0.25, seed=0)
    per_seed = prune.lottery([{"seed": 0}, {"seed": 1}], data, [12], rounds=3, epochs=2, control_rounds=[3])
    assert [{row["seed"] for row in rows} for rows in per_seed] == [{0}, {1}]  # each point gets its own seed's rows
    rows = per_seed[0] + per_seed[1]
    last = [row for row in rows if row["round"] == 3]
    assert sorted((row["variant"], row["seed"]) for row in last) == sorted(
        (variant, seed) for variant in ("winning ticket", "re-initialised", "random mask") for seed in (0, 1))
    assert len({row["remaining"] for row in last if row["seed"] == 0}) == 1  # the controls keep as many weights
    assert last[0]["remaining"] == pytest.approx((480 * 0.8 ** 3 + 120 * 0.9 ** 3) / 600, abs=0.005)  # 20% a round, 10% at the output
    assert all(0 < row["best_epoch"] <= 2 and 0 <= row["test_acc"] <= 1 for row in rows)
    with pytest.raises(ValueError, match="validation split"):
        prune.lottery([{"seed": 0}], small_mnist1d, [4], rounds=1, epochs=1)


def test_a_masked_stack_keeps_pruned_weights_silent(small_mnist1d):
    nets = gt.models.StackedMLP(40, [8], 10, seeds=[0, 1])
    masks = [torch.bernoulli(torch.full(w.shape, 0.5), generator=torch.Generator().manual_seed(i)) for i, w in enumerate(nets.weights)]
    nets.set_masks(masks)
    before = [w.detach().clone() for w in nets.weights]
    gt.fit(nets, small_mnist1d, epochs=2, optimizer="adam", lr=1e-2, batch_size=100)
    for weight, old, mask in zip(nets.weights, before, masks):
        assert torch.equal(weight.detach()[mask == 0], old[mask == 0])  # no gradient reached them
        assert not torch.equal(weight.detach()[mask == 1], old[mask == 1])
    member = nets.member(1)
    assert torch.equal(member[1].weight.detach() == 0, (masks[0][1].T == 0) | (nets.weights[0][1].detach().T == 0))
    with pytest.raises(ValueError, match="shapes"):
        nets.set_masks([torch.ones(2, 3, 3)])


def test_best_epoch_trainer_reports_the_epoch_of_lowest_validation_loss(small_mnist1d):
    data = small_mnist1d.hold_out(0.25)
    train = prune.best_epoch_trainer(data, epochs=6, lr=3e-2)
    gt.seed_everything(0)
    result = train(gt.models.MLP(40, [32], 10))
    gt.seed_everything(0)
    history = gt.fit(gt.models.MLP(40, [32], 10), data, epochs=6, lr=3e-2)
    losses = history["valid_loss"]
    assert result["best_epoch"] == 1 + int(np.nanargmin(losses[1:])) and result["valid_loss"] == pytest.approx(np.nanmin(losses[1:]))
    assert result["test_acc"] == pytest.approx(history["test_acc"][result["best_epoch"]])
    untrained = prune.best_epoch_trainer(data, epochs=3, lr=0.0)(gt.models.MLP(40, [32], 10))
    assert untrained["best_epoch"] == 1  # every epoch ties with the untrained network: the first trained one is reported
    with pytest.raises(ValueError, match="validation split"):
        prune.best_epoch_trainer(small_mnist1d, epochs=1, lr=1e-3)


def test_a_seed_trains_alike_in_any_stack_so_the_seeds_spread_over_the_workers(small_mnist1d, monkeypatch):
    data = small_mnist1d.hold_out(0.25, seed=0)
    options = dict(rounds=2, epochs=2, lr=3e-3, control_rounds=[1], progress=False)
    together = prune.lottery([{"seed": 0}, {"seed": 1}, {"seed": 2}], data, [24, 12], **options)
    apart = prune.lottery([{"seed": 0}, {"seed": 1}], data, [24, 12], **options) + prune.lottery([{"seed": 2}], data, [24, 12], **options)
    assert together == apart
    points = [{"seed": s} for s in range(3)]
    monkeypatch.setenv("GENTOOLS_WORKERS", "2")
    assert prune._seed_packs(points) == [[0, 1], [2]]
    monkeypatch.setenv("GENTOOLS_WORKERS", "1")
    assert prune._seed_packs(points) == [[0, 1, 2]]


def test_a_lottery_of_a_registry_network_is_iterative_pruning_of_that_network_with_the_same_controls(small_mnist1d):
    data = small_mnist1d.hold_out(0.25, seed=0)
    options = dict(epochs=2, lr=3e-3, batch_size=100)
    rows = prune.lottery([{"seed": 3}], data, architecture="cnn", rounds=1, control_rounds=[1], conv_fraction=0.3,
                         progress=False, **options)[0]
    assert [(row["round"], row["variant"]) for row in rows] == [
        (0, "winning ticket"), (1, "winning ticket"), (1, "re-initialised"), (1, "random mask")]
    gt.seed_everything(3)
    net = gt.models.CNN1d()
    records = prune.iterative_magnitude_pruning(net, prune.best_epoch_trainer(data, seed=3, **options), rounds=1,
                                                fraction=0.2, output_fraction=0.1, conv_fraction=0.3)
    for row, record in zip(rows[:2], records):
        assert (row["remaining"], row["best_epoch"], row["test_acc"]) == pytest.approx(
            (record["remaining"], record["best_epoch"], record["test_acc"]))
    first, layer = next(iter(prune.layers(net).items()))
    assert isinstance(layer, torch.nn.Conv1d) and float(prune.masks(net)[first].mean()) == pytest.approx(0.7, abs=0.01)
    gt.seed_everything(3 + 10_000)  # the control: the ticket's mask on fresh weights, trained in its own seed's batch order
    fresh = prune.apply_masks(gt.models.CNN1d(), records[1]["masks"])
    control = prune.best_epoch_trainer(data, seed=3 + 10_000, **options)(fresh)
    assert (rows[2]["best_epoch"], rows[2]["test_acc"]) == pytest.approx((control["best_epoch"], control["test_acc"]))
    with pytest.raises(ValueError, match="resnet18 is sized by a width"):
        prune.lottery([{"seed": 0}], data, architecture="resnet18", rounds=1, **options)
