"""The paper-scale experiments, smoke-tested: each chapter's paper-scale cell calls these functions on the full
data sets; here they run a step or two on tiny fakes of those data sets, in their real on-disk format."""
import math

import pytest
import torch

import gentools as gt


def test_chapter4_randomization_on_cifar10(fake_cifar10):
    cifar = gt.data.load("cifar10")
    conditions = gt.data.randomization_conditions(cifar.replace(train=cifar.train.subset(slice(0, 40))), fraction=0.5, seed=1)
    rows = gt.ensemble.fit_each(conditions, [16], epochs=2, lr=1e-3, batch_size=20)
    assert [row["data"] for row in rows] == list(conditions) == [
        "true labels", "corrupted labels (p = 0.5)", "random labels", "shuffled pixels", "random pixels", "Gaussian inputs"]
    assert all(0 <= row["train_acc"] <= 1 and 0 <= row["test_acc"] <= 1 for row in rows)
    assert len(rows[0]["history"]["train_acc_running"]) == 3
    assert math.isnan(rows[0]["history"].reaches("train_acc_running", 1.01))  # never reached


def test_chapter5_deep_double_descent_on_cifar10(fake_cifar10):
    cifar = gt.data.corrupt_labels(gt.data.load("cifar10"), 0.15, seed=0)
    row = gt.paper.deep_double_descent(2, cifar, epochs=1, batch_size=25)
    assert set(row) == {"train_error", "test_error"} and all(0 <= value <= 1 for value in row.values())


@pytest.mark.parametrize("architecture", ["lenet-300-100", "conv-2"])
def test_chapter6_lottery_on_mnist_and_cifar10(fake_mnist, fake_cifar10, architecture):
    data = gt.data.load("mnist" if architecture.startswith("lenet") else "cifar10").hold_out(0.2, seed=0)
    rows = gt.paper.lottery(architecture, data, seed=0, rounds=2, iterations=2)  # 2 epochs of 60
    assert [row["round"] for row in rows] == [0, 1, 2]
    assert rows[0]["remaining"] == 1.0 and rows[2]["remaining"] < rows[1]["remaining"] < 1.0
    assert all(row["best_epoch"] >= 0 and 0 <= row["test_acc"] <= 1 for row in rows)
    with pytest.raises(ValueError, match="Unknown architecture"):
        gt.paper.lottery("conv-8", data, seed=0, rounds=1)


def test_chapter7_noisy_labels_on_cifar10(fake_cifar10):
    cifar = gt.data.load("cifar10")
    history = gt.paper.noisy_label_fit(gt.data.corrupt_labels(cifar, 0.5, seed=0), cifar, seed=0, epochs=2)["history"]
    assert {"clean_fit", "noisy_fit", "test_acc"} <= set(history.final) and history.final["epoch"] == 2
    alpha = gt.gradients.coherence(gt.models.ConvNet(2), cifar.train.subset(slice(0, 20)), n_classes=10).alpha
    assert alpha > 0


def test_chapter8_robustness_on_mnist(fake_mnist):
    row = gt.paper.robustness(gt.data.load("mnist"), seed=0, epochs=1, epsilons=[0.1])
    assert set(row) == {"clean", "shift flip rate", "fgsm 0.1", "pgd 0.1"}
    assert row["pgd 0.1"] <= row["clean"] + 1e-9 and 0 <= row["shift flip rate"] <= 1


@pytest.mark.parametrize("way", ["from scratch", "linear probe", "fine-tuning"])
def test_chapter9_transfer_on_cifar10(fake_cifar10, tmp_path, way):
    import torchvision

    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)  # a random stand-in for the ImageNet weights
    row = gt.paper.transfer(way, gt.data.load("cifar10"), per_class=2, seed=0, weights=weights, epochs=1)
    assert 0 <= row["test_acc"] <= 1
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        gt.paper.transfer("fine-tuning", gt.data.load("cifar10"), per_class=2, seed=0, weights=tmp_path / "absent.pth")
