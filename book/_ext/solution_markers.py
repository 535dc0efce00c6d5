"""The website shows an exercise's answer without nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` lines.

Those markers are for nbgrader (the student edition replaces what lies between them); to a reader of the website
they are noise inside the collapsed answer. The notebooks, and so the student and instructor editions, keep them.
"""
import re

from docutils import nodes

MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)


def _hide_markers(app, doctree):
    for block in list(doctree.findall(nodes.literal_block)):
        text = block.astext()
        if "### BEGIN SOLUTION" in text or "### END SOLUTION" in text:
            cleaned = MARKER.sub("", text)
            block.replace_self(block.__class__(cleaned, cleaned, **block.attributes))


def setup(app):
    app.connect("doctree-read", _hide_markers)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
