import numpy as np
import pytest
import torch

import gentools as gt


def test_legendre_features_match_numpy():
    x = torch.linspace(-1, 1, 7)[:, None]
    ours = gt.linear.polynomial_features(x, 5).numpy()
    np.testing.assert_allclose(ours, np.polynomial.legendre.legvander(x[:, 0].numpy(), 5), atol=1e-6)
    assert gt.linear.polynomial_features(x, 0).shape == (7, 1)
    with pytest.raises(ValueError):
        gt.linear.polynomial_features(x, -1)


def test_least_squares_recovers_a_polynomial_and_is_batched():
    x = torch.linspace(-1, 1, 30)[:, None]
    y = 1 + 2 * x - 3 * x**3
    predict = gt.linear.fit_polynomial(x, y, degree=3)
    torch.testing.assert_close(predict(torch.tensor([[0.5]])), torch.tensor([[1 + 1 - 3 / 8]], dtype=torch.float64))
    features = gt.linear.polynomial_features(x, 2).expand(4, 30, 3)
    targets = torch.randn(4, 30, 1, dtype=torch.float64)
    batched = gt.linear.least_squares(features, targets)
    for i in range(4):
        torch.testing.assert_close(batched[i], torch.linalg.lstsq(features[i], targets[i]).solution)


def test_minimum_norm_and_ridge():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(5, 12, generator=gen, dtype=torch.float64)  # more features than examples
    targets = torch.randn(5, 1, generator=gen, dtype=torch.float64)
    w = gt.linear.least_squares(features, targets)
    torch.testing.assert_close(features @ w, targets)  # interpolates
    other = w + torch.linalg.svd(features).Vh[-1:].T  # another interpolant (a null-space direction added)
    torch.testing.assert_close(features @ other, targets)
    assert w.norm() < other.norm()
    ridged = gt.linear.least_squares(features, targets, ridge=10.0)
    assert ridged.norm() < w.norm()
    with pytest.raises(ValueError):
        gt.linear.least_squares(features, targets, ridge=-1)
    assert gt.linear.rank_fraction(features.T) == pytest.approx(5 / 12)


def test_decomposition_of_a_known_estimator():
    # A learner that predicts the truth plus 0.5 plus Gaussian scatter of standard deviation 0.2, with noise 0.1:
    # bias^2 = 0.25, variance = 0.04, noise = 0.01.
    gen = torch.Generator().manual_seed(0)
    truth = torch.linspace(-1, 1, 50)
    predictions = truth + 0.5 + 0.2 * torch.randn(4000, 50, generator=gen)
    d = gt.biasvar.decompose(predictions, truth, noise=0.1)
    assert d.bias2 == pytest.approx(0.25, abs=0.003) and d.variance == pytest.approx(0.04, rel=0.03)
    assert d.noise == pytest.approx(0.01)
    assert abs(d.total - d.measured) < 3 * d.measured_se
    assert d.as_dict()["total"] == d.total
    assert list(gt.biasvar.table([d, d]).columns) == ["bias2", "variance", "noise", "measured", "measured_se", "total"]


def test_training_sets_designs():
    x, y = gt.biasvar.training_sets("sin", n=10, noise=0.0, repeats=3)
    assert x.shape == y.shape == (3, 10, 1) and torch.equal(x[0], x[2])
    torch.testing.assert_close(y, torch.sin(torch.pi * x))
    xr, _ = gt.biasvar.training_sets("cubic", n=10, noise=0.1, repeats=3, design="random")
    assert not torch.equal(xr[0], xr[1])
    with pytest.raises(ValueError, match="design"):
        gt.biasvar.training_sets("sin", 10, 0.1, 2, design="spiral")
    with pytest.raises(ValueError, match="Unknown function"):
        gt.biasvar.training_sets("zigzag", 10, 0.1, 2)


def test_polynomial_study_shows_the_classic_tradeoff():
    low, high = (gt.biasvar.polynomial_study(d, n=20, noise=0.3, repeats=100).decomposition for d in (1, 12))
    assert low.bias2 > 10 * high.bias2 and high.variance > 3 * low.variance


def test_network_study_trains_each_network_on_its_own_training_set():
    study = gt.biasvar.network_study(16, n=20, noise=0.3, repeats=4, seed=1, epochs=200, lr=1e-2)
    x, y = gt.biasvar.training_sets("sin", 20, 0.3, 4, seed=1)
    torch.manual_seed(2)  # network 2 alone, on training set 2, as a plain MLP
    alone = gt.models.MLP(1, [16], 1)
    data = gt.data.DataSet("sin", train=gt.data.TensorData(x[2], y[2]), test=gt.data.TensorData(x[2], y[2]))
    gt.fit(alone, data, epochs=200, lr=1e-2, batch_size=20)
    with torch.no_grad():
        torch.testing.assert_close(study.predictions[2], alone(study.x)[:, 0], rtol=1e-3, atol=1e-4)
    assert study.predictions.shape == (4, 200) and 0 < study.train_loss < 0.3


def test_explore_builds_its_widget():
    widget = gt.biasvar.explore(repeats=10)
    assert [child.description for child in widget.children[:3]] == ["degree", "noise", "n"]


def test_power_law_fit_recovers_the_exponent():
    n = np.array([100, 200, 400, 800, 1600])
    alpha, c = gt.stats.fit_power_law(n, 3.0 * n**-0.3)
    assert alpha == pytest.approx(0.3) and c == pytest.approx(3.0)


def test_random_relu_features_are_seeded_and_nonnegative():
    x = torch.randn(6, 4)
    a, b = gt.linear.random_relu_features(x, 9, seed=1), gt.linear.random_relu_features(x, 9, seed=1)
    assert a.shape == (6, 9) and torch.equal(a, b) and bool((a >= 0).all())
    assert not torch.equal(a, gt.linear.random_relu_features(x, 9, seed=2))


def test_dual_ridge_equals_primal():
    gen = torch.Generator().manual_seed(1)
    wide = torch.randn(6, 15, generator=gen, dtype=torch.float64)
    y = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    primal = torch.linalg.solve(wide.T @ wide + 0.5 * torch.eye(15, dtype=torch.float64), wide.T @ y)
    torch.testing.assert_close(gt.linear.least_squares(wide, y, ridge=0.5), primal)


def test_interpolation_peak_landmarks():
    sizes = [1, 2, 4, 8, 16, 32]
    train = [0.6, 0.3, 0.1, 0.0, 0.0, 0.0]
    test = [0.7, 0.4, 0.35, 0.6, 0.3, 0.2]
    found = gt.stats.interpolation_peak(sizes, train, test)
    assert found == {"threshold": 8, "first_min_x": 4, "first_min": 0.35, "peak_x": 8, "peak": 0.6, "last": 0.2}
    with pytest.raises(ValueError, match="zero training error"):
        gt.stats.interpolation_peak(sizes, [0.5] * 6, test)


def test_interpolating_relu_network_fits_random_labels_exactly():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 12, generator=gen)
    y = torch.randint(10, (300,), generator=gen).double()
    net = gt.linear.interpolating_relu_network(x, y, seed=1)
    out = net(x.double())[:, 0]
    assert torch.allclose(out, y, atol=1e-6)
    assert out.round().eq(y).all()
    with pytest.raises(ValueError, match="duplicate"):
        gt.linear.interpolating_relu_network(torch.zeros(3, 2), torch.zeros(3))


def test_random_fourier_features_approximate_the_gaussian_kernel():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    features = gt.linear.random_fourier_features(x, 40_000, bandwidth=1.5, seed=1)
    kernel = torch.exp(-torch.cdist(x, x) ** 2 / (2 * 1.5 ** 2))
    assert torch.allclose(features @ features.T, kernel, atol=0.03)
    assert torch.equal(features, gt.linear.random_fourier_features(x, 40_000, bandwidth=1.5, seed=1))


def explicit_gradient_descent(x, y, lr, steps, feature_lr=None):
    """The reference: a loop of gradient steps on ||x w - y||^2 / (2n), with an optional step size per feature."""
    scale = torch.ones(x.shape[1], dtype=torch.float64) if feature_lr is None else feature_lr
    w = torch.zeros((x.shape[1],) + tuple(y.shape[1:]), dtype=torch.float64)
    seen = []
    for t in range(1, max(steps) + 1):
        gradient = x.T @ (x @ w - y) / len(x)
        w = w - lr * (scale[:, None] if y.ndim > 1 else scale) * gradient
        if t in steps:
            seen.append(w.clone())
    return torch.stack(seen)


@pytest.mark.parametrize("targets", [1, 3])
def test_gradient_descent_path_equals_a_loop_of_steps(targets):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, 12, generator=gen, dtype=torch.float64) * torch.linspace(0.1, 2, 12, dtype=torch.float64)
    y = torch.randn(30, targets, generator=gen, dtype=torch.float64).squeeze(-1)
    steps = [1, 7, 200]
    torch.testing.assert_close(gt.linear.gradient_descent_path(x, y, steps, lr=0.1), explicit_gradient_descent(x, y, 0.1, steps))
    feature_lr = torch.linspace(1, 5, 12, dtype=torch.float64)
    torch.testing.assert_close(gt.linear.gradient_descent_path(x, y, steps, lr=0.05, feature_lr=feature_lr),
                               explicit_gradient_descent(x, y, 0.05, steps, feature_lr))


def test_gradient_descent_path_ends_at_the_minimum_norm_solution_and_refuses_divergent_steps():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(10, 25, generator=gen, dtype=torch.float64), torch.randn(10, generator=gen, dtype=torch.float64)
    far = gt.linear.gradient_descent_path(x, y, [10 ** 6])[0]  # from zero, descent stays in the row space
    torch.testing.assert_close(far, gt.linear.least_squares(x, y[:, None])[:, 0])
    largest = torch.linalg.eigvalsh(x.T @ x / 10).max().item()
    with pytest.raises(ValueError, match="diverges"):
        gt.linear.gradient_descent_path(x, y, [5], lr=2.5 / largest)


def test_two_speed_regression_has_the_scales_and_signal_it_promises():
    data = gt.data.two_speed_regression(n_train=20, n_test=20000, fast=30, slow=5, slow_scale=0.1, slow_signal=0.5,
                                        noise=0.3, seed=0)
    x = data.test.x
    assert x.shape == (20000, 35) and data.train.x.shape == (20, 35)
    assert x[:, :30].std().item() == pytest.approx(1.0, rel=0.02) and x[:, 30:].std().item() == pytest.approx(0.1, rel=0.02)
    signal = []  # each part's share of the signal variance, averaged over draws of w* (40 draws x 5 or 30 weights)
    for seed in range(40):
        draw = gt.data.two_speed_regression(n_train=20, n_test=2000, fast=30, slow=5, slow_scale=0.1, slow_signal=0.5,
                                            noise=0.0, seed=seed)
        w = gt.linear.least_squares(draw.test.x, draw.test.y[:, None])[:, 0]  # noiseless: w* itself
        signal.append([(draw.test.x[:, :30] @ w[:30]).var().item(), (draw.test.x[:, 30:] @ w[30:]).var().item()])
    fast_signal, slow_signal = np.mean(signal, axis=0)
    assert fast_signal == pytest.approx(1.0, rel=0.2) and slow_signal == pytest.approx(0.5, rel=0.35)
    again = gt.data.two_speed_regression(n_train=20, n_test=20000, fast=30, slow=5, slow_scale=0.1, slow_signal=0.5,
                                         noise=0.3, seed=0)
    assert torch.equal(again.train.x, data.train.x)


def test_sgd_from_zero_walks_to_the_minimum_norm_interpolant():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 40, generator=gen, dtype=torch.float64), torch.randn(12, 3, generator=gen, dtype=torch.float64)
    w, distances = gt.linear.sgd_from_zero(x, y, epochs=400, batch_size=4)
    minimum_norm = torch.linalg.pinv(x) @ y  # computed independently of gentools
    torch.testing.assert_close(w, minimum_norm, rtol=1e-6, atol=1e-8)
    assert len(distances) == 400 and distances[0] > 0.05 and distances[-1] < 1e-6 and distances[-1] < distances[100]
    other = torch.randn(40, 3, generator=gen, dtype=torch.float64)  # a different interpolant: w = pinv y + null part
    far = minimum_norm + (torch.eye(40, dtype=torch.float64) - torch.linalg.pinv(x) @ x) @ other
    assert torch.allclose(x @ far, y) and gt.linear.sgd_from_zero(x, y, epochs=400, batch_size=4, reference=far)[1][-1] > 0.1
    with pytest.raises(ValueError, match="diverges"):
        gt.linear.sgd_from_zero(x, y, epochs=1, lr=10.0)


def test_random_features_errors_follow_their_definitions():
    digits = gt.data.load("digits", test_fraction=0.4, seed=0)
    train, valid, test = digits.train.subset(slice(0, 60)), digits.train.subset(slice(60, 120)), digits.test
    row = gt.linear.random_features_errors(30, train, valid, test, draws=1)
    features = gt.linear.random_relu_features(train.x, 30, 0)
    w = torch.linalg.lstsq(features, torch.nn.functional.one_hot(train.y, 10).double()).solution  # 30 < 60: plain least squares
    predictions = gt.linear.random_relu_features(test.x, 30, 0) @ w
    assert row["test_error"] == pytest.approx((predictions.argmax(1) != test.y).double().mean().item())
    assert row["test_mse"] == pytest.approx(((predictions - torch.nn.functional.one_hot(test.y, 10)) ** 2).sum(1).mean().item())
    at_threshold = gt.linear.random_features_errors(60, train, valid, test, draws=2)
    assert at_threshold["test_mse"] > row["test_mse"] and at_threshold["ridge_test_error"] < at_threshold["test_error"]
