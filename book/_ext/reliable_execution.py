"""Notebook execution that cannot miss a kernel's reply.

The book's notebooks run through nbclient, whose asyncio ZeroMQ channels (jupyter_client) wait for a reply with one
poll for the whole cell timeout. Intermittently, most often right after a cell that opens many widget comms, that
poll misses the socket's readiness (ZeroMQ signals readiness by edge, and the edge can be consumed elsewhere): the
reply sits unread, the kernel is idle, and execution resumes only when the poll times out, after the whole cell
timeout (300 s in the tests, 30 minutes in the book build), as if the cell had stalled (nbclient issue 312).
Measured here: 1 stall in 30 runs of a widget cell beside a busy core, about as long as the timeout.

This extension makes every wait poll in slices of at most a second and check the socket's readiness level after
each, so a missed edge costs at most a second. It changes nothing else.
"""
from __future__ import annotations

import time
from queue import Empty

import zmq
from jupyter_client.channels import AsyncZMQSocketChannel

SLICE_S = 1.0


async def _get_msg(self, timeout: float | None = None):
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        wait = SLICE_S if left is None else min(SLICE_S, left)
        if await self.socket.poll(int(wait * 1000)) or self.socket.get(zmq.EVENTS) & zmq.POLLIN:
            return await self._recv()
        if left is not None and left <= wait:
            raise Empty


def setup(app):
    AsyncZMQSocketChannel.get_msg = _get_msg
    return {"parallel_read_safe": True, "parallel_write_safe": True}
