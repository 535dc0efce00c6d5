"""The book builds with every chapter executed at the tiny scale, and a chapter with an error or a failing claim
fails the build."""
import os
import shutil

import nbformat
import pytest

from conftest import JUPYTER_BOOK, ROOT, build_book


def test_the_book_builds_with_every_chapter_executed(built_book):
    result, html = built_book
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    executed_folder = html.parent / "jupyter_execute" / "notebooks"
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        chapter = (html / "notebooks" / f"{notebook.stem}.html").read_text()
        assert "✔" in chapter and "Claim failed" not in chapter, notebook.name  # the claims ran and held
        executed = nbformat.read(executed_folder / notebook.name, as_version=4)
        figures = sum("image/png" in output.get("data", {}) for cell in executed.cells for output in cell.get("outputs", []))
        assert figures >= 1 and chapter.count("<img") >= figures, notebook.name  # every figure made it onto the page
        assert 'href="../book/bibliography.html#' in chapter, notebook.name  # citations resolve to the bibliography
    assert "Scaling down deep learning with MNIST-1D" in (html / "book" / "bibliography.html").read_text()
    claims_page = (html / "book" / "claims.html").read_text()  # every chapter's claims, with their numbers
    assert all(f'href="../notebooks/{notebook.stem}.html"' in claims_page for notebook in (ROOT / "notebooks").glob("*.ipynb"))
    assert "at the <code>tiny</code> scale" in claims_page and "✘" not in claims_page
    statistics = (html / "book" / "execution.html").read_text()
    assert all(notebook.stem in statistics for notebook in (ROOT / "notebooks").glob("*.ipynb"))  # every chapter's run time


@pytest.mark.parametrize("broken_code, error", [("import gentools as gt\ngt.claim(1 > 2, 'one exceeds two')", "ClaimFailed"),
                                                ("1 / 0", "ZeroDivisionError")])
def test_a_failing_chapter_fails_the_build(tmp_path, broken_code, error):
    if not JUPYTER_BOOK.exists():
        pytest.skip("jupyter-book is not installed next to the test's Python; run `make test`")
    source = tmp_path / "book"
    (source / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", source)
    shutil.copy(ROOT / "book" / "references.bib", source / "book")
    shutil.copytree(ROOT / "book" / "_ext", source / "book" / "_ext")
    (source / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    (source / "intro.md").write_text("# A book with one broken chapter\n")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Broken"),
                      nbformat.v4.new_code_cell(broken_code)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, source / "broken.ipynb")
    result = build_book(source, tmp_path / "out", dict(os.environ))
    assert result.returncode != 0
    assert error in result.stdout + result.stderr


def test_every_notebook_is_a_chapter_of_the_table_of_contents_and_of_both_chapter_tables():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [entry["file"] for part in toc["parts"] if part.get("caption") == "Chapters" for entry in part["chapters"]]
    notebooks = sorted(f"notebooks/{path.stem}" for path in (ROOT / "notebooks").glob("*.ipynb"))
    assert chapters == notebooks  # in order, none missing, none extra
    intro, readme = (ROOT / "book" / "intro.md").read_text(), (ROOT / "README.md").read_text()
    for number, chapter in enumerate(chapters, 1):
        assert f"| {number} | [" in intro and f"../{chapter}.ipynb" in intro, chapter
        assert f"\n| {number} | " in readme, chapter
