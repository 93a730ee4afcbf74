"""``confide`` with a start line before its first commit, for the same-epoch race.

``RACE_DIR=D RACE_PARTIES=2 python -m tests.e2e.race_cli room rotate --profile P ROOM``
runs the CLI's ``main`` unchanged except at one point: the first commit this process
sends (a ``POST /rooms/{id}/send`` carrying a ``group_info``) waits until every party
has staged its commit and reached the same point (files ``D/ready-<pid>``), so all of
them commit in the same epoch at the same moment. The outcome of that first attempt is
written to ``D/outcome-<pid>``: ``accepted <seq>`` or ``stale_epoch``; what happens
after (catch-up, retry) is the SDK's own.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]

BARRIER_TIMEOUT = 60.0


def main(argv: list[str]) -> int:
    from client.sdk import StaleEpoch, rooms
    from server.cli import main as confide

    race = Path(os.environ["RACE_DIR"])
    parties = int(os.environ.get("RACE_PARTIES", "2"))
    original = rooms.Rooms._post
    first = [True]

    async def _post(self, room_id, body):
        if not (first[0] and body.group_info is not None):
            return await original(self, room_id, body)
        first[0] = False
        (race / f"ready-{os.getpid()}").touch()
        deadline = time.monotonic() + BARRIER_TIMEOUT
        while len(list(race.glob("ready-*"))) < parties:
            if time.monotonic() > deadline:
                raise SystemExit("race_cli: the other party never came")
            await asyncio.sleep(0.005)
        outcome = race / f"outcome-{os.getpid()}"
        try:
            out = await original(self, room_id, body)
        except StaleEpoch:
            outcome.write_text("stale_epoch")
            raise
        outcome.write_text(f"accepted {out.seq}")
        return out

    rooms.Rooms._post = _post
    return confide(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
