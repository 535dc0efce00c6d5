"""Buttons that need the public repository appear only once its address is set.

`repository.url` in _config.yml is the one place that holds the address. While it is empty, the Colab and Binder
launch buttons are left out (they would point nowhere) and so is the repository button; the download button
(.ipynb) stays. Set the address and both appear.
"""


def _buttons_follow_the_address(app, config):
    options = config.html_theme_options
    published = bool(options.get("repository_url"))
    options["use_repository_button"] = published
    if not published:
        options["launch_buttons"] = {}


def setup(app):
    app.connect("config-inited", _buttons_follow_the_address)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
