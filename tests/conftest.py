"""Shared fixtures: every test runs at the tiny scale, on the CPU, with its own cache folder."""
import os

import matplotlib
import pytest

matplotlib.use("Agg")

OUTER_CACHE = os.environ.get("GENTOOLS_CACHE")  # the cache `make test` gives the notebooks, before tests override it


@pytest.fixture
def outer_cache(tmp_path):
    """The cache the notebook tests filled (so the book build reuses their sweeps), else an empty one."""
    return OUTER_CACHE or str(tmp_path / "cache")


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
