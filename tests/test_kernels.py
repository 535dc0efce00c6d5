"""gt.kernels against what is known in closed form: a linear model's NTK is its Gram matrix and its linearisation is
itself; kernels are symmetric positive semi-definite; kernel regression interpolates."""
import pytest
import torch
from torch import nn

import gentools as gt
from gentools import kernels


def test_the_ntk_of_a_linear_model_is_the_gram_matrix_of_its_inputs():
    torch.manual_seed(0)
    model = nn.Linear(5, 3, bias=False)
    x, z = torch.randn(7, 5), torch.randn(4, 5)
    torch.testing.assert_close(kernels.ntk(model, x, z), (x @ z.T).double())


def test_the_linearisation_of_a_linear_model_is_the_model_wherever_its_parameters_go():
    torch.manual_seed(1)
    model = nn.Linear(5, 3)
    linear = kernels.Linearised(model)
    with torch.no_grad():
        for theta, p in zip(linear.theta, model.parameters()):
            step = torch.randn_like(p)
            theta.add_(step)
            p.add_(step)
    x = torch.randn(6, 5)
    torch.testing.assert_close(linear(x), model(x))


def test_the_linearisation_agrees_with_the_network_at_the_start_and_to_first_order():
    torch.manual_seed(2)
    model = gt.models.MLP(10, [16], 3, activation="tanh")
    linear = kernels.Linearised(model)
    x = torch.randn(8, 10)
    torch.testing.assert_close(linear(x), model(x))
    direction = [torch.randn_like(p) for p in model.parameters()]
    with torch.no_grad():
        for theta, p, d in zip(linear.theta, model.parameters(), direction):
            theta.add_(1e-3 * d)
            p.add_(1e-3 * d)
    assert (linear(x) - model(x)).abs().max() < 1e-4  # second order in the step


def test_the_kernel_is_symmetric_positive_semidefinite_and_matches_the_jacobian():
    torch.manual_seed(3)
    model = kernels.ntk_mlp(10, [32], 4)
    x = torch.randn(12, 10)
    k = kernels.ntk(model, x, chunk_size=5)  # several chunks
    torch.testing.assert_close(k, k.T)
    assert torch.linalg.eigvalsh(k).min() > -1e-8 * k.diagonal().max()
    j = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(model(x[i:i + 1])[0, c], model.parameters())])
                     for i in range(12) for c in range(4)]).view(12, 4, -1).double()
    torch.testing.assert_close(k, torch.einsum("icp,jcp->ij", j, j) / 4)


def _jacobian(model, x):
    """d f_c(x_i) / d theta for every example and output, by plain autograd: (examples, outputs, parameters)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    return torch.stack([torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(model(x[i:i + 1])[0, c], trained)])
                                     for c in range(model(x[:1]).shape[1])]) for i in range(len(x))]).double()


@pytest.mark.parametrize("build", [lambda: gt.models.MLP(10, [16, 8], 3),                    # summed layer by layer
                                   lambda: gt.models.MLP(10, [16], 3, batch_norm=True),      # BN parameters: Jacobians
                                   lambda: gt.models.CNN1d(length=10, out_features=3, channels=4)])
def test_the_kernel_between_two_sets_matches_the_jacobians_whichever_way_it_is_computed(build):
    torch.manual_seed(4)
    model = build().eval()
    x, z = torch.randn(6, 10), torch.randn(5, 10)
    expected = torch.einsum("icp,jcp->ij", _jacobian(model, x), _jacobian(model, z)) / 3
    torch.testing.assert_close(kernels.ntk(model, x, z), expected)


def test_frozen_layers_are_left_out_of_the_kernel():
    torch.manual_seed(5)
    model = gt.models.MLP(10, [16], 3)
    model[1].requires_grad_(False)   # the first linear layer: only the last one's parameters count
    x = torch.randn(6, 10)
    expected = torch.einsum("icp,jcp->ij", _jacobian(model, x), _jacobian(model, x)) / 3
    torch.testing.assert_close(kernels.ntk(model, x), expected)


def test_kernel_regression_interpolates_and_ridge_shrinks():
    torch.manual_seed(4)
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 2, dtype=torch.float64)
    k = torch.exp(-torch.cdist(x, x) ** 2)
    torch.testing.assert_close(kernels.kernel_regression(k, y, k), y)
    assert kernels.kernel_regression(k, y, k, ridge=10.0).norm() < y.norm()
    with pytest.raises(ValueError):
        kernels.kernel_regression(k, y, k, ridge=-1)


def test_a_linearised_model_trains_with_fit(small_mnist1d):
    gt.seed_everything(0)
    linear = kernels.Linearised(kernels.ntk_mlp(40, [64], 10))
    history = gt.fit(linear, small_mnist1d, epochs=2, optimizer="sgd", lr=0.1)
    assert history.final["train_loss"] < history.records[0]["train_loss"]


def test_the_scaled_model_starts_at_zero_and_its_function_moves_alike_for_every_alpha():
    """Chizat et al.'s knob: alpha * (f - f0) is zero at the start; with the learning rate divided by alpha**2, one
    small SGD step moves the outputs the same amount for every alpha, and the weights about 1/alpha as far."""
    x, y = torch.randn(16, 5), torch.randn(16, 3)
    moves = {}
    for alpha in (0.5, 4.0):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, 3))
        scaled = kernels.Scaled(net, alpha)
        assert scaled(x).abs().max() == 0
        start = [p.detach().clone() for p in net.parameters()]
        loss = (scaled(x) - y).pow(2).mean()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= 1e-3 / alpha**2 * p.grad
        moves[alpha] = (scaled(x).detach(), sum(float((p.detach() - s).norm() ** 2) for p, s in zip(net.parameters(), start)) ** 0.5)
        assert sum(1 for p in scaled.parameters() if p.requires_grad) == 4  # the frozen copy does not train
    torch.testing.assert_close(moves[0.5][0], moves[4.0][0], rtol=1e-3, atol=1e-6)
    assert moves[0.5][1] == pytest.approx(8 * moves[4.0][1], rel=1e-3)
    with pytest.raises(ValueError, match="alpha"):
        kernels.Scaled(nn.Linear(2, 2), 0.0)


def test_tied_weights_take_the_jacobians():
    torch.manual_seed(6)
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    second.weight = first.weight                      # one parameter, two layers: its gradient has two terms
    model = nn.Sequential(first, nn.Tanh(), second)
    x, y = torch.randn(5, 4), torch.randn(5, 4)
    assert gt.gradients.linear_layers(model) is None
    expected = torch.einsum("icp,jcp->ij", _jacobian(model, x), _jacobian(model, x)) / 4
    torch.testing.assert_close(kernels.ntk(model, x), expected)
    grads, _ = gt.gradients.per_example(model, x, y, loss="mse")
    for i in range(len(x)):
        model.zero_grad()
        (model(x[i:i + 1]) - y[i:i + 1]).pow(2).mean().backward()
        torch.testing.assert_close(grads["0.weight"][i], first.weight.grad)
