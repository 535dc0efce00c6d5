import pickle

import numpy as np
import pytest
import torch

import gentools as gt
from gentools.data import DataNotFoundError, TensorData


def test_mnist1d_reference_matches_the_package_split():
    import mnist1d.data

    ours = gt.data.load("mnist1d")
    theirs = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())  # 4000/1000, seed 42
    assert (len(ours.train), len(ours.test), ours.n_classes, ours.input_shape) == (4000, 1000, 10, (40,))
    np.testing.assert_allclose(ours.train.x.numpy(), theirs["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ours.test.y.numpy(), theirs["y_test"])


def test_mnist1d_any_size_and_fresh_draws():
    a = gt.data.load("mnist1d", n_train=123, n_test=45, seed=1)
    b = gt.data.load("mnist1d", n_train=123, n_test=45, seed=2)
    assert len(a.train) == 123 and len(a.test) == 45
    assert not torch.equal(a.train.x, b.train.x)


def test_mnist1d_leaves_global_random_state_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))  # force generation
    np.random.seed(0)
    expected = np.random.rand()
    np.random.seed(0)
    gt.data.load("mnist1d", n_train=20, n_test=10, seed=5)
    assert np.random.rand() == expected


def test_mnist1d_regenerates_a_corrupt_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    first = gt.data.load("mnist1d", n_train=20, n_test=10, seed=5)
    (cached,) = (tmp_path / "data").glob("mnist1d-*.pt")
    cached.write_bytes(cached.read_bytes()[:50])  # torn
    with pytest.warns(UserWarning, match="unreadable"):
        again = gt.data.load("mnist1d", n_train=20, n_test=10, seed=5)
    assert torch.equal(first.train.x, again.train.x)


def test_mnist1d_settings_at_their_defaults_give_the_reference_draw(tmp_path, monkeypatch):
    """A zero shift reproduces the distribution: the defaults passed explicitly are the plain draw, and the
    shifted path itself (the package's per-example transform, standardised by the reference draw) gives the
    package's make_dataset output when no setting differs."""
    import mnist1d.data

    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    plain = gt.data.load("mnist1d", n_train=150, n_test=50, seed=3)
    explicit = gt.data.load("mnist1d", n_train=150, n_test=50, seed=3, **gt.data.mnist1d_defaults())
    assert torch.equal(plain.train.x, explicit.train.x) and explicit.name == "mnist1d"
    through_shift = gt.data._generate_mnist1d(200, 3, False, {"shear_scale": 0.75})
    args = mnist1d.data.get_dataset_args()
    args.num_samples, args.train_split, args.seed = 200, 1.0, 3
    package = mnist1d.data.make_dataset(args)
    np.testing.assert_allclose(through_shift["x"].numpy(), package["x"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(through_shift["y"].numpy(), package["y"])


def test_mnist1d_known_shifts_move_the_statistics_they_should(tmp_path, monkeypatch):
    """More i.i.d. noise roughens the signals; a wider amplitude range spreads the examples' scales; less padding
    widens the digits (fewer sign changes of the centred signal and a smoother signal); the labels and their order stay the same."""
    monkeypatch.setenv("GENTOOLS_CACHE", str(tmp_path))
    size = dict(n_train=500, n_test=0, seed=4)
    base = gt.data.load("mnist1d", **size).train
    noisy = gt.data.load("mnist1d", iid_noise_scale=0.3, **size).train
    scaled = gt.data.load("mnist1d", scale_coeff=1.6, **size).train
    wide = gt.data.load("mnist1d", padding=(0, 60), **size).train
    roughness = lambda x: x.diff(dim=1).pow(2).mean().item()  # noqa: E731
    crossings = lambda x: ((x - x.mean(1, keepdim=True)).sign().diff(dim=1) != 0).float().sum(1).mean().item()  # noqa: E731
    assert roughness(noisy.x) > 3 * roughness(base.x)
    spread = lambda x: (x.abs().amax(1).std() / x.abs().amax(1).mean()).item()  # noqa: E731  (peaks' relative spread)
    assert spread(scaled.x) > 1.4 * spread(base.x)
    assert crossings(wide.x) < crossings(base.x) and roughness(wide.x) < roughness(base.x)
    assert all(torch.equal(shifted.y, base.y) for shifted in (noisy, scaled, wide))
    assert abs(base.x.mean().item()) < 0.1 and abs(base.x.std().item() - 1) < 0.1  # standardised as the package does
    with pytest.raises(ValueError, match="Unknown MNIST-1D settings"):
        gt.data.load("mnist1d", noise=0.1)
    with pytest.raises(ValueError, match="upper end"):
        gt.data.load("mnist1d", padding=(6, 12))
    with pytest.raises(ValueError, match="shuffle_seq"):
        gt.data.load("mnist1d", shuffle_seq=True, shear_scale=2.0)


def test_digits_and_regression_shapes():
    digits = gt.data.load("digits")
    assert digits.input_shape == (1, 8, 8) and digits.n_classes == 10
    assert len(digits.train) + len(digits.test) == 1797 and float(digits.train.x.max()) <= 1.0
    reg = gt.data.load("regression", n_train=30, n_test=50, noise=0.1)
    assert reg.n_classes is None and reg.train.x.shape == (30, 1) and reg.test.y.shape == (50, 1)


def test_unknown_data_set_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown data set 'imagenet'\. Known: mnist1d, digits"):
        gt.data.load("imagenet")


def test_batches_cover_every_example_once_in_a_seeded_order():
    data = TensorData(torch.arange(10.0)[:, None], torch.arange(10))
    batches = list(data.batches(3, gt.device.generator(0)))
    assert [len(y) for _, y in batches] == [3, 3, 3, 1]
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    again = torch.cat([y for _, y in data.batches(3, gt.device.generator(0))])
    assert torch.equal(seen, again)
    for x, y in batches:
        assert torch.equal(x[:, 0].long(), y)  # inputs stay paired with their targets


def test_hold_out_and_k_folds_partition_the_training_set(small_mnist1d):
    held = small_mnist1d.hold_out(0.25, seed=0)
    assert (len(held.train), len(held.valid), len(held.test)) == (300, 100, 200)
    folds = small_mnist1d.k_folds(3, seed=0)
    valid = torch.cat([f.valid.x for f in folds])
    assert valid.shape == small_mnist1d.train.x.shape
    assert torch.equal(valid.sort(0).values, small_mnist1d.train.x.sort(0).values)
    for fold in folds:
        assert len(fold.train) + len(fold.valid) == 400 and fold.test is small_mnist1d.test
    with pytest.raises(ValueError):
        small_mnist1d.k_folds(1)


def test_corrupt_labels_changes_about_the_expected_share(small_mnist1d):
    noisy = gt.data.corrupt_labels(small_mnist1d, 0.5, seed=0)
    changed = (noisy.train.y != small_mnist1d.train.y).float().mean().item()
    assert abs(changed - 0.5 * 0.9) < 0.08
    assert torch.equal(noisy.test.y, small_mnist1d.test.y)
    assert torch.equal(gt.data.corrupt_labels(small_mnist1d, 0.0).train.y, small_mnist1d.train.y)
    rand = gt.data.random_labels(small_mnist1d, seed=1)
    assert abs((rand.train.y == small_mnist1d.train.y).float().mean().item() - 0.1) < 0.05
    with pytest.raises(ValueError):
        gt.data.corrupt_labels(gt.data.load("regression"), 0.5)


def test_kept_and_changed_split_the_training_set_by_label(small_mnist1d):
    noisy = gt.data.corrupt_labels(small_mnist1d, 0.3, seed=1)
    kept, changed = gt.data.kept_and_changed(noisy, small_mnist1d)
    assert len(kept) + len(changed) == 400 and 60 < len(changed) < 150
    assert bool((kept.y == small_mnist1d.train.y[noisy.train.y == small_mnist1d.train.y]).all())
    by_input = {tuple(x.tolist()): int(y) for x, y in zip(small_mnist1d.train.x, small_mnist1d.train.y)}
    assert all(by_input[tuple(x.tolist())] != int(y) for x, y in zip(changed.x, changed.y))
    with pytest.raises(ValueError, match="same training inputs"):
        gt.data.kept_and_changed(noisy, gt.data.load("mnist1d", n_train=400, n_test=200, seed=1))


def test_select_classes_relabels_and_draws_per_class(small_mnist1d):
    """Classes 5-9 relabelled 0-4, every test example of them kept, `per_class` training examples of each drawn by
    the seed; compared with a selection written out by hand."""
    target = gt.data.select_classes(small_mnist1d, range(5, 10))
    assert target.n_classes == 5 and set(target.train.y.tolist()) == set(range(5))
    wanted = (small_mnist1d.test.y >= 5).nonzero().flatten()
    assert torch.equal(target.test.x, small_mnist1d.test.x[wanted]) and torch.equal(target.test.y, small_mnist1d.test.y[wanted] - 5)
    few = gt.data.select_classes(target, per_class=3, seed=4)
    assert torch.bincount(few.train.y).tolist() == [3] * 5 and torch.equal(few.test.x, target.test.x)
    gen = gt.device.generator(4)
    by_hand = torch.cat([(target.train.y == c).nonzero().flatten()[torch.randperm(int((target.train.y == c).sum()), generator=gen)[:3]]
                         for c in range(5)])
    assert torch.equal(few.train.x, target.train.x[by_hand])
    assert not torch.equal(gt.data.select_classes(target, per_class=3, seed=5).train.x, few.train.x)
    for bad in ([], [3, 3], [10]):
        with pytest.raises(ValueError, match="distinct labels"):
            gt.data.select_classes(small_mnist1d, bad)
    with pytest.raises(ValueError, match="per_class"):
        gt.data.select_classes(small_mnist1d, per_class=0)


def test_group_classes_merges_labels_and_keeps_inputs(small_mnist1d):
    """Digits 0-4 against 5-9, as Dziugaite & Roy's binary MNIST: inputs untouched, labels compared with y >= 5."""
    binary = gt.data.group_classes(small_mnist1d, [range(5), range(5, 10)])
    assert binary.n_classes == 2
    for key, split in small_mnist1d.splits.items():
        assert torch.equal(binary.splits[key].x, split.x) and torch.equal(binary.splits[key].y, (split.y >= 5).long())
    odd_even = gt.data.group_classes(small_mnist1d, [[1, 3, 5, 7, 9], [0, 2, 4, 6, 8]])
    assert torch.equal(odd_even.test.y, 1 - small_mnist1d.test.y % 2)
    for bad in ([range(5), range(4, 10)], [range(5)], [[], range(10)]):
        with pytest.raises(ValueError, match="exactly one"):
            gt.data.group_classes(small_mnist1d, bad)


def test_shuffle_pixels_uses_one_permutation_everywhere(small_mnist1d):
    shuffled = gt.data.shuffle_pixels(small_mnist1d, seed=0)
    x, z = small_mnist1d.train.x, shuffled.train.x
    perm = torch.argsort(x[0])[torch.argsort(torch.argsort(z[0]))]  # the permutation that maps example 0
    assert not torch.equal(perm, torch.arange(40))
    assert torch.equal(z, x[:, perm])  # ...maps every training example
    assert torch.equal(shuffled.test.x, small_mnist1d.test.x[:, perm])  # ...and every test example


def test_random_pixels_permutes_each_example_differently(small_mnist1d):
    mixed = gt.data.random_pixels(small_mnist1d, seed=0)
    before, after = small_mnist1d.train.x, mixed.train.x
    assert torch.equal(before.sort(1).values, after.sort(1).values)  # same values in each example
    assert not torch.equal(before, after)
    assert torch.equal(mixed.train.y, small_mnist1d.train.y)


def test_gaussian_inputs_match_mean_and_spread(small_mnist1d):
    noise = gt.data.gaussian_inputs(small_mnist1d, seed=0)
    x, z = small_mnist1d.train.x, noise.train.x
    assert z.shape == x.shape
    assert torch.allclose(z.mean(0), x.mean(0), atol=0.25) and torch.allclose(z.std(0), x.std(0), rtol=0.2)
    assert abs(float(torch.corrcoef(torch.stack([x.flatten(), z.flatten()]))[0, 1])) < 0.1


# --- torchvision data sets from tiny files in the real on-disk formats ---------------------------------------

@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_style_data_from_idx_files(tmp_path, name, folder, write_idx):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    images = {split: rng.integers(0, 256, (n, 28, 28)) for split, n in (("train", 6), ("t10k", 4))}
    for split, array in images.items():
        write_idx(raw / f"{split}-images-idx3-ubyte", array)
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(len(array)) % 10)
    data = gt.data.load(name, root=tmp_path)
    assert data.train.x.shape == (6, 1, 28, 28) and data.test.x.shape == (4, 1, 28, 28)
    assert torch.allclose(data.train.x[2, 0], torch.as_tensor(images["train"][2] / 255.0, dtype=torch.float32))
    assert data.train.y.tolist() == [0, 1, 2, 3, 4, 5] and data.n_classes == 10


def test_cifar10_from_python_batches(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    # torchvision checks each file's MD5 against the official release; ours are tiny fakes, so check only presence.
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: __import__("os").path.isfile(path))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {name: rng.integers(0, 256, (3, 3072), dtype=np.uint8)
               for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]}
    for name, array in batches.items():
        with open(folder / name, "wb") as f:
            pickle.dump({"data": array, "labels": [1, 2, 3]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    data = gt.data.load("cifar10", root=tmp_path)
    assert data.train.x.shape == (15, 3, 32, 32) and data.test.x.shape == (3, 3, 32, 32)
    expected = batches["test_batch"][0].reshape(3, 32, 32) / 255.0  # channels first, as stored
    assert torch.allclose(data.test.x[0], torch.as_tensor(expected, dtype=torch.float32))
    assert data.n_classes == 10


@pytest.mark.parametrize("name, hint", [("mnist", "MNIST/raw/"), ("fashion_mnist", "FashionMNIST/raw/"),
                                        ("cifar10", "cifar-10-batches-py/")])
def test_absent_torchvision_data_says_what_to_download_and_where(tmp_path, name, hint):
    with pytest.raises(DataNotFoundError, match="not in the data folder") as error:
        gt.data.load(name)
    message = str(error.value)
    assert hint in message and "download=True" in message and str(tmp_path / "data") in message


def test_randomization_conditions_change_only_what_they_name(small_mnist1d):
    conditions = gt.data.randomization_conditions(small_mnist1d, fraction=0.5, seed=3)
    assert list(conditions) == ["true labels", "corrupted labels (p = 0.5)", "random labels", "shuffled pixels",
                                "random pixels", "Gaussian inputs"]
    for name, data in conditions.items():
        assert torch.equal(data.test.y, small_mnist1d.test.y), name  # test labels stay true
        labels_changed = not torch.equal(data.train.y, small_mnist1d.train.y)
        inputs_changed = not torch.equal(data.train.x, small_mnist1d.train.x)
        assert labels_changed == ("labels" in name and name != "true labels"), name
        assert inputs_changed == (name in ("shuffled pixels", "random pixels", "Gaussian inputs")), name


def test_digits_can_keep_the_first_n_training_images():
    full, part = gt.data.load("digits", seed=0), gt.data.load("digits", seed=0, n_train=100)
    assert len(part.train) == 100 and torch.equal(part.train.x, full.train.x[:100]) and len(part.test) == len(full.test)


@pytest.mark.parametrize("sizes", [dict(n_train=-5), dict(n_train=0), dict(n_test=-1), dict(n_train=2.5)])
def test_mnist1d_refuses_impossible_sizes(sizes):
    with pytest.raises(ValueError, match="MNIST-1D needs n_train >= 1 and n_test >= 0"):
        gt.data.load("mnist1d", **sizes)
