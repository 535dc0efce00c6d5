"""Notebook execution that cannot miss a kernel's reply: the book's executions poll in slices of a second
(gentools.nbexec explains the stall this prevents, and what it measured)."""
from gentools.nbexec import reliable_replies


def setup(app):
    reliable_replies()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
