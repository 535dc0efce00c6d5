"""Include every script of a page once.

sphinx-thebe registers its inline configuration (`const THEBE_JS_URL = ...`) a second time when Jupyter Book
reads the sources in two passes; the second `const` is a SyntaxError in the reader's console. We do not use
Thebe's live code, so keeping the first copy of each script changes nothing else.
"""


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted((getattr(script, "attributes", None) or {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
