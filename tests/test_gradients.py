"""gt.gradients against references computed another way: a loop of one-example backward passes, gradients built to
be identical or orthogonal, and aggregates worked out by hand."""
import pytest
import torch
from torch import nn

import gentools as gt
from gentools import gradients
from gentools.losses import per_example_loss


def looped(model, x, y, loss="cross_entropy", n_classes=10):
    """The reference: one backward pass per example."""
    each = per_example_loss(loss, n_classes)
    rows = []
    for xi, yi in zip(x, y):
        model.zero_grad()
        each(model(xi[None]), yi[None]).sum().backward()
        rows.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    return torch.stack(rows)


def alpha_of(rows):
    return float(rows.mean(0).pow(2).sum() / rows.pow(2).sum(1).mean())


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(12, 40, generator=gen), torch.randint(10, (12,), generator=gen)


@pytest.mark.parametrize("make", [lambda: gt.models.MLP(40, [16, 16], 10, activation="tanh"), lambda: gt.models.CNN1d(channels=4),
                                  lambda: gt.models.MLP(40, [16], 10, dropout=0.5).eval()],
                         ids=["mlp: outer products of one backward pass", "cnn: vmap", "mlp with dropout: vmap"])
def test_per_example_gradients_equal_one_backward_pass_per_example(batch, make):
    torch.manual_seed(0)
    model = make()
    x, y = batch
    grads, losses = gradients.per_example(model, x, y, n_classes=10, chunk_size=5)
    flat = torch.cat([grads[name].flatten(1) for name, _ in model.named_parameters()], 1)
    torch.testing.assert_close(flat, looped(model, x, y), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses, per_example_loss("cross_entropy", 10)(model(x), y).detach())


@pytest.mark.parametrize("make", [lambda: gt.models.MLP(40, [16, 16], 10), lambda: gt.models.CNN1d(channels=4)],
                         ids=["norms from one backward pass", "formed gradients"])
def test_coherence_matches_the_looped_gradients(batch, make):
    torch.manual_seed(1)
    model = make()
    x, y = batch
    measured = gradients.coherence(model, gt.data.TensorData(x, y), n_classes=10, batch_size=5)
    assert measured.m == 12
    assert measured.alpha == pytest.approx(alpha_of(looped(model, x, y)), rel=1e-4)


def test_identical_gradients_have_coherence_one_and_m_coherence_m():
    torch.manual_seed(2)
    model = gt.models.MLP(40, [8], 10)
    x, y = torch.randn(1, 40).repeat(7, 1), torch.full((7,), 3)
    measured = gradients.coherence(model, gt.data.TensorData(x, y), n_classes=10)
    assert measured.alpha == pytest.approx(1.0, rel=1e-5) and measured.m_coherence == pytest.approx(7.0, rel=1e-5)


@pytest.mark.parametrize("wrap", [False, True], ids=["linear layer", "any model"])
def test_orthogonal_gradients_have_coherence_one_over_m_and_m_coherence_one(wrap):
    m = 6
    model = nn.Linear(m, 1, bias=False)
    nn.init.zeros_(model.weight)
    if wrap:  # a parameter outside nn.Linear: the gradients are formed
        model = _Scaled(model)
    x, y = torch.eye(m), torch.ones(m, 1)  # example i's gradient is -2 e_i: orthogonal, of equal norm
    measured = gradients.coherence(model, gt.data.TensorData(x, y), loss="mse")
    assert measured.alpha == pytest.approx(1 / m) and measured.m_coherence == pytest.approx(1.0)


class _Scaled(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.scale = inner, nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.inner(x) * self.scale


def test_winsorizing_nothing_is_the_mean_and_winsorizing_clips_lone_values():
    g = {"w": torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [10.0, 4.0]])}
    torch.testing.assert_close(gradients.winsorized(0)(g)["w"], g["w"].mean(0))
    # c = 1: column 0 is clipped to [0, 0] (one example pushes alone); column 1 to [2, 3]
    torch.testing.assert_close(gradients.winsorized(1)(g)["w"], torch.tensor([0.0, (2 + 2 + 3 + 3) / 4]))
    with pytest.raises(ValueError, match="more than 4"):
        gradients.winsorized(2)(g)


def test_median_of_three_means():
    g = {"w": torch.tensor([[1.0], [3.0], [10.0], [20.0], [-5.0], [-7.0]])}  # the means of the thirds: 2, 15, -6
    torch.testing.assert_close(gradients.median_of_means(3)(g)["w"], torch.tensor([2.0]))
    with pytest.raises(ValueError, match="odd"):
        gradients.median_of_means(2)


def test_fit_with_the_mean_aggregate_equals_ordinary_training_and_robust_ones_train(small_mnist1d):
    def run(**options):
        gt.seed_everything(0)
        model = gt.models.MLP(40, [32], 10)
        return gt.fit(model, small_mnist1d, epochs=2, optimizer="sgd", lr=0.05, seed=0, **options)

    plain, via_aggregate = run(), run(gradient=gradients.mean)
    for key in ("train_loss", "test_loss", "train_loss_running"):
        assert via_aggregate.final[key] == pytest.approx(plain.final[key], rel=1e-4)
    robust = run(gradient=gradients.winsorized(2), penalty=gt.regularize.l2_penalty(1e-4))
    assert robust.meta["gradient"] == "winsorized(2)" and robust.final["train_loss"] < robust.records[0]["train_loss"]
    assert run(gradient=gradients.median_of_means(3)).final["train_loss"] < plain.records[0]["train_loss"]
    halved = gradients.aggregate(lambda grads: {name: g.mean(0) / 2 for name, g in grads.items()})
    assert run(gradient=halved).final["train_loss"] != plain.final["train_loss"]   # a rule of one's own is used
    with pytest.raises(TypeError, match="marked with @gt.gradients.aggregate"):
        run(gradient=lambda grads: grads)


def test_coherence_of_formed_gradients_over_several_chunks():
    torch.manual_seed(3)
    model = gt.models.CNN1d(channels=2)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(150, 40, generator=gen), torch.randint(10, (150,), generator=gen)
    measured = gradients.coherence(model, gt.data.TensorData(x, y), n_classes=10, batch_size=100)
    assert measured.alpha == pytest.approx(alpha_of(looped(model, x, y)), rel=1e-4)
