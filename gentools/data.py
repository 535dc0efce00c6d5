"""Data sets held whole as tensors on the device, and the randomisation transforms of Zhang et al. (2017).

Small data sets fit in memory many times over, so a batch is an index into tensors that already sit on the
device: no DataLoader, no worker processes, no copies in the inner loop.
"""
from __future__ import annotations

from numbers import Integral

import dataclasses
import random
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import config, store
from .device import device as default_device
from .device import generator, run_seed


@dataclass(frozen=True)
class TensorData:
    """Inputs `x` and targets `y` of one split, as tensors (integer `y` means classification)."""

    x: Tensor
    y: Tensor

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} examples but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, dev: torch.device | str) -> TensorData:
        return TensorData(self.x.to(dev), self.y.to(dev))

    def subset(self, index: Tensor | np.ndarray | slice) -> TensorData:
        if isinstance(index, np.ndarray):
            index = torch.as_tensor(index)
        if isinstance(index, Tensor):
            index = index.to(self.x.device)
        return TensorData(self.x[index], self.y[index])

    def batches(self, batch_size: int, gen: torch.Generator | None = None, shuffle: bool = True) -> Iterator[tuple[Tensor, Tensor]]:
        """Mini-batches in a fresh random order (from `gen`) each call; the last batch may be smaller."""
        if shuffle:
            order = torch.randperm(len(self), generator=gen).to(self.device)
            x, y = self.x[order], self.y[order]
        else:
            x, y = self.x, self.y
        for start in range(0, len(self), batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]


@dataclass(frozen=True)
class DataSet:
    """A named data set: training and test splits, and a validation split once one is held out."""

    name: str
    train: TensorData
    test: TensorData
    n_classes: int | None = None  # None for regression
    valid: TensorData | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def splits(self) -> dict[str, TensorData]:
        """The splits present, in the order train, valid, test."""
        named = {"train": self.train, "valid": self.valid, "test": self.test}
        return {key: value for key, value in named.items() if value is not None}

    def to(self, dev: torch.device | str) -> DataSet:
        return self.replace(**{key: value.to(dev) for key, value in self.splits.items()})

    def replace(self, **changes) -> DataSet:
        return dataclasses.replace(self, **changes)

    def hold_out(self, fraction: float = 0.2, seed: int = 0) -> DataSet:
        """Move a random `fraction` of the training set into a validation split."""
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must lie between 0 and 1, got {fraction}")
        order = torch.randperm(len(self.train), generator=generator(seed))
        n_valid = round(fraction * len(self.train))
        return self.replace(train=self.train.subset(order[n_valid:]), valid=self.train.subset(order[:n_valid]))

    def k_folds(self, k: int = 5, seed: int = 0) -> list[DataSet]:
        """K copies of the data set; in copy i the i-th of k disjoint folds of the training set is the
        validation split and the other k-1 folds are the training split. The test split is untouched."""
        if not 2 <= k <= len(self.train):
            raise ValueError(f"k must lie between 2 and the training set size {len(self.train)}, got {k}")
        folds = torch.randperm(len(self.train), generator=generator(seed)).tensor_split(k)
        return [self.replace(train=self.train.subset(torch.cat(folds[:i] + folds[i + 1:])), valid=self.train.subset(fold))
                for i, fold in enumerate(folds)]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{key}={len(value)}" for key, value in self.splits.items())
        kind = f"{self.n_classes} classes" if self.n_classes else "regression"
        return f"DataSet({self.name!r}: {sizes}; inputs {self.input_shape}; {kind}; on {self.train.device})"


# --- loaders -------------------------------------------------------------------------------------------------

def load(name: str, device: torch.device | str | None = None, **options) -> DataSet:
    """Load a data set by name onto `device` (default: gentools' device). Options go to its loader."""
    loaders = {
        "mnist1d": mnist1d,
        "digits": digits,
        "regression": regression,
        "mnist": lambda **kw: torchvision_data("MNIST", **kw),
        "fashion_mnist": lambda **kw: torchvision_data("FashionMNIST", **kw),
        "cifar10": lambda **kw: torchvision_data("CIFAR10", **kw),
    }
    key = name.lower().replace("-", "_")
    key = {"mnist_1d": "mnist1d", "fashionmnist": "fashion_mnist", "cifar_10": "cifar10"}.get(key, key)
    if key not in loaders:
        raise ValueError(f"Unknown data set {name!r}. Known: {', '.join(loaders)}.")
    return loaders[key](**options).to(device or default_device())


MNIST1D_SETTINGS = ("padding", "scale_coeff", "max_translation", "corr_noise_scale", "iid_noise_scale", "shear_scale")
"""The MNIST-1D generator's settings that change the distribution but not the signal's length (its defaults:
`mnist1d_defaults()`): the range of zero padding before the template is stretched to 72 samples (less padding, a
wider digit; only its lower end may change), the range of random amplitude scaling, the largest circular
translation, the correlated and the i.i.d. noise, and the shear."""


def mnist1d_defaults() -> dict:
    """The generator's default settings, as its package gives them."""
    import mnist1d.data

    defaults = mnist1d.data.get_dataset_args(as_dict=True)
    return {key: defaults[key] for key in MNIST1D_SETTINGS}


def mnist1d(n_train: int = 4000, n_test: int = 1000, seed: int = 42, shuffle_seq: bool = False, **settings) -> DataSet:
    """MNIST-1D (Greydanus & Kobak), generated offline by its package; any size. The defaults give the
    reference data set exactly (4000/1000, seed 42); another seed gives a fresh draw from the same distribution.
    `settings` change the generator's (`MNIST1D_SETTINGS`): a shifted distribution, standardised with the
    statistics of the default distribution's draw of the same size and seed, as a deployed model would see it.
    Generating takes about 0.2 ms an example, so the result is cached on disk."""
    if not (isinstance(n_train, Integral) and isinstance(n_test, Integral) and n_train >= 1 and n_test >= 0):
        raise ValueError(f"MNIST-1D needs n_train >= 1 and n_test >= 0 (whole numbers), got n_train={n_train!r}, "
                         f"n_test={n_test!r}")
    unknown = set(settings) - set(MNIST1D_SETTINGS)
    if unknown:
        raise ValueError(f"Unknown MNIST-1D settings {sorted(unknown)}; known: {', '.join(MNIST1D_SETTINGS)}")
    defaults = mnist1d_defaults()
    settings = {key: list(value) if key == "padding" else value for key, value in settings.items()}
    if "padding" in settings and (len(settings["padding"]) != 2 or settings["padding"][1] != defaults["padding"][1]
                                  or not 0 <= settings["padding"][0] <= settings["padding"][1]):
        raise ValueError(f"padding must be (low, {defaults['padding'][1]}) with 0 <= low <= {defaults['padding'][1]}: its "
                         f"upper end sets the signal's length before subsampling; got {settings['padding']}")
    changed = {key: value for key, value in settings.items() if value != defaults[key]}
    if changed and shuffle_seq:
        raise ValueError("shuffle_seq goes with the default generator settings only")
    total = -(-(n_train + n_test) // 10) * 10  # the generator makes equal numbers of each class
    label = "".join(f"-{key}{value}" for key, value in sorted(changed.items())).replace(" ", "")
    path = config.cache_dir() / "data" / f"mnist1d-{total}-seed{seed}{'-shuffled' if shuffle_seq else ''}{label}.pt"
    try:
        raw = store.read_tensors(path)
    except FileNotFoundError:
        raw = None
    except Exception as error:  # a torn or foreign file: make the data again
        warnings.warn(f"Cached MNIST-1D at {path} was unreadable ({error}); generating it again.", stacklevel=2)
        raw = None
    if raw is None:
        raw = _generate_mnist1d(total, seed, shuffle_seq, changed)
        store.write_tensors(path, raw)
    x, y = raw["x"], raw["y"]
    return DataSet(
        "mnist1d" + (" (" + ", ".join(f"{key}={value}" for key, value in changed.items()) + ")" if changed else ""),
        train=TensorData(x[:n_train], y[:n_train]),
        test=TensorData(x[n_train:n_train + n_test], y[n_train:n_train + n_test]),
        n_classes=10,
    )


def _generate_mnist1d(total: int, seed: int, shuffle_seq: bool, changed: dict | None = None) -> dict[str, Tensor]:
    import mnist1d.data

    args = mnist1d.data.get_dataset_args()
    args.num_samples, args.train_split, args.seed, args.shuffle_seq = total, 1.0, seed, shuffle_seq
    saved = random.getstate(), np.random.get_state()  # the generator reseeds the global generators
    try:
        if not changed:
            raw = mnist1d.data.make_dataset(args)
            x, y = raw["x"], raw["y"]
        else:
            reference, _ = _draw_mnist1d(args)
            for key, value in changed.items():
                setattr(args, key, value)
            x, y = _draw_mnist1d(args)
            x = (x - reference.mean()) / reference.std()
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    return {"x": torch.as_tensor(x, dtype=torch.float32), "y": torch.as_tensor(y, dtype=torch.long)}


def _draw_mnist1d(args) -> tuple[np.ndarray, np.ndarray]:
    """Unstandardised signals and labels from the package's own per-example transform, drawn in the order its
    make_dataset draws them (so the default settings give the same signals, before it standardises them)."""
    from mnist1d.data import get_templates
    from mnist1d.transform import transform
    from mnist1d.utils import set_seed

    templates = get_templates()
    set_seed(args.seed)
    per_class = args.num_samples // len(templates["y"])
    xs = [transform(template, templates["t"], args)[0] for template in templates["x"] for _ in range(per_class)]
    ys = np.repeat(templates["y"], per_class)
    order = np.random.permutation(len(ys))
    return np.stack(xs)[order], ys[order]


def digits(test_fraction: float = 0.25, seed: int = 0, n_train: int | None = None) -> DataSet:
    """scikit-learn's 8x8 handwritten digits (1797 images, shipped with the package), pixels in [0, 1]; with
    `n_train`, only the first n_train images of the (shuffled) training split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    raw = load_digits()
    x = (raw.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    x_train, x_test, y_train, y_test = train_test_split(
        x, raw.target, test_size=test_fraction, random_state=run_seed(seed) % 2**32, stratify=raw.target
    )
    as_data = lambda a, b: TensorData(torch.as_tensor(a), torch.as_tensor(b, dtype=torch.long))  # noqa: E731
    train = as_data(x_train[:n_train], y_train[:n_train])
    return DataSet("digits", train=train, test=as_data(x_test, y_test), n_classes=10)


REGRESSION_FUNCTIONS = {
    "sin": lambda x: torch.sin(torch.pi * x),
    "cubic": lambda x: x**3 - 0.5 * x,
    "step": lambda x: torch.sign(x),
}


def regression_function(name: str):
    """The noiseless target f of a synthetic regression data set, by name."""
    if name not in REGRESSION_FUNCTIONS:
        raise ValueError(f"Unknown function {name!r}; choose one of {', '.join(REGRESSION_FUNCTIONS)}.")
    return REGRESSION_FUNCTIONS[name]


def regression(n_train: int = 30, n_test: int = 1000, noise: float = 0.3, seed: int = 0, function: str = "sin") -> DataSet:
    """Synthetic 1-D regression: x uniform on [-1, 1], y = f(x) + Gaussian noise of standard deviation `noise`."""
    f = regression_function(function)
    gen = generator(seed)

    def draw(n: int) -> TensorData:
        x = torch.rand(n, 1, generator=gen) * 2 - 1
        return TensorData(x, f(x) + noise * torch.randn(n, 1, generator=gen))

    return DataSet(f"regression-{function}", train=draw(n_train), test=draw(n_test))


def two_speed_regression(n_train: int = 100, n_test: int = 5000, fast: int = 70, slow: int = 10,
                         slow_scale: float = 0.03, slow_signal: float = 0.3, noise: float = 0.2, seed: int = 0) -> DataSet:
    """Linear regression whose features are learned at two speeds (Heckel & Yilmaz 2020): `fast` features of unit
    scale and `slow` ones of scale `slow_scale`, so gradient descent learns the latter about 1/slow_scale^2 times
    more slowly. y = x w* + Gaussian noise; the fast features carry signal variance 1, the slow ones `slow_signal`."""
    gen = generator(seed)
    scales = torch.cat([torch.ones(fast), torch.full((slow,), slow_scale)]).double()
    w_star = torch.randn(fast + slow, generator=gen, dtype=torch.float64) * torch.cat(
        [torch.full((fast,), fast ** -0.5), torch.full((slow,), (slow_signal / slow) ** 0.5 / slow_scale)]).double()

    def draw(n: int) -> TensorData:
        x = torch.randn(n, fast + slow, generator=gen, dtype=torch.float64) * scales
        return TensorData(x, x @ w_star + noise * torch.randn(n, generator=gen, dtype=torch.float64))

    return DataSet("two-speed-regression", train=draw(n_train), test=draw(n_test))


_TORCHVISION_FILES = {
    "MNIST": "MNIST/raw/ (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)",
    "FashionMNIST": "FashionMNIST/raw/ (the same four idx files as MNIST, from Zalando's Fashion-MNIST)",
    "CIFAR10": "cifar-10-batches-py/ (data_batch_1 ... data_batch_5, test_batch, batches.meta: the python version)",
}


class DataNotFoundError(FileNotFoundError):
    """A data set that must be downloaded is not in the data folder."""


def torchvision_data(dataset: str, root: str | Path | None = None, download: bool = False) -> DataSet:
    """MNIST, FashionMNIST or CIFAR10 read by torchvision from the data folder (never downloaded unless asked)."""
    import torchvision.datasets

    root = Path(root) if root is not None else config.data_dir()
    cls = getattr(torchvision.datasets, dataset)
    try:
        parts = [cls(root=str(root), train=train, download=download) for train in (True, False)]
    except RuntimeError as error:
        raise DataNotFoundError(
            f"{dataset} is not in the data folder {root}. Put its files under {root}/{_TORCHVISION_FILES[dataset]}, "
            f"for example by running torchvision.datasets.{dataset}(root={str(root)!r}, download=True) once on a "
            "machine with internet; set GENTOOLS_DATA to use another folder. "
            f"(torchvision said: {error})"
        ) from error

    def as_data(part) -> TensorData:
        x = torch.as_tensor(np.asarray(part.data), dtype=torch.float32) / 255.0
        x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x[:, None]  # (N, C, H, W)
        return TensorData(x.contiguous(), torch.as_tensor(np.asarray(part.targets), dtype=torch.long))

    return DataSet(dataset.lower(), train=as_data(parts[0]), test=as_data(parts[1]), n_classes=len(parts[0].classes))


# --- randomisation tests (Zhang et al. 2017) -----------------------------------------------------------------

def corrupt_labels(data: DataSet, fraction: float, seed: int = 0) -> DataSet:
    """Replace each training label, with probability `fraction`, by a class drawn uniformly at random
    (so about fraction * (1 - 1/K) of the labels actually change). Test labels stay true."""
    if not data.n_classes:
        raise ValueError(f"{data.name} has no classes; label corruption needs a classification data set.")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    gen = generator(seed)
    y = data.train.y.cpu().clone()
    hit = torch.rand(len(y), generator=gen) < fraction
    y[hit] = torch.randint(data.n_classes, (int(hit.sum()),), generator=gen)
    return data.replace(train=TensorData(data.train.x, y.to(data.train.device)))


def random_labels(data: DataSet, seed: int = 0) -> DataSet:
    """Every training label drawn uniformly at random."""
    return corrupt_labels(data, 1.0, seed)


def kept_and_changed(data: DataSet, original: DataSet) -> tuple[TensorData, TensorData]:
    """The training examples whose label `data` kept from `original`, and those whose label it changed (as
    corrupt_labels does): what a network fits of each tells memorisation from learning."""
    if len(data.train) != len(original.train) or not torch.equal(data.train.x, original.train.x):
        raise ValueError(f"{data.name} and {original.name} must have the same training inputs, with labels that differ")
    changed = data.train.y != original.train.y
    return data.train.subset(~changed), data.train.subset(changed)


def select_classes(data: DataSet, classes: Sequence[int] | None = None, per_class: int | None = None,
                   seed: int = 0) -> DataSet:
    """The data set restricted to `classes` (all if None), relabelled 0, 1, ... in the order given, with `per_class`
    training examples of each drawn at random by `seed` (all if None): a source or target task of transfer, or a
    task with few labels. The other splits keep every example of those classes."""
    if not data.n_classes:
        raise ValueError(f"{data.name} has no classes to select")
    classes = list(range(data.n_classes) if classes is None else classes)
    if not classes or not all(0 <= int(c) < data.n_classes for c in classes) or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct labels of {data.name} (0 to {data.n_classes - 1}), got {classes}")
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be 1 or more, got {per_class}")
    gen = generator(seed)

    def part(split: TensorData, draw: bool) -> TensorData:
        labels = split.y.cpu()
        index = []
        for c in classes:
            members = (labels == c).nonzero().flatten()
            index.append(members[torch.randperm(len(members), generator=gen)[:per_class]] if draw else members)
        index = torch.cat(index) if draw else torch.sort(torch.cat(index)).values
        relabel = torch.full((data.n_classes,), -1, dtype=torch.long)
        relabel[torch.tensor(classes)] = torch.arange(len(classes))
        return TensorData(split.x[index.to(split.device)], relabel[labels[index]].to(split.device))

    name = data.name if classes == list(range(data.n_classes)) else f"{data.name}, classes {classes[0]}-{classes[-1]}"
    return data.replace(name=name, n_classes=len(classes),
                        **{key: part(split, draw=key == "train" and per_class is not None) for key, split in data.splits.items()})


def group_classes(data: DataSet, groups: Sequence[Sequence[int]]) -> DataSet:
    """The data set with its classes merged into `groups`, group i becoming class i: Dziugaite & Roy's binary MNIST
    is ``group_classes(mnist, [range(5), range(5, 10)])``. Every class must fall in exactly one group."""
    labels = [int(c) for group in groups for c in group]
    if not data.n_classes or sorted(labels) != list(range(data.n_classes)) or not all(len(group) for group in groups):
        raise ValueError(f"groups must split the classes 0 to {(data.n_classes or 1) - 1} of {data.name} into non-empty "
                         f"groups, each class in exactly one; got {[list(group) for group in groups]}")
    relabel = torch.empty(data.n_classes, dtype=torch.long)
    for index, group in enumerate(groups):
        relabel[list(group)] = index
    return data.replace(name=f"{data.name}, {len(groups)} groups of classes", n_classes=len(groups),
                        **{key: TensorData(split.x, relabel.to(split.device)[split.y]) for key, split in data.splits.items()})


def _map_inputs(data: DataSet, transform) -> DataSet:
    """Apply `transform(x_flat, split_name)` to the flattened inputs of every split."""
    changed = {}
    for key, split in data.splits.items():
        flat = split.x.reshape(len(split), -1)
        changed[key] = TensorData(transform(flat, key).reshape(split.x.shape), split.y)
    return data.replace(**changed)


def shuffle_pixels(data: DataSet, seed: int = 0) -> DataSet:
    """One random permutation of the input coordinates, the same for every example of every split."""
    n_features = int(np.prod(data.input_shape))
    perm = torch.randperm(n_features, generator=generator(seed)).to(data.train.device)
    return _map_inputs(data, lambda x, _: x[:, perm])


def random_pixels(data: DataSet, seed: int = 0) -> DataSet:
    """A different random permutation of the input coordinates for each example."""
    gen = generator(seed)

    def permute(x: Tensor, _) -> Tensor:
        perms = torch.argsort(torch.rand(x.shape, generator=gen), dim=1).to(x.device)
        return torch.gather(x, 1, perms)

    return _map_inputs(data, permute)


def gaussian_inputs(data: DataSet, seed: int = 0) -> DataSet:
    """Inputs replaced by Gaussian noise with the training set's per-coordinate mean and standard deviation."""
    flat = data.train.x.reshape(len(data.train), -1)
    mean, std = flat.mean(0), flat.std(0)
    gen = generator(seed)
    return _map_inputs(data, lambda x, _: mean + std * torch.randn(x.shape, generator=gen).to(x.device))


def randomization_conditions(data: DataSet, fraction: float = 0.5, seed: int = 0) -> dict[str, DataSet]:
    """Zhang et al.'s randomization tests for one data set, by name: true labels, labels corrupted with probability
    `fraction` (named with Zhang et al.'s p), random labels, shuffled pixels, random pixels and Gaussian inputs. Test labels stay true in all six."""
    return {"true labels": data, f"corrupted labels (p = {fraction})": corrupt_labels(data, fraction, seed),
            "random labels": random_labels(data, seed), "shuffled pixels": shuffle_pixels(data, seed),
            "random pixels": random_pixels(data, seed), "Gaussian inputs": gaussian_inputs(data, seed)}
