"""The Claims page: every claim the chapters made in this build, with its numbers, its margin, and what failed.

A chapter's gt.claim displays HTML that carries the claim's record in a `data-claim` attribute (gentools/claims.py),
held or failed. When a chapter has been executed and read, this extension collects those records from its page, and
the errors of its cells (the build executes with `allow_errors`, so a failing cell shows its error on its page and
the other chapters still run). The `{claims-table}` directive on book/claims.md is filled in once every page is read,
failures first and in red, so the table always reports the run that built the website.

At the end of the build every failure is reported as a warning (so `-W --keep-going` finishes the website and then
fails), and written to `failures.json` in the output folder, which book/_ext/summary.py turns into the short
summary `make book` prints last.
"""
from __future__ import annotations

import html
import json
import re

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

CLAIM = re.compile(r'<div class="gentools-claim[^"]*" data-claim="([^"]*)"')
LOGGER = logging.getLogger(__name__)


class claims_placeholder(nodes.General, nodes.Element):
    pass


class ClaimsTable(SphinxDirective):
    def run(self):
        return [claims_placeholder()]


def _error_line(traceback: str) -> str:
    """The last line of a traceback that names the error (ClaimFailed: ..., ZeroDivisionError: ...)."""
    lines = [line.strip() for line in traceback.splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Failed|Incomplete|Interrupt|Exit)\b", line)]
    return (named or lines or ["an error"])[-1][:300]


def _collect(app, doctree):
    docname = app.env.docname
    records = [json.loads(html.unescape(match)) for node in doctree.findall(nodes.raw)
               if node.get("format") == "html" for match in CLAIM.findall(node.astext())]
    errors = [_error_line(node.astext()) for node in doctree.findall(nodes.literal_block)
              if "traceback" in node.get("classes", [])]
    for store, found in (("gentools_claims", records), ("gentools_errors", errors)):
        if not hasattr(app.env, store):
            setattr(app.env, store, {})
        getattr(app.env, store).pop(docname, None)
        if found:
            getattr(app.env, store)[docname] = found


def _purge(app, env, docname):
    for store in ("gentools_claims", "gentools_errors"):
        getattr(env, store, {}).pop(docname, None)


def _merge(app, env, docnames, other):
    for store in ("gentools_claims", "gentools_errors"):
        setattr(env, store, {**getattr(env, store, {}),
                             **{d: c for d, c in getattr(other, store, {}).items() if d in docnames}})


def _chapters(app) -> list[str]:
    found = set(getattr(app.env, "gentools_claims", {})) | set(getattr(app.env, "gentools_errors", {}))
    chapters = [docname for docname in app.env.found_docs if docname in found]
    chapters.sort(key=lambda docname: app.env.toc_secnumbers.get(docname, {}).get("", (999,)) or (999,))
    return chapters


def _margin(record) -> str:
    margin = record.get("margin")
    return "" if margin is None else f"{margin:.3g}"


def _table(app, fromdocname: str) -> str:
    claims = getattr(app.env, "gentools_claims", {})
    errors = getattr(app.env, "gentools_errors", {})
    chapters = _chapters(app)
    rows = [(docname, number, record) for docname in chapters for number, record in enumerate(claims.get(docname, []), 1)]
    failed = [row for row in rows if not row[2]["held"]]
    scales = sorted({record["scale"] for _, _, record in rows})
    draws = sorted({record.get("seed_draw", 0) for _, _, record in rows})
    chapter_word = "chapter" if len(chapters) == 1 else "chapters"
    error_count = sum(not message.startswith("ClaimFailed") for found in errors.values() for message in found)
    summary = (f'{len(rows)} claims in {len(chapters)} {chapter_word}, {len(rows) - len(failed)} held, '
               f'at the <code>{html.escape(", ".join(scales) or "-")}</code> scale'
               f'{"" if draws in ([], [0]) else " with GENTOOLS_SEED=" + ", ".join(map(str, draws))}.')
    if failed or error_count:
        summary += (f' <span class="gentools-claims-failed-count">{len(failed)} failed; {error_count} '
                    f'{"cell" if error_count == 1 else "cells"} stopped with an error (listed first). A failed claim or '
                    f'an error stops its cell: claims after it in that cell did not run and are not counted.</span>')
    parts = [f'<p class="gentools-claims-summary">{summary}</p>',
             '<table class="table gentools-claims"><thead><tr><th>chapter</th><th>#</th><th>claim</th>'
             '<th>the numbers behind it</th><th>margin</th><th>held</th></tr></thead><tbody>']

    def link(docname):
        return (f'<a href="{app.builder.get_relative_uri(fromdocname, docname)}">'
                f'{html.escape(app.env.titles[docname].astext())}</a>')

    for docname in chapters:
        for message in errors.get(docname, []):
            if not message.startswith("ClaimFailed"):  # a failed claim has its own row
                parts.append(f'<tr class="gentools-claim-failed"><td>{link(docname)}</td><td></td>'
                             f'<td>a cell stopped with an error; the claims after it did not run</td>'
                             f'<td>{html.escape(message)}</td><td></td><td>✘</td></tr>')
    for docname, number, record in failed + [row for row in rows if row[2]["held"]]:
        state = "" if record["held"] else ' class="gentools-claim-failed"'
        parts.append(f'<tr{state}><td>{link(docname)}</td><td>{number}</td>'
                     f'<td>{html.escape(record["statement"])}</td><td>{html.escape(record["numbers"])}</td>'
                     f'<td>{_margin(record)}</td><td>{"✔" if record["held"] else "✘"}</td></tr>')
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _fill(app, doctree, fromdocname):
    for placeholder in list(doctree.findall(claims_placeholder)):
        placeholder.replace_self(nodes.raw("", _table(app, fromdocname), format="html"))


def _failures(app) -> list[dict[str, str]]:
    claims = getattr(app.env, "gentools_claims", {})
    errors = getattr(app.env, "gentools_errors", {})
    found = []
    for docname in _chapters(app):
        title = app.env.titles[docname].astext()
        found += [{"chapter": title, "page": docname, "kind": "claim", "what": record["statement"],
                   "numbers": record["numbers"]} for record in claims.get(docname, []) if not record["held"]]
        found += [{"chapter": title, "page": docname, "kind": "error", "what": message, "numbers": ""}
                  for message in errors.get(docname, []) if not message.startswith("ClaimFailed")]
    return found


def _report(app, exception):
    """Warn once per failure (the build then exits non-zero under -W) and write failures.json for the summary."""
    if exception is not None or app.builder.format != "html":
        return
    failures = _failures(app)
    for failure in failures:
        LOGGER.warning(f"{failure['chapter']}: {'claim failed' if failure['kind'] == 'claim' else 'a cell failed'}: "
                       f"{failure['what']}", location=failure["page"])
    claims_page = next((docname for docname in app.env.found_docs if docname.endswith("claims")), None)
    (app.outdir / "failures.json").write_text(json.dumps({
        "failures": failures,
        "claims_page": app.builder.get_target_uri(claims_page) if claims_page else None}, indent=1))


def setup(app):
    app.add_node(claims_placeholder)
    app.add_directive("claims-table", ClaimsTable)
    app.connect("doctree-read", _collect)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("doctree-resolved", _fill)
    app.connect("build-finished", _report)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 2}
