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
    """The whole book built once at the tiny scale, reusing the sweeps the notebook tests cached:
    (the build's CompletedProcess, the html folder)."""
    if not JUPYTER_BOOK.exists():
        pytest.skip(f"jupyter-book is not installed next to {sys.executable}; run `make test`")
    output = tmp_path_factory.mktemp("book")
    env = {**os.environ, "GENTOOLS_SCALE": "tiny", "GENTOOLS_DEVICE": "cpu", "GENTOOLS_DATA": str(output / "data"),
           "GENTOOLS_CACHE": OUTER_CACHE or str(output / "cache")}
    env.pop("GENTOOLS_PROGRESS", None)
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
