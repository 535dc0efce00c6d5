import copy

import pytest
import torch

import gentools as gt


@pytest.fixture
def tasks(small_mnist1d):
    return gt.data.select_classes(small_mnist1d, range(5)), gt.data.select_classes(small_mnist1d, range(5, 10))


def _by_hand(way, source, few, seed):
    """The transfer recipe written out with plain torch and gt.fit: pre-train at the seed, then a fresh or copied
    network with a new last layer drawn at seed 1000 + seed, the body frozen for a probe, Adam on what trains."""
    gt.seed_everything(seed)
    pretrained = gt.models.MLP(40, [16, 16], 5)
    gt.fit(pretrained, source, epochs=2, optimizer="adam", lr=1e-3, seed=seed, measure_every=None)
    gt.seed_everything(1000 + seed)
    net = gt.models.MLP(40, [16, 16], 5) if way in ("from scratch", "random-feature probe") else copy.deepcopy(pretrained)
    net[-1] = torch.nn.Linear(16, 5)
    if way.endswith("probe"):
        for layer in list(net)[:-1]:
            layer.requires_grad_(False)
    history = gt.fit(net, few, epochs=3, lr=1e-3, seed=seed, measure_every=None,
                     optimizer=lambda params: torch.optim.Adam([p for p in params if p.requires_grad], lr=1e-3))
    return pretrained, net, history


@pytest.mark.parametrize("way", gt.transfer.WAYS)
def test_each_way_is_the_recipe_written_out(tasks, way):
    source, target = tasks
    few = gt.data.select_classes(target, per_class=4, seed=2)
    pretrained = gt.transfer.pretrained("mlp-16-16", source, 2, epochs=2, optimizer="adam", lr=1e-3, measure_every=None)
    untouched = copy.deepcopy(pretrained.state_dict())
    history = gt.transfer.train(way, pretrained, "mlp-16-16", few, 2, epochs=3, lr=1e-3, measure_every=None)
    reference_pretrained, net, reference = _by_hand(way, source, few, 2)
    assert all(torch.equal(a, b) for a, b in zip(pretrained.state_dict().values(), reference_pretrained.state_dict().values()))
    assert history.final["test_loss"] == reference.final["test_loss"]
    assert all(torch.equal(a, b) for a, b in zip(pretrained.state_dict().values(), untouched.values()))  # a copy trains


def test_a_probe_trains_only_its_new_head(tasks):
    source, target = tasks
    pretrained = gt.transfer.pretrained("mlp-16-16", source, 0, epochs=1)
    net = gt.transfer.adapt("linear probe", pretrained, "mlp-16-16", target, seed=0)
    assert [name for name, p in net.named_parameters() if p.requires_grad] == ["5.weight", "5.bias"]
    assert torch.equal(net[1].weight, pretrained[1].weight) and net[-1].out_features == 5
    tuned = gt.transfer.adapt("fine-tuning", pretrained, "mlp-16-16", target, seed=0)
    assert all(p.requires_grad for p in tuned.parameters())
    with pytest.raises(ValueError, match="way must be one of"):
        gt.transfer.adapt("linear-probe", pretrained, "mlp-16-16", target, seed=0)


def test_a_torchvision_network_gets_a_new_classifier(tmp_path):
    import torchvision

    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    pretrained = gt.transfer.pretrained("torchvision-resnet18", weights, seed=0)
    cifar_like = gt.data.DataSet("images", gt.data.TensorData(torch.zeros(4, 3, 32, 32), torch.arange(4)),
                                 gt.data.TensorData(torch.zeros(4, 3, 32, 32), torch.arange(4)), n_classes=4)
    net = gt.transfer.adapt("linear probe", pretrained, "torchvision-resnet18", cifar_like, seed=0)
    assert net.fc.out_features == 4 and [n for n, p in net.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    assert torch.equal(net.conv1.weight, pretrained.conv1.weight)
