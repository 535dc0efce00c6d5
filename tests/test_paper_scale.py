"""The paper-scale experiments, smoke-tested: each chapter's paper-scale cell calls these run functions (the
chapters' own, with the paper's settings) on the full data sets; here they run a step or two on tiny fakes of those
data sets, in their real on-disk format."""
import math

import pytest
import torch

import gentools as gt


def test_chapter5_randomization_on_cifar10(fake_cifar10):
    cifar = gt.data.load("cifar10")
    conditions = gt.data.randomization_conditions(cifar.replace(train=cifar.train.subset(slice(0, 40))), fraction=0.5, seed=1)
    rows = gt.ensemble.fit_each(conditions, [16], epochs=2, lr=1e-3, batch_size=20)
    assert [row["data"] for row in rows] == list(conditions) == [
        "true labels", "corrupted labels (p = 0.5)", "random labels", "shuffled pixels", "random pixels", "Gaussian inputs"]
    assert all(0 <= row["train_acc"] <= 1 and 0 <= row["test_acc"] <= 1 for row in rows)
    assert len(rows[0]["history"]["train_acc_running"]) == 3
    assert math.isnan(rows[0]["history"].reaches("train_acc_running", 1.01))  # never reached


def test_chapter6_resnet_widths_on_cifar10(fake_cifar10, tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    cifar = {"15% noise": gt.data.corrupt_labels(gt.data.load("cifar10"), 0.15, seed=0)}
    rows = gt.sweep(gt.ensemble.fit_widths, grid=dict(width=[1, 2]), name="resnets", fixed=dict(
        data=cifar, architecture="resnet18", epochs=1, lr=1e-4, batch_size=25, measure_every=None))
    assert list(rows["width"]) == [1, 2] and rows["parameters"].is_monotonic_increasing
    assert all(0 <= value <= 1 for value in [*rows["train_error"], *rows["test_error"]])
    assert rows["parameters"][0] == gt.models.count_parameters(gt.models.ResNet18(1))
    gt.seed_everything(0)  # a point trains alone, seeded as a MLP member is: the same network as trained by hand
    alone = gt.models.ResNet18(1)
    gt.fit(alone, cifar["15% noise"], epochs=1, lr=1e-4, batch_size=25, seed=0, measure_every=None)
    assert rows["test_loss"][0] == pytest.approx(gt.evaluate(alone, cifar["15% noise"].test, n_classes=10)["loss"], rel=1e-5)


def test_chapter7_lottery_on_mnist_and_cifar10(fake_mnist, fake_cifar10, tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    settings = dict(rounds=2, control_rounds=[2], epochs=2, batch_size=60)
    lenet = gt.sweep(gt.prune.lottery, grid=dict(seed=[0]), name="lenet", fixed=dict(
        data=gt.data.load("mnist").hold_out(0.2, seed=0), widths=[300, 100], **settings))
    conv = gt.sweep(gt.prune.lottery, grid=dict(seed=[0]), name="conv", fixed=dict(
        data=gt.data.load("cifar10").hold_out(0.2, seed=0), architecture="conv-2", conv_fraction=0.1, **settings))
    for rows in (lenet, conv):
        tickets = rows[rows.variant == "winning ticket"]
        assert list(tickets["round"]) == [0, 1, 2]
        assert tickets["remaining"].iloc[0] == 1.0 and tickets["remaining"].iloc[2] < tickets["remaining"].iloc[1] < 1.0
        assert sorted(rows[rows["round"] == 2]["variant"]) == ["random mask", "re-initialised", "winning ticket"]
        assert all(rows["best_epoch"] >= 1) and all(0 <= rows["test_acc"]) and all(rows["test_acc"] <= 1)
    with pytest.raises(ValueError, match="Unknown architecture"):
        gt.sweep(gt.prune.lottery, grid=dict(seed=[0]), name="conv8", fixed=dict(
            data=gt.data.load("cifar10").hold_out(0.2, seed=0), architecture="conv-8", **settings))


def test_chapter8_coherence_and_noisy_labels_on_cifar10(fake_cifar10):
    """The parts of chapter 8's coherence_run and noisy_run on CIFAR-10 with the registry's Conv-2."""
    cifar = gt.data.load("cifar10")
    noisy = gt.data.corrupt_labels(cifar, 0.5, seed=0)
    kept, changed = gt.data.kept_and_changed(noisy, cifar)
    assert len(kept) + len(changed) == len(cifar.train) and len(changed) > 0
    net = gt.models.build("conv-2", cifar.input_shape, cifar.n_classes)
    alpha = gt.gradients.coherence(net, cifar.train.subset(slice(0, 20)), n_classes=10).alpha
    assert 0 < alpha <= 1
    history = gt.fit(net, noisy, epochs=2, optimizer="sgd", lr=0.01, seed=0,
                     callbacks=[gt.train.accuracy_on(10, clean_fit=kept, noisy_fit=changed)])
    assert {"clean_fit", "noisy_fit", "test_acc"} <= set(history.final) and history.final["epoch"] == 2
    assert history.final["noisy_fit"] == pytest.approx(gt.evaluate(net, changed, n_classes=10)["acc"])


def test_chapter9_attacks_on_mnist(fake_mnist):
    """The parts of chapter 9's attack_run (defined in the chapter) on MNIST: the registry's CNN for 28x28 images,
    trained, attacked by PGD and the one-pixel search, and shifted."""
    mnist = gt.data.load("mnist")
    net = gt.models.build("cnn", mnist.input_shape, 10)
    gt.fit(net, mnist, epochs=1, lr=1e-3, measure_every=None)
    clean = gt.evaluate(net, mnist.test, n_classes=10)["acc"]
    pgd = gt.attacks.robust_accuracy(net, mnist.test, 0.1, attack="pgd", bounds=(0.0, 1.0))
    assert pgd <= clean + 1e-9 and 0 <= gt.attacks.shift_flip_rate(net, mnist.test.x, 1) <= 1
    assert gt.attacks.one_pixel(net, mnist.test.x[0], int(mnist.test.y[0]), (0.0, 1.0), seed=0).success in (True, False)


@pytest.mark.parametrize("way", gt.transfer.WAYS)
def test_chapter10_transfer_on_cifar10(fake_cifar10, tmp_path, way):
    """The parts of chapter 10's transfer_run on CIFAR-10, from torchvision's ResNet-18 with weights read from a file."""
    import torchvision

    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)  # a random stand-in for the ImageNet weights
    pretrained = gt.transfer.pretrained("torchvision-resnet18", weights, seed=0)
    few = gt.data.select_classes(gt.data.load("cifar10"), per_class=2, seed=0)
    history = gt.transfer.train(way, pretrained, "torchvision-resnet18", few, seed=0, epochs=1, lr=1e-3, measure_every=None)
    assert 0 <= history.final["test_acc"] <= 1 and len(few.train) == 20
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        gt.transfer.pretrained("torchvision-resnet18", tmp_path / "absent.pth", seed=0)


def test_chapter11_pac_bayes_on_binary_mnist(fake_mnist):
    """The parts of chapter 11's pac_bayes_run at the paper scale: Dziugaite & Roy's binary MNIST (0-4 against 5-9)
    from the data folder, an MLP 784-600-2 trained by SGD, its posterior optimised a few steps, and the bound."""
    binary = gt.data.group_classes(gt.data.load("mnist"), [range(5), range(5, 10)])
    assert binary.n_classes == 2 and set(binary.train.y.tolist()) == {0, 1}
    net, initial = gt.models.MLP(784, [600], 2), gt.models.MLP(784, [600], 2)
    initial.load_state_dict(net.state_dict())
    history = gt.fit(net, binary, epochs=1, optimizer="sgd", lr=0.01, momentum=0.9, seed=0, measure_every=None)
    posterior = gt.measures.fit_posterior(net, initial, binary.train.x, binary.train.y, steps=2, batch_size=20, seed=0)
    bound = posterior.bound(binary.train.x, binary.train.y, samples=3, seed=0)
    assert 0 <= 1 - history.final["test_acc"] <= 1 and bound["kl"] > 0
    assert bound["train_error_estimate"] <= bound["train_error_bound"] <= bound["bound"] <= 1


def test_chapter12_corruptions_on_cifar10(fake_cifar10):
    """The parts of chapter 12's paper-scale cell: CIFAR-10 from the data folder, a Conv-2 trained on part of it, and
    its scores on the test set and on every corruption computed in code."""
    cifar = gt.data.load("cifar10")
    cifar = cifar.replace(train=cifar.train.subset(slice(0, 30)))
    net = gt.models.build("conv-2", cifar.input_shape, 10)
    gt.fit(net, cifar, epochs=1, lr=1e-3, seed=0, measure_every=None)
    scores = gt.shift.report(net, {"original": cifar.test, **gt.shift.corrupted(cifar.test, severities=(1, 5))})
    assert len(scores) == 2 * (1 + 2 * len(gt.shift.CORRUPTIONS)) and all(0 <= value <= 1 for value in scores.values())
