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
