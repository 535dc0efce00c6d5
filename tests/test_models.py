import pytest
import torch

import gentools as gt


@pytest.mark.parametrize("widths, expected", [([], 40 * 10 + 10), ([8], 40 * 8 + 8 + 8 * 10 + 10), ([8, 4], 328 + 36 + 50)])
def test_mlp_shapes_and_parameter_count(widths, expected):
    model = gt.models.MLP(40, widths, 10)
    assert model(torch.randn(7, 40)).shape == (7, 10)
    assert gt.models.count_parameters(model) == expected


def test_mlp_flattens_images_and_takes_dropout():
    model = gt.models.MLP(64, [16], 10, activation="tanh", dropout=0.5)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert any(isinstance(layer, torch.nn.Dropout) for layer in model)
    with pytest.raises(ValueError, match="Unknown activation"):
        gt.models.MLP(4, [4], 2, activation="swishy")


def test_cnn1d_reference_shape():
    model = gt.models.CNN1d()
    assert model(torch.randn(5, 40)).shape == (5, 10)
    assert model(torch.randn(5, 1, 40)).shape == (5, 10)
    assert model.head.in_features == 125  # 25 channels x 5 positions, as in the MNIST-1D reference


def test_cnn1d_dropout_acts_on_the_read_out_in_training_only():
    torch.manual_seed(0)
    plain = gt.models.CNN1d()
    dropped = gt.models.CNN1d(dropout=0.5)
    dropped.load_state_dict(plain.state_dict())                        # the same weights: dropout adds none
    x = torch.randn(4, 40)
    assert torch.allclose(dropped.eval()(x), plain.eval()(x))
    kept, dropped_features = plain.features(x[:, None]), dropped.features.train()(x[:, None])
    survivors = dropped_features != 0                                 # inverted dropout: the rest doubled
    assert torch.allclose(dropped_features[survivors], 2 * kept[survivors])
    assert (kept != 0).sum() * 0.3 < (kept[~survivors] != 0).sum() < (kept != 0).sum() * 0.7
    assert not any(isinstance(module, torch.nn.Dropout) for module in plain.modules())


@pytest.mark.parametrize("channels, size", [(1, 8), (1, 28), (3, 32)])
def test_cnn2d_fits_digits_mnist_and_cifar(channels, size):
    model = gt.models.CNN2d(in_channels=channels, image_size=size)
    assert model(torch.randn(2, channels, size, size)).shape == (2, 10)


@pytest.mark.parametrize("k", [1, 4])
def test_resnet18_of_width_k(k):
    model = gt.models.ResNet18(k)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convolutions) == 17  # the stem and 16 in the blocks: ResNet-18
    assert [convolutions[i].out_channels for i in (1, 5, 9, 13)] == [k, 2 * k, 4 * k, 8 * k]


def test_resnet18_standard_width_has_about_eleven_million_parameters():
    assert 10.5e6 < gt.models.count_parameters(gt.models.ResNet18(64)) < 11.5e6


@pytest.mark.parametrize("n_conv, convolutions", [(2, 2), (4, 4), (6, 6)])
def test_conv_2_4_6(n_conv, convolutions):
    model = gt.models.ConvNet(n_conv)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model) == convolutions
    with pytest.raises(ValueError, match="Conv-2"):
        gt.models.ConvNet(3)


def test_the_registry_builds_each_network_by_name_for_the_data_shape():
    assert isinstance(gt.models.build("cnn", (40,), 10), gt.models.CNN1d)
    cnn = gt.models.build("cnn", (1, 28, 28), 10)
    assert isinstance(cnn, gt.models.CNN2d) and cnn(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert gt.models.build("conv-4", (3, 32, 32), 10)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert gt.models.build("resnet18", (3, 32, 32), 5, width=2)(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    assert [m.out_features for m in gt.models.build("mlp-32-16", (1, 8, 8), 10) if isinstance(m, torch.nn.Linear)] == [32, 16, 10]
    assert gt.models.build("torchvision-resnet18", (3, 32, 32), 7)(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError, match=r"Unknown architecture 'vgg'; choose 'mlp-' and the hidden widths \(as in 'mlp-256-256'\) or one of cnn, conv-2"):
        gt.models.build("vgg", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="resnet18 needs width"):
        gt.models.build("resnet18", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="conv-2 takes no width"):
        gt.models.build("conv-2", (3, 32, 32), 10, width=8)
    with pytest.raises(ValueError, match="mlp-8 takes no width"):
        gt.models.build("mlp-8", (40,), 10, width=8)
    for bad in ("mlp", "mlp-0", "mlp-8-x"):
        with pytest.raises(ValueError, match="Unknown architecture"):
            gt.models.build(bad, (40,), 10)


def test_the_registry_cnn_is_the_chapters_cnn():
    """Chapters 8-10 build their networks by name: the same networks, the same initial weights, as the classes they used."""
    for name, shape, direct in [("cnn", (40,), gt.models.CNN1d), ("cnn", (1, 8, 8), gt.models.CNN2d),
                                ("mlp-256-256", (40,), lambda: gt.models.MLP(40, [256, 256], 10))]:
        torch.manual_seed(0)
        by_name = gt.models.build(name, shape, 10)
        torch.manual_seed(0)
        assert all(torch.equal(a, b) for a, b in zip(by_name.state_dict().values(), direct().state_dict().values()))


def test_evaluating_restores_the_mode_even_after_an_error():
    net = gt.models.MLP(4, [8], 2, dropout=0.5)
    with gt.models.evaluating(net):
        assert not net.training and not net[3].training  # dropout off inside
    assert net.training
    net.eval()
    with pytest.raises(RuntimeError), gt.models.evaluating(net):
        raise RuntimeError("a failed measurement")
    assert not net.training  # an evaluation-mode model stays in it
    net.train()
    with pytest.raises(RuntimeError), gt.models.evaluating(net):
        raise RuntimeError("a failed measurement")
    assert net.training


def test_dropout_is_one_probability_or_one_per_hidden_layer():
    every = gt.models.MLP(40, [8, 8], 10, dropout=0.3)
    last_only = gt.models.MLP(40, [8, 8], 10, dropout=[0, 0.5], batch_norm=True)
    assert [m.p for m in every if isinstance(m, torch.nn.Dropout)] == [0.3, 0.3]
    kinds = [type(m).__name__ for m in last_only]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    assert last_only[7].p == 0.5   # after the last batch normalisation: nothing normalises what it drops
    for wrong in ([0.3], [0.3, 0.3, 0.3], 1.0, [0, -0.1]):
        with pytest.raises(ValueError, match="dropout must be"):
            gt.models.MLP(40, [8, 8], 10, dropout=wrong)


def test_maxout_unit_outputs_the_largest_of_its_own_pieces():
    layer = gt.models.Maxout(2, 2, pieces=3)
    with torch.no_grad():   # unit 0: pieces x1, x2, -x1; unit 1: pieces x1 + x2, 5, -1
        layer.linear.weight.copy_(torch.tensor([[1., 0], [0, 1], [-1, 0], [1, 1], [0, 0], [0, 0]]))
        layer.linear.bias.copy_(torch.tensor([0., 0, 0, 0, 5, -1]))
    x = torch.tensor([[2., -3], [-4, 1], [3, 4]])
    expected = torch.tensor([[2., 5], [4, 5], [4, 7]])
    torch.testing.assert_close(layer(x), expected)
    with pytest.raises(ValueError, match="at least 2 pieces"):
        gt.models.Maxout(2, 2, pieces=1)


def test_mlp_with_maxout_replaces_linear_map_and_activation():
    net = gt.models.MLP(40, [8, 8], 10, maxout=2, dropout=0.3)
    assert [type(m).__name__ for m in net] == ["Flatten", "Maxout", "Dropout", "Maxout", "Dropout", "Linear"]
    assert gt.models.count_parameters(net) == 2 * (40 * 8 + 8) + 2 * (8 * 8 + 8) + 8 * 10 + 10
    assert net(torch.randn(5, 40)).shape == (5, 10)
    for wrong in (dict(batch_norm=True), dict(dropconnect=0.2), dict(activation="tanh")):
        with pytest.raises(ValueError, match="maxout is its own activation"):
            gt.models.MLP(40, [8, 8], 10, maxout=2, **wrong)
