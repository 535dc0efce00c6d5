"""gt.attacks: budgets and ranges kept, PGD's first step is FGSM, FGSM's loss on a linear model in closed form, the
one-coordinate search against an exhaustive one, and shifts."""
import pytest
import torch
from torch import nn

import gentools as gt
from gentools import attacks


@pytest.fixture
def trained(small_mnist1d):
    gt.seed_everything(0)
    model = gt.models.MLP(40, [32], 10)
    gt.fit(model, small_mnist1d, epochs=3, seed=0)
    return model, small_mnist1d


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_attacks_stay_in_the_budget_and_the_valid_range(trained, attack):
    model, data = trained
    x, y = data.test.x[:50], data.test.y[:50]
    low, high = float(x.min()), float(x.max())
    adversarial = getattr(attacks, attack)(model, x, y, 0.3, bounds=(low, high))
    assert (adversarial - x).abs().max() <= 0.3 + 1e-6
    assert adversarial.min() >= low and adversarial.max() <= high
    assert model.training  # the attack restored the model's mode


def test_one_step_of_pgd_is_fgsm(trained):
    model, data = trained
    x, y = data.test.x[:50], data.test.y[:50]
    torch.testing.assert_close(attacks.pgd(model, x, y, 0.1, steps=1, step_size=0.1), attacks.fgsm(model, x, y, 0.1))


def test_fgsm_on_a_linear_model_increases_the_loss_as_the_closed_form_says():
    torch.manual_seed(0)
    model = nn.Linear(6, 1)
    x, y = torch.randn(20, 6), torch.randn(20, 1)
    eps = 0.05
    residual = (model(x) - y).detach()
    adversarial = attacks.fgsm(model, x, y, eps, loss="mse", n_classes=None)
    # each input moves by eps against sign(w) * sign(residual): the residual grows by eps * |w|_1 in magnitude
    expected = (residual.abs() + eps * model.weight.detach().abs().sum()).pow(2)
    torch.testing.assert_close((model(adversarial) - y).detach().pow(2), expected)


def test_robust_accuracy_without_a_budget_is_the_accuracy_and_pgd_is_at_least_as_strong(trained):
    model, data = trained
    clean = gt.evaluate(model, data.test, n_classes=10)["acc"]
    assert attacks.robust_accuracy(model, data.test, 0.0) == pytest.approx(clean)
    fgsm_acc = attacks.robust_accuracy(model, data.test, 0.2, attack="fgsm")
    pgd_acc = attacks.robust_accuracy(model, data.test, 0.2, attack="pgd", steps=10)
    assert pgd_acc <= fgsm_acc < clean
    with pytest.raises(ValueError, match="fgsm"):
        attacks.robust_accuracy(model, data.test, 0.1, attack="magic")


def best_margin(model, x, y, bounds):
    """The reference: every coordinate set to each end of the range (a linear model's best change is at an end);
    the lowest lead of the true class over the best other, in log-probability (< 0: a flip exists)."""
    flat = x.reshape(-1)
    candidates = flat.repeat(2 * flat.numel(), 1)
    for i in range(flat.numel()):
        candidates[2 * i, i], candidates[2 * i + 1, i] = bounds
    with torch.no_grad():
        logp = model(candidates.reshape(-1, *x.shape)).log_softmax(1)
    others = torch.cat([logp[:, :y], logp[:, y + 1:]], 1).amax(1)
    return float((logp[:, y] - others).min())


def test_the_one_coordinate_search_changes_one_coordinate_and_finds_the_flips_an_exhaustive_search_finds():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    bounds = (0.0, 1.0)
    found = 0
    for i in range(12):
        x = torch.rand(1, 4, 4)
        y = int(model(x[None]).argmax())
        result = attacks.one_pixel(model, x, y, bounds, seed=i)
        margin = best_margin(model, x, y, bounds)
        assert not result.success or margin < 0  # never a flip that does not exist
        assert result.success or margin > -0.05  # a heuristic search may miss only a flip that barely exists
        found += result.success
        assert 0 <= result.index < 16 and bounds[0] <= result.value <= bounds[1]
        changed = x.reshape(-1).clone()
        changed[result.index] = result.value
        with torch.no_grad():
            probability = model(changed.reshape(1, 4, 4)).softmax(1)[0, y].item()
        assert probability == pytest.approx(result.true_probability, abs=1e-5)
    assert 0 < found < 12  # the test covers both outcomes


def test_shifts():
    x = torch.arange(10.0).view(2, 5)
    assert attacks.shift(x, 1).tolist() == [[4, 0, 1, 2, 3], [9, 5, 6, 7, 8]]
    assert attacks.shift(x, 1, mode="zeros").tolist() == [[0, 0, 1, 2, 3], [0, 5, 6, 7, 8]]
    assert attacks.shift(x, -2, mode="zeros").tolist() == [[2, 3, 4, 0, 0], [7, 8, 9, 0, 0]]
    with pytest.raises(ValueError, match="circular"):
        attacks.shift(x, 1, mode="reflect")


class Pooled(nn.Module):
    """Global average pooling over positions: invariant to circular shifts by construction."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv1d(1, 8, 3, padding=1, padding_mode="circular"), nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.conv(x[:, None]).relu().mean(-1))


def test_shift_flip_rate(small_mnist1d):
    torch.manual_seed(0)
    x = small_mnist1d.test.x
    assert attacks.shift_flip_rate(Pooled(), x) == 0.0
    assert attacks.shift_flip_rate(gt.models.MLP(40, [64], 10), x) > 0.05


def test_random_shifts_shift_every_example_by_its_own_amount():
    x = torch.randn(64, 40)
    shifted = attacks.random_shifts(3, seed=0)(x)
    amounts = set()
    for row, original in zip(shifted, x):
        matches = [s for s in range(-3, 4) if torch.equal(row, torch.roll(original, s))]
        assert len(matches) == 1
        amounts.add(matches[0])
    assert len(amounts) > 3
    assert torch.equal(attacks.random_shifts(0)(x), x)


def test_the_antialiased_cnn_keeps_the_shapes_and_blurs_before_subsampling():
    x = torch.randn(4, 40)
    assert gt.models.CNN1d(antialias=True)(x).shape == (4, 10)
    blur = gt.models.BlurPool1d(2)
    constant = torch.ones(1, 2, 10)
    assert torch.allclose(blur(constant)[..., 1:], torch.ones(1, 2, 4))  # away from the zero-padded edge
    alternating = torch.tensor([[[1.0, -1.0] * 5]])
    assert blur(alternating)[..., 1:].abs().max() == 0  # the highest frequency is removed, not aliased


def test_adversarial_training_runs_and_is_recorded(small_mnist1d):
    gt.seed_everything(0)
    model = gt.models.MLP(40, [32], 10)
    history = gt.fit(model, small_mnist1d, epochs=2, adversary=lambda net, x, y: attacks.fgsm(net, x, y, 0.1))
    assert history.meta["adversary"] and history.final["train_loss"] < history.records[0]["train_loss"]


def test_restarts_only_make_pgd_stronger_and_are_refused_for_fgsm(trained):
    model, data = trained
    single = attacks.robust_accuracy(model, data.test, 0.2, steps=10)
    restarted = attacks.robust_accuracy(model, data.test, 0.2, steps=10, restarts=3)
    one_random = attacks.robust_accuracy(model, data.test, 0.2, steps=10, random_start=True)
    assert restarted <= one_random  # every restart is another chance to break an example
    assert restarted < gt.evaluate(model, data.test, n_classes=10)["acc"] and 0 <= restarted <= single + 0.05
    with pytest.raises(ValueError, match="restarts"):
        attacks.robust_accuracy(model, data.test, 0.2, attack="fgsm", restarts=2)


def test_a_budget_on_the_change_keeps_the_one_coordinate_search_within_it():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    bounds, budget = (0.0, 1.0), 0.1
    free, limited = 0, 0
    for i in range(12):
        x = torch.rand(1, 4, 4)
        y = int(model(x[None]).argmax())
        result = attacks.one_pixel(model, x, y, bounds, max_change=budget, seed=i)
        old = float(x.reshape(-1)[result.index])
        assert abs(result.value - old) <= budget + 1e-6 and bounds[0] <= result.value <= bounds[1]
        changed = x.reshape(-1).clone()
        changed[result.index] = result.value
        with torch.no_grad():
            assert model(changed.reshape(1, 4, 4)).softmax(1)[0, y].item() == pytest.approx(result.true_probability, abs=1e-5)
        limited += result.success
        free += attacks.one_pixel(model, x, y, bounds, seed=i).success
    assert limited < free  # a smaller budget flips fewer predictions
    with pytest.raises(ValueError, match="max_change"):
        attacks.one_pixel(model, x, y, bounds, max_change=0.0)


def test_the_pooled_head_treats_every_position_alike():
    gt.seed_everything(0)
    model = gt.models.CNN1d(head="pool").eval()
    assert isinstance(model.features[-2], nn.AdaptiveAvgPool1d) and model.head.in_features == 25
    x = torch.randn(3, 40)
    assert model(x).shape == (3, 10)
    with pytest.raises(ValueError, match="head"):
        gt.models.CNN1d(head="max")
