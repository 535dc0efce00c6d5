"""The README's commands beyond `make test` itself: JupyterLab from the project's environment starts, serves the
notebooks folder and opens a chapter (headless, on a free local port, then stopped); `make dist` builds a wheel
that installs a complete gentools (the Colab route); `make assignments` writes the student edition."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

JUPYTER = Path(sys.executable).with_name("jupyter")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_jupyter_lab_serves_a_chapter(tmp_path):
    if not JUPYTER.exists():
        pytest.skip(f"jupyter is not installed next to {sys.executable}; run `make test`")
    port, token = free_port(), "gentools-test"
    command = [str(JUPYTER), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={ROOT}", "--ServerApp.open_browser=False", "--allow-root"]
    log = (tmp_path / "lab.log").open("w")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path)}  # no user configuration
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=5) as page:
                    assert page.status == 200 and "JupyterLab" in page.read().decode()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
                time.sleep(1)
        with urllib.request.urlopen(f"{base}/api/contents/notebooks/01_generalization.ipynb?token={token}", timeout=10) as reply:
            notebook = json.loads(reply.read())
        assert notebook["type"] == "notebook" and notebook["content"]["cells"]
        with urllib.request.urlopen(f"{base}/api/kernelspecs?token={token}", timeout=10) as reply:
            assert "python3" in json.loads(reply.read())["kernelspecs"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_make_dist_builds_a_wheel_that_installs_gentools(tmp_path):
    if not JUPYTER.exists():
        pytest.skip(f"the project's environment is not next to {sys.executable}; run `make test`")
    result = subprocess.run(["make", "-s", "-C", str(ROOT), "dist"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    wheel = sorted((ROOT / "dist").glob("gentools-*.whl"))[-1]
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    modules = {path.name for path in (target / "gentools").glob("*.py")}
    assert modules == {path.name for path in (ROOT / "gentools").glob("*.py")}, "the wheel lacks modules"
    probe = subprocess.run([sys.executable, "-c", "import gentools, sys; print(gentools.__file__)"], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path, timeout=120)
    assert probe.returncode == 0 and str(target) in probe.stdout, probe.stderr


def test_make_assignments_writes_the_student_edition():
    if not JUPYTER.exists():
        pytest.skip(f"the project's environment is not next to {sys.executable}; run `make test`")
    result = subprocess.run(["make", "-s", "-C", str(ROOT), "assignments"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    written = sorted(path.name for path in (ROOT / "_build" / "assignments").glob("*.ipynb"))
    assert written == sorted(path.name for path in (ROOT / "notebooks").glob("*.ipynb"))
