"""The build log says only what happens: myst-nb announces a jupyter-cache folder even when notebooks are executed
afresh (`execute_notebooks: force`), which never creates one. That line is dropped; nothing else is."""
import logging


class _NoUnusedCache(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("Using jupyter-cache at:")


def _quiet_when_no_cache(app, config):
    if config.nb_execution_mode != "cache":
        logging.getLogger("sphinx.myst_nb.sphinx_ext").addFilter(_NoUnusedCache())


def setup(app):
    app.connect("config-inited", _quiet_when_no_cache)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
