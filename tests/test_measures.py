"""gentools.measures, checked by identities: known values on constructed networks, what rescaling a ReLU layer
changes and what it does not, and the PAC-Bayes bound's monotonicity."""
import copy
import math

import pytest
import torch
from torch import nn

import gentools as gt
from gentools import measures


def network(seed=0, widths=(5, 4)):
    torch.manual_seed(seed)
    return gt.models.MLP(3, list(widths), 2)


def test_path_norm_equals_the_sum_over_paths_written_out():
    model = network(widths=(4,))
    (w1, b1), (w2, b2) = [(layer.weight.detach().double(), layer.bias.detach().double())
                          for layer in measures.linear_layers(model)]
    from_inputs = sum((w2[k, j] * w1[j, i]) ** 2 for k in range(2) for j in range(4) for i in range(3))
    from_biases = sum((w2[k, j] * b1[j]) ** 2 for k in range(2) for j in range(4)) + (b2 ** 2).sum()
    assert measures.path_norm(model) == pytest.approx(math.sqrt(from_inputs + from_biases), rel=1e-10)
    with_dropout = gt.models.MLP(3, [4], 2, dropout=0.5)   # in training mode: no mask may touch the paths
    assert measures.path_norm(with_dropout) == measures.path_norm(with_dropout)


def test_rescaling_a_relu_layer_keeps_function_path_norm_and_norm_products_but_not_the_weights_norm():
    model = network()
    other = measures.rescaled(model, layer=0, factor=7.0)
    x = torch.randn(10, 3)
    assert torch.allclose(model(x), other(x), atol=1e-5)
    assert measures.path_norm(other) == pytest.approx(measures.path_norm(model), rel=1e-6)  # float32 weights
    for ord in ("fro", 2):
        assert measures.norm_product(other, ord) == pytest.approx(measures.norm_product(model, ord), rel=1e-6)
    norm = lambda m: sum(p.double().pow(2).sum() for p in m.parameters()).sqrt().item()  # noqa: E731
    assert norm(other) > 2 * norm(model)


def test_norm_products_of_diagonal_layers():
    model = gt.models.MLP(2, [2], 2)
    first, second = measures.linear_layers(model)
    with torch.no_grad():
        first.weight.copy_(torch.diag(torch.tensor([3.0, 1.0])))
        second.weight.copy_(torch.diag(torch.tensor([2.0, 5.0])))
    assert measures.norm_product(model, 2) == pytest.approx(15.0)
    assert measures.norm_product(model, "fro") == pytest.approx(math.sqrt(10) * math.sqrt(29))
    # Bartlett et al.: rows (3, 1) and (2, 5) give (2,1) norms 4 and 7 against spectral norms 3 and 5
    assert measures.spectral_complexity(model) == pytest.approx(15 * ((4 / 3) ** (2 / 3) + (7 / 5) ** (2 / 3)) ** 1.5)
    with pytest.raises(ValueError, match="ord"):
        measures.norm_product(model, 1)


def test_spectral_complexity_of_one_layer_is_the_sum_of_its_row_norms_and_zero_against_itself():
    model = gt.models.MLP(3, [], 4)
    weight = measures.linear_layers(model)[0].weight.detach().double()
    assert measures.spectral_complexity(model) == pytest.approx(weight.norm(dim=1).sum().item(), rel=1e-9)
    deep = network()
    assert measures.spectral_complexity(deep, reference=deep) == 0.0
    with pytest.raises(ValueError, match="reference"):
        measures.spectral_complexity(deep, reference=network(widths=(5,)))


def test_measures_leave_the_model_in_its_own_mode():
    model, x, y = gt.models.MLP(3, [4], 2, dropout=0.5), torch.randn(8, 3), torch.randint(2, (8,))
    measures.margins(model, x, y), measures.sharpness(model, x, y, radius=0.01, steps=2)
    assert model.training
    with pytest.raises(RuntimeError):
        measures.margins(model, torch.randn(8, 5), y)   # wrong input size: the forward pass raises
    assert model.training


def test_margins_of_a_known_linear_model():
    model = gt.models.MLP(3, [], 3)
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(3))
        model[1].bias.zero_()
    x = torch.tensor([[3.0, 1.0, 0.0], [3.0, 1.0, 0.0]])
    assert measures.margins(model, x, torch.tensor([0, 1])).tolist() == [2.0, -2.0]


def test_sharpness_is_zero_without_perturbation_and_at_least_the_random_one():
    model, x, y = network(), torch.randn(64, 3), torch.randint(2, (64,))
    assert measures.sharpness(model, x, y, radius=0.0) == 0.0
    assert measures.random_sharpness(model, x, y, radius=0.0) == 0.0
    worst, typical = measures.sharpness(model, x, y, radius=0.05), measures.random_sharpness(model, x, y, radius=0.05)
    assert worst > typical and worst > 0


def test_sharpness_of_a_zero_network_in_closed_form():
    # outputs (0, 0) at w = 0; the box |z| <= 0.1 moves each of the 4 parameters (2 weights, 2 biases) by 0.1 against
    # class 0, so the outputs become (-0.2, 0.2): loss log(1 + e^0.4) against log 2, relative to 1 + log 2
    model = gt.models.MLP(1, [], 2)
    for parameter in model.parameters():
        nn.init.zeros_(parameter)
    value = measures.sharpness(model, torch.ones(1, 1), torch.tensor([0]), radius=0.1)
    assert value == pytest.approx((math.log1p(math.exp(0.4)) - math.log(2)) / (1 + math.log(2)), rel=1e-6)


def test_magnitude_relative_sharpness_ignores_a_rescaling_and_keskars_does_not():
    model, x, y = network(), torch.randn(64, 3), torch.randint(2, (64,))
    other = measures.rescaled(model, layer=1, factor=10.0)
    for measure in (measures.sharpness, measures.random_sharpness):
        relative = measure(model, x, y, radius=0.05, offset=0.0)
        assert measure(other, x, y, radius=0.05, offset=0.0) == pytest.approx(relative, rel=1e-4)
        assert measure(other, x, y, radius=0.05) != pytest.approx(measure(model, x, y, radius=0.05), rel=0.05)


def test_gaussian_kl_against_the_closed_form():
    assert measures.gaussian_kl(torch.zeros(4), torch.ones(4), 0.0, 1.0) == 0.0
    q_mean, q_std, p_std = 0.5, 0.2, 0.3
    closed = math.log(p_std / q_std) + (q_std ** 2 + q_mean ** 2) / (2 * p_std ** 2) - 0.5
    assert measures.gaussian_kl(torch.tensor([q_mean] * 3), torch.tensor(q_std), 0.0, p_std) == pytest.approx(
        3 * closed)


def test_kl_inverse_inverts_the_bernoulli_kl_and_grows_with_its_bound():
    for q in (0.0, 0.03, 0.4):
        assert measures.kl_inverse(q, 0.0) == pytest.approx(q, abs=1e-9)
        values = [measures.kl_inverse(q, c) for c in (0.01, 0.1, 0.5)]
        assert values == sorted(values) and all(q < v < 1 for v in values)
        assert measures.bernoulli_kl(q, values[1]) == pytest.approx(0.1, abs=1e-8)
    assert measures.kl_inverse(0.1, 100.0) == 1.0


def test_pac_bayes_bound_grows_with_the_kl_and_shrinks_with_n():
    bounds = [measures.pac_bayes_bound(0.05, kl, n=10_000) for kl in (0.0, 100.0, 1000.0, 5000.0)]
    assert bounds == sorted(bounds) and bounds[0] > 0.05 and bounds[-1] < 1
    assert measures.pac_bayes_bound(0.05, 100.0, n=100_000) < measures.pac_bayes_bound(0.05, 100.0, n=10_000)
    # zero training error: kl(0 || p) = -log(1 - p), so the bound is 1 - exp(-(KL + log(n / delta)) / (n - 1))
    expected = 1 - math.exp(-(10 + math.log(1001 / 0.05)) / 1000)
    assert measures.pac_bayes_bound(0.0, 10.0, n=1001) == pytest.approx(expected)
    with pytest.raises(ValueError, match="kl=-1.0"):
        measures.pac_bayes_bound(0.05, -1.0, n=100)
    with pytest.raises(ValueError, match="n=1,"):
        measures.pac_bayes_bound(0.05, 1.0, n=1)
    with pytest.raises(ValueError, match="must lie in"):
        measures.bernoulli_kl(1.2, 0.5)


def test_a_posterior_equal_to_its_prior_has_zero_kl_and_its_bound_pays_only_for_confidence():
    model = network()
    weights = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    posterior = measures.Posterior(model, weights, {name: torch.full_like(w, math.sqrt(0.1 * math.exp(-0.07)))
                                                    for name, w in weights.items()}, weights, j=7)
    assert posterior.prior_variance == pytest.approx(0.1 * math.exp(-0.07))
    assert posterior.kl() == pytest.approx(0.0, abs=1e-9)
    x, y = torch.randn(200, 3), torch.randint(0, 2, (200,))
    result = posterior.bound(x, y, samples=50, delta=0.025, delta_sampling=0.01)
    assert result["train_error_estimate"] == pytest.approx(posterior.error(x, y, samples=50))
    assert result["train_error_bound"] == pytest.approx(
        measures.kl_inverse(result["train_error_estimate"], math.log(2 / 0.01) / 50))
    complexity = 2 * math.log(7) + math.log(math.pi ** 2 / 6)
    assert result["bound"] == pytest.approx(measures.pac_bayes_bound(result["train_error_bound"], complexity, 200, 0.025))


def test_fit_posterior_gives_a_non_vacuous_bound_on_an_easy_task_and_leaves_the_model_alone():
    torch.manual_seed(0)
    x = torch.randn(4000, 3)
    y = (x[:, 0] > 0).long()
    model = network(widths=(8,))
    initial = network(seed=1, widths=(8,))
    gt.fit(model, gt.data.DataSet("easy", gt.data.TensorData(x, y), gt.data.TensorData(x[:10], y[:10]), n_classes=2), epochs=20,
           lr=1e-2, progress=False)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    posterior = measures.fit_posterior(model, initial, x, y, steps=1000, lr=1e-2, seed=0)
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())
    result = posterior.bound(x, y, samples=200)
    assert result["train_error_estimate"] <= result["train_error_bound"] < result["bound"] < 0.5
    assert posterior.j >= 1 and result["prior_variance"] < 0.1


def test_vc_bound_in_closed_form_on_both_sides_of_the_vc_dimension():
    n, delta = 100, 0.05
    confidence = math.sqrt(math.log(1 / delta) / (2 * n))
    assert measures.vc_bound(1000, n, delta) == pytest.approx(math.sqrt(2 * math.log(2)) + confidence)   # n <= d: 2^n
    assert measures.vc_bound(10, n, delta) == pytest.approx(math.sqrt(2 * 10 * math.log(math.e * n / 10) / n) + confidence)
    assert measures.vc_bound(10, 10_000) < measures.vc_bound(10, 1000) < 1 < measures.vc_bound(1000, 1000)
    with pytest.raises(ValueError, match="delta"):
        measures.vc_bound(10, 100, delta=0)


def test_summary_margin_normalises_every_norm_measure_and_ignores_a_scaled_output():
    model = network()
    x = torch.randn(64, 3)
    with torch.no_grad():
        y = model(x).argmax(1)                                    # the network's own predictions: gamma > 0
    gamma = measures.margin(model, x, y)
    assert gamma == pytest.approx(torch.quantile(measures.margins(model, x, y), 0.1).item())
    table = measures.summary(model, x, y)
    assert table["path"] == pytest.approx(measures.path_norm(model) ** 2 / gamma ** 2)
    assert table["spectral bound"] == pytest.approx(x.norm().item() * measures.spectral_complexity(model) / (gamma * 64))
    assert table["parameters"] == sum(p.numel() for p in model.parameters())
    louder = copy.deepcopy(model)                                  # the read-out (and its bias) times 3
    with torch.no_grad():
        louder[-1].weight.mul_(3), louder[-1].bias.mul_(3)
    scaled = measures.summary(louder, x, y)
    for name in ("Frobenius", "spectral", "path", "spectral complexity", "Frobenius bound", "spectral bound"):
        assert scaled[name] == pytest.approx(table[name], rel=1e-5), name
    wrong = measures.summary(model, x, 1 - y)                     # every example misclassified: gamma < 0
    assert wrong["margin"] < 0 and all(math.isnan(wrong[name]) for name in ("Frobenius", "path", "spectral bound"))


def test_measures_refuse_what_they_do_not_describe():
    with pytest.raises(ValueError, match="normalization"):
        measures.path_norm(gt.models.MLP(3, [4], 2, batch_norm=True))
    with pytest.raises(ValueError, match="Conv1d has weights"):
        measures.norm_product(gt.models.CNN1d(channels=4))
    with pytest.raises(ValueError, match="no linear layers"):
        measures.path_norm(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="Tanh does not"):
        measures.path_norm(gt.models.MLP(3, [4], 2, activation="tanh"))
    with pytest.raises(ValueError, match="positive"):
        measures.rescaled(network(), layer=0, factor=-1.0)
    with pytest.raises(ValueError, match="next layer"):
        measures.rescaled(network(), layer=2, factor=2.0)
