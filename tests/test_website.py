"""The website as a reader sees it: every page of _toc.yml opened in headless Chromium from a local server, with
the network closed. Each page must load (HTTP 200) without console errors or requests to other hosts, typeset its
mathematics (MathJax output present, no raw $$ left), show its figures, and link only to pages that exist.
A screenshot of every page is saved under _build/screenshots for people to look at."""
from __future__ import annotations

import functools
import os
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
import yaml

from conftest import ROOT

SCREENSHOTS = ROOT / "_build" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def toc_pages() -> list[str]:
    """Every page the table of contents lists, as paths without suffix (book/intro, notebooks/01_...)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


def find_chromium() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(built_book):
    result, html = built_book
    if result.returncode != 0:
        pytest.fail("the book did not build; see test_book.py for its log")
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", html
    server.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium found (install Debian's `chromium` package, or set CHROMIUM=/path/to/chromium); "
                    "`make test` installs it where it can")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed; run `make test`")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def internal_links(page, base: str) -> set[str]:
    """Absolute addresses (without #fragment) of every link on the page that stays on this site."""
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    return {href.split("#")[0] for href in hrefs if href.startswith(base)}


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_renders_offline(site, browser, page_path):
    base, html = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors, foreign = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def guard(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:", "about:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:  # the website must not need the network: record and refuse
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    response = page.goto(urljoin(base, f"{page_path}.html"), wait_until="load")
    assert response is not None and response.status == 200, page_path

    has_math = page.locator(".math, span.math, div.math").count() > 0
    if has_math:  # wait until MathJax has typeset the page
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
        page.evaluate("() => MathJax.startup.promise")
        assert page.locator("mjx-container").count() > 0, f"{page_path}: math was not typeset"
    text = page.inner_text("main")
    assert "$$" not in text, f"{page_path}: raw $$ left in the text"
    assert "Claim(statement=" not in text, f"{page_path}: a raw Claim object is shown where its sentence belongs"

    # one search field in sight, and the sidebar's title not covered by anything
    searches = page.eval_on_selector_all(".search-button-field", "fields => fields.filter(f => f.offsetParent !== null).length")
    assert searches == 1, f"{page_path}: {searches} search fields in sight"
    title = page.locator(".bd-sidebar-primary .navbar-brand").first
    title.evaluate("t => { for (let e = t; e; e = e.parentElement) e.scrollTop = 0; }")  # the sidebar scrolls to the page's entry
    box = title.bounding_box()
    assert box is not None and box["y"] >= 0, f"{page_path}: the sidebar's title is off the page"
    uncovered = page.evaluate("""([x, y]) => {
        const title = document.querySelector('.bd-sidebar-primary .navbar-brand');
        return title.contains(document.elementFromPoint(x, y));
    }""", [box["x"] + box["width"] / 2, box["y"] + 2])
    assert uncovered, f"{page_path}: something covers the top of the sidebar's title"

    if page_path.startswith("notebooks/"):
        page.wait_for_function("() => [...document.images].every(image => image.complete)")
        rendered = page.eval_on_selector_all("main .cell_output img", "images => images.filter(i => i.naturalWidth > 0).length")
        assert rendered >= 1, f"{page_path}: no figure rendered"
        assert "✔" in text, f"{page_path}: no checked claim on the page"
        answer = page.locator(".tag_hide-cell .cell_input").first  # each exercise's answer: hidden until asked for
        assert answer.count() == 1 and not answer.is_visible(), f"{page_path}: an exercise's answer is in plain view"
        page.locator(".tag_hide-cell details > summary").first.click()
        assert answer.is_visible(), f"{page_path}: one click does not reveal the answer"
        assert "SOLUTION" not in answer.inner_text(), f"{page_path}: nbgrader's markers are shown"

    missing = sorted(link for link in internal_links(page, base)
                     if not (html / urlparse(link).path.lstrip("/")).is_file()
                     and not (html / urlparse(link).path.lstrip("/") / "index.html").is_file())
    assert not missing, f"{page_path}: links to pages that do not exist: {missing}"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{page_path.replace('/', '__')}.png"), full_page=False)
    context.close()
    assert not foreign, f"{page_path}: requests to other hosts: {foreign}"
    assert not errors, f"{page_path}: console errors: {errors}"
