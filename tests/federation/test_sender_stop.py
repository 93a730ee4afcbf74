"""The federation sender stops when cancelled, even when it is woken in the same turn.

Python 3.11's ``asyncio.wait_for`` returns normally instead of raising when the task
is cancelled while the awaited future completes: the sender's loop used to go on
forever and a server's stop waited on it for good (the suite's teardown hang).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from crypto.rng import system_rng
from federation.sender import FederationSender
from server.storage import Database

pytestmark = pytest.mark.timeout(30)


async def _parked(sender: FederationSender) -> None:
    """Until the sender's loop waits for a wake-up (it has read the empty queue)."""
    while not sender._wake._waiters:  # the only sign of a parked loop
        await asyncio.sleep(0)


async def test_sender_cancelled_as_it_is_woken_stops(tmp_path):
    db = await Database.open(tmp_path / "db.sqlite")
    try:
        # No destination is due, so the client is never used.
        sender = FederationSender(db, None, "a.test", time.time, system_rng)  # type: ignore[arg-type]
        for _ in range(5):
            task = asyncio.create_task(sender.run())
            await _parked(sender)
            sender.wake()  # a delivery ended (its finally wakes the loop) ...
            await asyncio.sleep(0)  # ... and the loop's waiter has seen it
            task.cancel()  # ... when the application stops
            done, _ = await asyncio.wait({task}, timeout=10)
            assert done == {task} and task.cancelled()
    finally:
        await db.close()
