import pytest
import torch
from torch import nn

import gentools as gt
from gentools.regularize import MaxNorm, l1_penalty, l2_penalty, mnist1d_augment, weight_matrices


def test_penalties_sum_over_weight_matrices_only():
    model = gt.models.MLP(3, [4], 2, batch_norm=True)
    weights = weight_matrices(model)
    assert [tuple(w.shape) for w in weights] == [(4, 3), (2, 4)]  # no biases, no batch-norm scales
    expected_l1 = sum(w.abs().sum() for w in weights).item()
    assert l1_penalty(0.5)(model).item() == pytest.approx(0.5 * expected_l1)
    assert l2_penalty(2.0)(model).item() == pytest.approx(2.0 * sum(w.pow(2).sum() for w in weights).item())


def test_l2_penalty_with_sgd_is_weight_decay(small_mnist1d):
    """Under plain SGD, a penalty strength * |w|^2 and weight_decay = 2 * strength take identical steps."""
    runs = []
    for options in ({"penalty": l2_penalty(0.01)}, {"weight_decay": 0.02}):
        gt.seed_everything(0)
        model = gt.models.MLP(40, [16], 10)
        nn.init.zeros_(model[1].bias)  # weight_decay also decays biases; the penalty does not: keep biases out
        model[1].bias.requires_grad_(False)
        model[3].bias.requires_grad_(False)
        gt.fit(model, small_mnist1d, epochs=2, optimizer="sgd", momentum=0.0, lr=0.05, **options)
        runs.append(model[1].weight.detach().clone())
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-4, atol=1e-6)


def test_max_norm_caps_every_hidden_unit(small_mnist1d):
    gt.seed_everything(0)
    model = gt.models.MLP(40, [32, 32], 10)
    gt.fit(model, small_mnist1d, epochs=3, lr=0.05, callbacks=[MaxNorm(0.5)])
    hidden = [m for m in model if isinstance(m, nn.Linear)][:-1]
    for layer in hidden:
        assert layer.weight.norm(dim=1).max().item() <= 0.5 + 1e-5
    assert [m for m in model if isinstance(m, nn.Linear)][-1].weight.norm(dim=1).max().item() > 0.5  # read-out free


def test_dropconnect_is_unbiased_and_off_at_test_time():
    torch.manual_seed(0)
    layer = gt.models.DropConnectLinear(50, 3, p=0.4)
    x = torch.randn(1, 50)
    layer.eval()
    exact = layer(x)
    layer.train()
    samples = torch.stack([layer(x) for _ in range(4000)])
    assert not torch.allclose(samples[0], exact)  # training masks weights
    torch.testing.assert_close(samples.mean(0), exact, atol=0.05, rtol=0.05)  # ... but unbiased
    layer.eval()
    assert torch.equal(layer(x), exact)
    with pytest.raises(ValueError, match="DropConnect probability"):
        gt.models.DropConnectLinear(2, 2, p=1.0)


def test_mnist1d_augment_shifts_and_keeps_shape():
    torch.manual_seed(0)
    x = torch.zeros(8, 40)
    x[:, 20] = 1.0
    none = mnist1d_augment(max_shift=0, max_stretch=0.0, noise=0.0)(x)
    torch.testing.assert_close(none, x, atol=1e-5, rtol=0)  # no change asked, none made
    moved = mnist1d_augment(max_shift=4, max_stretch=0.0, noise=0.0)(x)
    assert moved.shape == x.shape
    peaks = moved.argmax(1).float()
    assert (peaks - 20).abs().max() <= 4 and peaks.std() > 0  # shifted by up to 4, differently per example


def test_label_smoothing_changes_training_not_measured_loss(small_mnist1d):
    gt.seed_everything(0)
    model = gt.models.MLP(40, [16], 10)
    history = gt.fit(model, small_mnist1d, epochs=1, lr=1e-2, label_smoothing=0.2)
    plain = gt.evaluate(model, small_mnist1d.train, "cross_entropy", 10)["loss"]
    assert history.final["train_loss"] == pytest.approx(plain)
    with pytest.raises(ValueError, match="label_smoothing"):
        gt.fit(model, small_mnist1d, epochs=1, loss="mse", label_smoothing=0.1)


def test_every_registered_regularizer_trains_and_changes_what_it_says(small_mnist1d):
    data = small_mnist1d.hold_out(0.25)
    options = dict(epochs=3, lr=1e-2, batch_size=100)
    rows = {name: gt.regularize.run(name, data, [16, 16], seed=0, **options) for name in gt.regularize.METHODS}
    gt.seed_everything(0)
    plain = gt.fit(gt.models.MLP(40, [16, 16], 10), data, seed=0, **options)
    assert rows["baseline"]["test_acc"] == pytest.approx(plain.final["test_acc"])
    changed = [name for name, row in rows.items() if row["history"].final["train_loss"] != plain.final["train_loss"]]
    assert sorted(changed) == sorted(set(gt.regularize.METHODS) - {"baseline", "early stopping (valid loss)",
                                                                    "early stopping (valid acc)"})  # too short to stop
    assert {m.kind for m in gt.regularize.METHODS.values()} == {"none", "explicit", "procedure", "architecture"}
    meta = rows["label smoothing"]["history"].meta
    assert meta["label_smoothing"] == 0.1 and rows["L2 penalty"]["history"].meta["penalty"]
    stopped = gt.regularize.run("early stopping (valid loss)", data, [16, 16], seed=0, strength=1, epochs=30, lr=3e-2)
    assert stopped["best_epoch"] == stopped["history"].final["epoch"] - 1 < 29  # patience 1: stops at the first rise
    with pytest.raises(ValueError, match="Unknown regularizer 'mixup'"):
        gt.regularize.run("mixup", data, [16], seed=0, epochs=1)


def test_variance_shift_compares_the_kept_variance_with_the_variance_at_test_time():
    layer = nn.BatchNorm1d(2)
    layer.running_var.copy_(torch.tensor([2.0, 8.0]))
    x = torch.tensor([[0.0, 0.0], [2.0, 4.0]])   # unbiased variances, by hand: 2 and 8
    assert gt.regularize.variance_shift(nn.Sequential(layer), x) == pytest.approx([1.0])
    layer.running_var.copy_(torch.tensor([4.0, 4.0]))   # ratios 2 and 0.5, mean 1.25
    assert gt.regularize.variance_shift(nn.Sequential(layer), x) == pytest.approx([1.25])
    with pytest.raises(ValueError, match="no batch normalisation"):
        gt.regularize.variance_shift(nn.Linear(2, 2), x)


def test_dropout_before_batch_norm_inflates_the_variance_it_keeps():
    torch.manual_seed(0)
    x = torch.randn(4000, 10) + 1.0   # inputs with a mean: dropout's noise adds variance in training
    for p, inflated in ((0.0, False), (0.5, True)):
        model = nn.Sequential(nn.Dropout(p), nn.Linear(10, 4), nn.BatchNorm1d(4, momentum=None))   # running average
        model.train()
        with torch.no_grad():
            for batch in x.split(100):
                model(batch)
        ratio = gt.regularize.variance_shift(model, x)[0]
        assert (ratio > 1.3) if inflated else (ratio == pytest.approx(1.0, abs=0.05)), (p, ratio)


def test_recalibration_gathers_the_statistics_again_with_dropout_off():
    torch.manual_seed(0)
    x = torch.randn(4000, 10) + 1.0
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(10, 4), nn.BatchNorm1d(4))
    model.train()
    with torch.no_grad():
        for batch in x.split(100):
            model(batch)
    weights = [p.detach().clone() for p in model.parameters()]
    gt.regularize.recalibrate(model, x)
    assert gt.regularize.variance_shift(model, x)[0] == pytest.approx(1.0, abs=0.01)
    reference = model[1](x).detach()   # the statistics by hand, dropout off
    torch.testing.assert_close(model[2].running_mean, reference.mean(0), atol=1e-5, rtol=1e-5)
    assert model.training and model[2].momentum == 0.1   # the model's own mode and momentum back
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
