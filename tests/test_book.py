"""The book builds with every chapter executed at the tiny scale; a chapter with an error or a failing claim fails the
build, after the whole website is written, with a one-screen summary."""
import os
import re
import shutil
import subprocess
import sys

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
        assert "### BEGIN SOLUTION" not in chapter, notebook.name  # the website hides nbgrader's markers
    assert "Scaling down deep learning with MNIST-1D" in (html / "book" / "bibliography.html").read_text()
    claims_page = (html / "book" / "claims.html").read_text()  # every chapter's claims, with their numbers
    assert all(f'href="../notebooks/{notebook.stem}.html"' in claims_page for notebook in (ROOT / "notebooks").glob("*.ipynb"))
    assert "at the <code>tiny</code> scale" in claims_page and "✘" not in claims_page
    reference = (html / "book" / "api.html").read_text()  # the gentools reference, from the docstrings
    assert all(f'id="gentools.{name}"' in reference for name in ("train.fit", "train.fitted", "sweep.sweep", "claims.claim"))
    statistics = (html / "book" / "execution.html").read_text()
    assert all(notebook.stem in statistics for notebook in (ROOT / "notebooks").glob("*.ipynb"))  # every chapter's run time


def test_a_failing_claim_or_cell_leaves_a_whole_website_a_red_claims_page_and_a_one_screen_summary(tmp_path):
    if not JUPYTER_BOOK.exists():
        pytest.skip("jupyter-book is not installed next to the test's Python; run `make test`")
    source = tmp_path / "book"
    (source / "book").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", source)
    shutil.copy(ROOT / "book" / "references.bib", source / "book")
    shutil.copytree(ROOT / "book" / "_ext", source / "book" / "_ext")
    (source / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: claiming\n  - file: crashing\n"
                                     "  - file: fine\n  - file: claims\n")
    (source / "intro.md").write_text("# A book with two broken chapters\n")
    (source / "claims.md").write_text("# Claims\n\n```{claims-table}\n```\n")
    chapters = {"claiming": ["import gentools as gt\ngt.claim(1 > 2, 'one exceeds two', margin=-1, one=1)",
                             "gt.claim(2 > 1, 'two exceeds one', margin=1)"],
                "crashing": ["1 / 0", "print('after the error')"],
                "fine": ["import gentools as gt\ngt.claim(True, 'this one holds')",
                         "answer = 1\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"]}
    for name, cells in chapters.items():
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_markdown_cell(f"# Chapter {name}"), *map(nbformat.v4.new_code_cell, cells)]
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, source / f"{name}.ipynb")
    result = build_book(source, tmp_path / "out", dict(os.environ))
    html = tmp_path / "out" / "_build" / "html"
    assert result.returncode != 0
    for page in ("index", "claiming", "crashing", "fine", "claims"):  # the whole website is written
        assert (html / f"{page}.html").exists(), page
    assert "ZeroDivisionError" in (html / "crashing.html").read_text()  # the error shows on its page
    assert "after the error" in (html / "crashing.html").read_text()  # and the cells after it ran
    assert "SOLUTION" not in (html / "fine.html").read_text() and "42" in (html / "fine.html").read_text()  # no markers
    claims_page = (html / "claims.html").read_text()
    assert "3 claims in 3 chapters, 2 held" in claims_page and "1 failed; 1 cell stopped" in claims_page
    rows = claims_page[claims_page.index("<tbody>"):]
    assert rows.index("ZeroDivisionError") < rows.index("one exceeds two") < rows.index("two exceeds one")  # failures first
    assert '<tr class="gentools-claim-failed"><td><a href="claiming.html">' in rows  # in red (gentools.css)
    summary = subprocess.run([sys.executable, str(ROOT / "book" / "_ext" / "summary.py"), str(html), str(result.returncode)],
                             capture_output=True, text=True)
    lines = summary.stdout.strip().splitlines()
    assert summary.returncode != 0 and len(lines) == 3, summary.stdout
    assert lines[0] == '1 claim failed: Chapter claiming: "one exceeds two"'
    assert lines[1] == '1 cell failed: Chapter crashing: "ZeroDivisionError: division by zero"'
    assert lines[2].startswith("The website is at file://") and lines[2].endswith("claims.html")


def test_the_summary_of_a_build_that_passed_says_where_the_website_is(tmp_path):
    (tmp_path / "failures.json").write_text('{"failures": [], "claims_page": "claims.html"}')
    summary = subprocess.run([sys.executable, str(ROOT / "book" / "_ext" / "summary.py"), str(tmp_path), "0"],
                             capture_output=True, text=True)
    assert summary.returncode == 0 and summary.stdout.startswith("The book is at file://")


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


# "section 3.6", "Chapter 1.2", "sections 4.1", "§ 5.3": a number typed by hand, which drifts when sections move
HAND_TYPED_SECTION_NUMBER = re.compile(r"\b(?:sections?|chapters?)\s+\d+\.\d+|§\s*\d+\.\d+", re.IGNORECASE)


def test_no_markdown_cell_refers_to_a_section_by_a_hand_typed_number():
    """The build numbers the sections (_toc.yml, numbered: true); a chapter refers to one of them by a MyST label,
    `(label-name)=` on the line above its heading and {ref}`label-name` (or {ref}`text <label-name>`) where it is
    cited, so that no number can go stale."""
    found = []
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
            if cell.cell_type == "markdown":
                found += [f"{notebook.name}, cell {index}: {match.group(0)!r}"
                          for match in HAND_TYPED_SECTION_NUMBER.finditer(cell.source)]
    assert not found, "use a label and {ref} instead of a typed section number:\n" + "\n".join(found)


def test_the_reference_page_documents_every_gentools_module():
    page = (ROOT / "book" / "api.md").read_text()
    modules = {path.stem for path in (ROOT / "gentools").glob("*.py")} - {"__init__"}
    assert {module for module in modules if f".. automodule:: gentools.{module}\n" not in page} == set()
