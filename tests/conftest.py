"""Shared fixtures: every test runs at the tiny scale, on the CPU, with its own cache folder; the book is built
once a session at the tiny scale for the tests that read it."""
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import yaml

matplotlib.use("Agg")

OUTER_CACHE = os.environ.get("GENTOOLS_CACHE")  # the cache `make test` gives the notebooks, before tests override it
ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
CELL_TIMEOUT_S = int(os.environ.get("GENTOOLS_CELL_TIMEOUT", 300))  # set by the Makefile's CELL_TIMEOUT, as for nbval


def build_book(source: Path, output: Path, env: dict[str, str], limit_s: int = 1500) -> subprocess.CompletedProcess:
    """Build `source` with its own _config.yml, but with the tests' cell timeout. If the whole build overruns
    `limit_s`, it is stopped and the failure names the notebook that was executing."""
    config = yaml.safe_load((source / "_config.yml").read_text())
    config["execute"]["timeout"] = CELL_TIMEOUT_S
    extensions = config.get("sphinx", {}).get("local_extensions") or {}
    for name, folder in extensions.items():  # relative to the config file, which now lives elsewhere
        extensions[name] = str((source / folder).resolve())
    output.mkdir(parents=True, exist_ok=True)
    config_path = output / "test-config.yml"
    config_path.write_text(yaml.safe_dump(config))
    command = [str(JUPYTER_BOOK), "build", str(source), "--path-output", str(output), "--config", str(config_path),
               "-W", "--keep-going"]
    log_path = output / "build.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
        try:
            process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
            executing = re.findall(r"Executing notebook using local CWD \[mystnb\]: (\S+)", log_path.read_text())
            pytest.fail(f"the book build overran {limit_s} s while executing {executing[-1] if executing else 'no notebook yet'}; "
                        f"its log: {log_path}")
    text = log_path.read_text()
    return subprocess.CompletedProcess(command, process.returncode, stdout=text, stderr="")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The whole book built once at the tiny scale from the runs the notebook tests cached, training nothing (a chapter
    that trains outside the cache fails it): (the build's CompletedProcess, the html folder)."""
    if not JUPYTER_BOOK.exists():
        pytest.skip(f"jupyter-book is not installed next to {sys.executable}; run `make test`")
    output = tmp_path_factory.mktemp("book")
    env = {**os.environ, "GENTOOLS_SCALE": "tiny", "GENTOOLS_DEVICE": "cpu", "GENTOOLS_DATA": str(output / "data"),
           "GENTOOLS_CACHE": OUTER_CACHE or str(output / "cache")}
    env.pop("GENTOOLS_PROGRESS", None)
    if OUTER_CACHE:  # the chapters' second execution: everything they train must come from the notebook tests' cache
        env["GENTOOLS_CACHED_ONLY"] = "1"
    return build_book(ROOT, output, env), output / "_build" / "html"


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    """One cache for generated data sets, shared by all tests (generating MNIST-1D takes a second)."""
    return tmp_path_factory.mktemp("gentools-cache")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, data_cache, tmp_path):
    monkeypatch.setenv("GENTOOLS_SCALE", "tiny")
    monkeypatch.setenv("GENTOOLS_DEVICE", "cpu")
    monkeypatch.setenv("GENTOOLS_CACHE", str(data_cache))
    monkeypatch.setenv("GENTOOLS_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("GENTOOLS_PROGRESS", raising=False)


@pytest.fixture
def small_mnist1d():
    import gentools as gt

    return gt.data.load("mnist1d", n_train=400, n_test=200, seed=0)


@pytest.fixture
def fake_cifar10(tmp_path, monkeypatch):
    """CIFAR-10 in its real on-disk format (python batches), 10 images a batch, in a data folder of its own
    (GENTOOLS_DATA): for smoke tests of the paper-scale experiments."""
    import pickle

    import numpy as np
    import torchvision.datasets.cifar as cifar

    # torchvision checks each file's MD5 against the official release; ours are tiny fakes, so check only presence.
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), "labels": list(range(10))}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    monkeypatch.setenv("GENTOOLS_DATA", str(tmp_path / "data"))
    return folder


def _write_idx(path: Path, array) -> None:
    """The IDX format of MNIST: magic (0, 0, type 0x08 = ubyte, number of dimensions), sizes big-endian, data."""
    import struct

    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.asarray(array).astype(np.uint8).tobytes())


@pytest.fixture
def write_idx():
    return _write_idx


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """MNIST in its real on-disk format (IDX files), 60 training and 20 test images, in a data folder of its own."""
    import numpy as np

    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "MNIST" / "raw"
    for split, n in (("train", 60), ("t10k", 20)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    monkeypatch.setenv("GENTOOLS_DATA", str(tmp_path / "data"))
    return raw

