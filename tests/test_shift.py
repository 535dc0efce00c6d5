"""gt.shift: fresh and shifted test sets, the probit line, resampling, test-time augmentation, shift signals."""
import numpy as np
import pytest
import scipy.stats
import torch

import gentools as gt


def test_fresh_and_shifted_test_sets(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    reference = gt.data.load("mnist1d", n_train=200, n_test=0, seed=1).train
    fresh = gt.shift.mnist1d_test_set(200, seed=2)
    assert fresh.x.shape == (200, 40) and not torch.equal(fresh.x, reference.x)
    assert torch.equal(gt.shift.mnist1d_test_set(200, seed=1).x, reference.x)
    noisy = gt.shift.mnist1d_test_set(200, seed=1, iid_noise_scale=0.5)
    assert torch.equal(noisy.y, reference.y) and not torch.equal(noisy.x, reference.x)


def test_a_mixture_draws_equal_shares_under_each_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    mixture = gt.shift.mnist1d_mixture(300, seed=2, parts=[{}, dict(iid_noise_scale=0.5)])
    assert mixture.x.shape == (300, 40)
    plain, noisy = gt.shift.mnist1d_test_set(150, seed=2000), gt.shift.mnist1d_test_set(150, seed=2001, iid_noise_scale=0.5)
    assert torch.equal(mixture.x[:150], plain.x) and torch.equal(mixture.x[150:], noisy.x)
    assert torch.equal(mixture.y, torch.cat([plain.y, noisy.y]))


def test_probit_and_the_line_fit_against_numpy():
    assert gt.shift.probit(0.5) == pytest.approx(0.0) and gt.shift.probit(scipy.stats.norm.cdf(1.3)) == pytest.approx(1.3)
    assert np.isfinite(gt.shift.probit([0.0, 1.0])).all()
    rng = np.random.default_rng(0)
    accuracy = rng.uniform(0.55, 0.95, 12)
    shifted = scipy.stats.norm.cdf(0.8 * scipy.stats.norm.ppf(accuracy) - 0.3 + rng.normal(0, 0.05, 12))
    fit = gt.shift.line_fit(accuracy, shifted)
    slope, intercept = np.polyfit(scipy.stats.norm.ppf(accuracy), scipy.stats.norm.ppf(shifted), 1)
    assert (fit.slope, fit.intercept) == pytest.approx((slope, intercept))
    assert 0.9 < fit.r < 1 and fit.predict(0.5) == pytest.approx(scipy.stats.norm.cdf(intercept))
    exact = gt.shift.line_fit(accuracy, scipy.stats.norm.cdf(2 * scipy.stats.norm.ppf(accuracy) + 0.1))
    assert (exact.slope, exact.intercept, exact.r) == pytest.approx((2.0, 0.1, 1.0))


def test_resample_moves_and_rescales_time():
    x = torch.randn(3, 40)
    assert torch.allclose(gt.shift.resample(x), x, atol=1e-5)
    moved = gt.shift.resample(x, offset=2.0)
    assert torch.allclose(moved[:, 2:], x[:, :-2], atol=1e-5) and torch.allclose(moved[:, :2], x[:, :1].expand(3, 2))
    ramp = torch.linspace(-1, 1, 41).repeat(2, 1)  # a linear signal is interpolated exactly
    assert torch.allclose(gt.shift.resample(ramp, compress=0.5), ramp * 0.5, atol=1e-5)
    assert torch.allclose(gt.shift.resample(ramp, compress=torch.tensor([[0.5], [0.25]])),
                          ramp * torch.tensor([[0.5], [0.25]]), atol=1e-5)


def test_zoom_scales_images_about_their_centre():
    x = torch.rand(3, 1, 8, 8)
    assert torch.allclose(gt.shift.zoom(x, 1.0), x, atol=1e-6)
    ramp = (torch.arange(8.0) - 3.5).expand(2, 1, 8, 8)  # linear across the columns, zero at the centre
    assert torch.allclose(gt.shift.zoom(ramp, 2.0), ramp / 2, atol=1e-5)  # reads inside the frame: exact
    rows = ramp.transpose(2, 3).contiguous()  # linear down the rows: scaled about the same centre
    assert torch.allclose(gt.shift.zoom(rows, 2.0), rows / 2, atol=1e-5)
    assert torch.allclose(gt.shift.zoom(ramp, torch.tensor([2.0, 4.0])), ramp / torch.tensor([2.0, 4.0]).reshape(2, 1, 1, 1),
                          atol=1e-5)
    shrunk = gt.shift.zoom(torch.ones(1, 1, 8, 8), 0.5)  # a shrunk white square on a black border
    assert shrunk[0, 0, 3:5, 3:5].eq(1).all() and shrunk[0, 0, 0].eq(0).all() and shrunk.sum() == pytest.approx(16, abs=1e-4)
    with pytest.raises(ValueError, match="positive"):
        gt.shift.zoom(x, 0.0)
    with pytest.raises(ValueError, match="one for each"):
        gt.shift.zoom(x, torch.tensor([1.0, 1.1]))  # two factors for three images


def test_random_zoom_draws_one_factor_an_image():
    x = torch.rand(64, 1, 8, 8)
    assert torch.allclose(gt.regularize.random_zoom(0.0)(x), x, atol=1e-6)
    torch.manual_seed(0)
    zoomed = gt.regularize.random_zoom(0.15)(x)
    torch.manual_seed(0)
    factors = 1 + (torch.rand(64) * 2 - 1) * 0.15
    assert factors.min() < 0.95 and factors.max() > 1.05
    assert torch.allclose(zoomed, gt.shift.zoom(x, factors), atol=1e-6)
    with pytest.raises(ValueError, match="max_change"):
        gt.regularize.random_zoom(1.0)


def test_test_time_augmentation_and_confidence():
    net = gt.models.MLP(40, [16], 10).train()
    x = torch.randn(30, 40)
    with torch.no_grad():
        plain = net.eval()(x).softmax(1)
    net.train()
    identity = lambda batch: batch  # noqa: E731
    assert torch.allclose(gt.shift.tta_probabilities(net, x, [identity]), plain)
    views = [identity, lambda batch: torch.roll(batch, 1, 1)]
    with torch.no_grad():
        by_hand = (plain + net.eval()(torch.roll(x, 1, 1)).softmax(1)) / 2
    net.train()
    assert torch.allclose(gt.shift.tta_probabilities(net, x, views), by_hand) and net.training
    assert gt.shift.confidence(net, x) == pytest.approx(plain.max(1).values.mean().item())
    with pytest.raises(ValueError, match="at least one"):
        gt.shift.tta_probabilities(net, x, [])


class _Rule(torch.nn.Module):
    """Class 1 where the first input is above `cut`, else class 0: predictions known by hand."""

    def __init__(self, cut: float):
        super().__init__()
        self.cut = cut

    def forward(self, x):
        return torch.stack([torch.zeros(len(x)), (x[:, 0] > self.cut).float()], 1)


def test_disagreement_averages_the_pairs_and_evaluates_in_evaluation_mode():
    x = ((torch.arange(100) + 0.5) / 100)[:, None].repeat(1, 3)    # first input: 0.005 to 0.995, none at a cut
    above_half, above_three_quarters, never = _Rule(0.5), _Rule(0.75), _Rule(2.0)
    assert gt.shift.disagreement([above_half, above_half], x) == 0
    assert gt.shift.disagreement([above_half, never], x) == pytest.approx(0.5)
    # the pairs differ on (0.5, 0.75), on (0.5, 1) and on (0.75, 1): 25, 50 and 25 of the 100 inputs
    assert gt.shift.disagreement([above_half, above_three_quarters, never], x) == pytest.approx(100 / 3 / 100)
    noisy = torch.nn.Sequential(torch.nn.Dropout(0.9), gt.models.MLP(3, [8], 4)).train()
    assert gt.shift.disagreement([noisy, noisy], torch.randn(200, 3)) == 0 and noisy.training
    with pytest.raises(ValueError, match="in pairs"):
        gt.shift.disagreement([never], x)


def test_disagreement_report_sets_the_truth_beside_the_estimates():
    x = ((torch.arange(100) + 0.5) / 100)[:, None]
    split = gt.data.TensorData(x, (x[:, 0] > 0.6).long())                      # the truth: class 1 above 0.6
    rows = gt.shift.disagreement_report([_Rule(0.5), _Rule(0.75)], {"a": split, "b": split})
    assert [row["test set"] for row in rows] == ["a", "b"]
    # _Rule(0.5) errs on (0.5, 0.6), _Rule(0.75) on (0.6, 0.75): 10 and 15 of 100; they differ on (0.5, 0.75)
    assert rows[0]["error"] == pytest.approx(0.125) and rows[0]["disagreement"] == pytest.approx(0.25)
    by_hand = np.mean([torch.stack([torch.zeros(100), (x[:, 0] > cut).float()], 1).softmax(1).amax(1).mean() for cut in (0.5, 0.75)])
    assert rows[0]["confidence"] == pytest.approx(by_hand)
    rule, calls = _Rule(0.5), []
    rule.register_forward_hook(lambda *_: calls.append(1))
    gt.shift.disagreement_report([rule, _Rule(0.75)], {"a": split, "b": split})
    assert len(calls) == 2   # each model evaluated once a test set: error, disagreement and confidence share it


def test_ks_shift_test_finds_a_moved_feature_and_not_a_fresh_draw():
    gen = torch.Generator().manual_seed(0)
    reference, same = torch.randn(500, 8, generator=gen), torch.randn(500, 8, generator=gen)
    moved = same.clone()
    moved[:, 3] += 0.5  # one feature moved by half a standard deviation
    assert gt.shift.ks_shift_test(reference, same) > 0.05
    assert gt.shift.ks_shift_test(reference, moved) < 1e-4
    p_each = [scipy.stats.ks_2samp(reference[:, j].numpy(), moved[:, j].numpy()).pvalue for j in range(8)]
    assert gt.shift.ks_shift_test(reference, moved) == pytest.approx(min(1.0, 8 * min(p_each)))
    with pytest.raises(ValueError, match="features"):
        gt.shift.ks_shift_test(reference, moved[:, :4])


def test_report_and_a_scikit_classifier_in_the_zoo():
    from sklearn.neighbors import KNeighborsClassifier

    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(60, 5, generator=gen), torch.arange(60) % 3
    tests = {"a": gt.data.TensorData(x[:30], y[:30]), "b": gt.data.TensorData(x[30:], y[30:])}
    knn = KNeighborsClassifier(5).fit(x[:30].numpy(), y[:30].numpy())
    model = gt.shift.FromScikit(knn, n_classes=4)   # a class it never saw gets probability ~0
    scores = gt.shift.report(model, tests)
    assert scores["b acc"] == pytest.approx(float((knn.predict(x[30:].numpy()) == y[30:].numpy()).mean()))
    assert scores["a confidence"] == pytest.approx(knn.predict_proba(x[:30].numpy()).max(1).mean(), rel=1e-5)
    assert set(scores) == {"a acc", "a confidence", "b acc", "b confidence"}
    net = gt.models.MLP(5, [8], 3)
    flipped = gt.shift.report(net, tests, views=[lambda batch: -batch])
    with torch.no_grad():
        assert flipped["a acc"] == pytest.approx((net(-x[:30]).argmax(1) == y[:30]).float().mean().item())


def test_corruptions_grow_with_severity_and_keep_pixels_in_range():
    gen = torch.Generator().manual_seed(3)
    x = 0.25 + 0.5 * torch.rand(4, 3, 8, 8, generator=gen)   # away from 0 and 1, so clipping rarely acts
    for kind in gt.shift.CORRUPTIONS:
        distances = [(gt.shift.corrupt(x, kind, severity) - x).abs().mean().item() for severity in range(1, 6)]
        assert all(a < b for a, b in zip(distances, distances[1:])), kind
        worst = gt.shift.corrupt(x, kind, 5)
        assert worst.shape == x.shape and worst.min() >= 0 and worst.max() <= 1
    assert torch.equal(gt.shift.corrupt(x, "gaussian noise", 2, seed=1), gt.shift.corrupt(x, "gaussian noise", 2, seed=1))
    flat = torch.full((2, 3, 8, 8), 0.4)
    assert torch.allclose(gt.shift.corrupt(flat, "gaussian blur", 4), flat) and torch.allclose(gt.shift.corrupt(flat, "contrast", 5), flat)
    low = gt.shift.corrupt(x, "contrast", 5)
    assert torch.allclose(low.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)
    assert torch.allclose(gt.shift.corrupt(x, "brightness", 1), (x + 0.1).clamp(0, 1))
    sets = gt.shift.corrupted(gt.data.TensorData(x, torch.arange(4)), severities=(1, 5))
    assert list(sets) == [f"{kind} {s}" for kind in gt.shift.CORRUPTIONS for s in (1, 5)]
    assert all(torch.equal(split.y, torch.arange(4)) for split in sets.values())
    with pytest.raises(ValueError, match="severity"):
        gt.shift.corrupt(x, "fog", 1)
    with pytest.raises(ValueError, match="severity"):
        gt.shift.corrupt(x, "contrast", 6)
