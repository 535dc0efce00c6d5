"""The book builds with every chapter executed at the tiny scale, and a broken chapter fails the build."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


CELL_TIMEOUT_S = 300  # a tiny-scale cell takes at most about a minute; a stalled kernel fails in minutes, not hours


def build(source: Path, output: Path) -> subprocess.CompletedProcess:
    """Build `source` with its own _config.yml, but with the tiny-scale cell timeout."""
    config = yaml.safe_load((source / "_config.yml").read_text())
    config["execute"]["timeout"] = CELL_TIMEOUT_S
    output.mkdir(parents=True, exist_ok=True)
    config_path = output / "test-config.yml"
    config_path.write_text(yaml.safe_dump(config))
    command = [str(JUPYTER_BOOK), "build", str(source), "--path-output", str(output), "--config", str(config_path),
               "-W", "--keep-going"]
    return subprocess.run(command, capture_output=True, text=True, timeout=1500)


@pytest.fixture(autouse=True)
def need_jupyter_book():
    if not JUPYTER_BOOK.exists():
        pytest.skip(f"jupyter-book is not installed next to {sys.executable}; run `make test`")


def test_the_book_builds_with_every_chapter_executed(monkeypatch, tmp_path, outer_cache):
    monkeypatch.setenv("GENTOOLS_CACHE", outer_cache)
    result = build(ROOT, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        chapter = (html / "notebooks" / f"{notebook.stem}.html").read_text()
        assert "✔" in chapter and "Claim failed" not in chapter, notebook.name  # the claims ran and held
        executed = nbformat.read(tmp_path / "_build" / "jupyter_execute" / "notebooks" / notebook.name, as_version=4)
        figures = sum("image/png" in output.get("data", {}) for cell in executed.cells for output in cell.get("outputs", []))
        assert figures >= 1 and chapter.count("<img") >= figures, notebook.name  # every figure made it onto the page
        assert 'href="../book/bibliography.html#' in chapter, notebook.name  # citations resolve to the bibliography
    assert "Scaling down deep learning with MNIST-1D" in (html / "book" / "bibliography.html").read_text()


def test_a_failing_chapter_fails_the_build(tmp_path):
    source = tmp_path / "book"
    (source / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", source)
    shutil.copy(ROOT / "book" / "references.bib", source / "book")
    (source / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    (source / "intro.md").write_text("# A book with one broken chapter\n")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Broken"),
                      nbformat.v4.new_code_cell("import gentools as gt\ngt.claim(1 > 2, 'one exceeds two')")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, source / "broken.ipynb")
    result = build(source, tmp_path / "out")
    assert result.returncode != 0
    assert "ClaimFailed" in result.stdout + result.stderr
