"""The Claims page: every claim the chapters made in this build, with its numbers.

A chapter's gt.claim displays HTML that carries the claim's record in a `data-claim` attribute (gentools/claims.py).
When a chapter has been executed and read, this extension collects those records from its page; the
`{claims-table}` directive on book/claims.md is filled in once every page is read, so the table always reports the
run that built the website.
"""
from __future__ import annotations

import html
import json
import re

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

CLAIM = re.compile(r'<div class="gentools-claim" data-claim="([^"]*)"')


class claims_placeholder(nodes.General, nodes.Element):
    pass


class ClaimsTable(SphinxDirective):
    def run(self):
        return [claims_placeholder()]


def _collect(app, doctree):
    records = [json.loads(html.unescape(match)) for node in doctree.findall(nodes.raw)
               if node.get("format") == "html" for match in CLAIM.findall(node.astext())]
    if records:
        app.env.gentools_claims = getattr(app.env, "gentools_claims", {})
        app.env.gentools_claims[app.env.docname] = records


def _purge(app, env, docname):
    getattr(env, "gentools_claims", {}).pop(docname, None)


def _merge(app, env, docnames, other):
    env.gentools_claims = {**getattr(env, "gentools_claims", {}),
                           **{d: c for d, c in getattr(other, "gentools_claims", {}).items() if d in docnames}}


def _table(app, fromdocname: str) -> str:
    claims = getattr(app.env, "gentools_claims", {})
    chapters = [docname for docname in app.env.found_docs if docname in claims]
    chapters.sort(key=lambda docname: app.env.toc_secnumbers.get(docname, {}).get("", (999,)) or (999,))
    total = sum(len(claims[docname]) for docname in chapters)
    held = sum(record["held"] for docname in chapters for record in claims[docname])
    scales = sorted({record["scale"] for docname in chapters for record in claims[docname]})
    chapter_word = "chapter" if len(chapters) == 1 else "chapters"
    parts = [f'<p class="gentools-claims-summary">{total} claims in {len(chapters)} {chapter_word}, {held} held, '
             f'at the <code>{html.escape(", ".join(scales) or "-")}</code> scale.</p>',
             '<table class="table gentools-claims"><thead><tr><th>chapter</th><th>#</th><th>claim</th>'
             '<th>the numbers behind it</th><th>held</th></tr></thead><tbody>']
    for docname in chapters:
        link = app.builder.get_relative_uri(fromdocname, docname)
        title = html.escape(app.env.titles[docname].astext())
        for number, record in enumerate(claims[docname], 1):
            parts.append(f'<tr><td><a href="{link}">{title}</a></td><td>{number}</td>'
                         f'<td>{html.escape(record["statement"])}</td><td>{html.escape(record["numbers"])}</td>'
                         f'<td>{"✔" if record["held"] else "✘"}</td></tr>')
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _fill(app, doctree, fromdocname):
    for placeholder in list(doctree.findall(claims_placeholder)):
        placeholder.replace_self(nodes.raw("", _table(app, fromdocname), format="html"))


def setup(app):
    app.add_node(claims_placeholder)
    app.add_directive("claims-table", ClaimsTable)
    app.connect("doctree-read", _collect)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("doctree-resolved", _fill)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
