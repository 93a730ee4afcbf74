"""A sender loop for the crash test: ``confide send`` run back to back in one process.

``python -m tests.e2e.send_loop --profile DIR ROOM PREFIX COUNT`` calls the CLI's
``main(["send", "--profile", DIR, ROOM, "PREFIX NNN"])`` for NNN = 000, 001, ... and
prints one line per attempt, flushed at once::

    TRY NNN                  before the attempt
    ACK NNN SEQ              the command printed "sent as event SEQ" (exit status 0)
    FAIL NNN STATUS ERROR    any other outcome; the loop ends

The commands are exactly the CLI's; only the process start-up is saved between sends,
so that a burst is dense enough for a SIGKILL of the server to land inside requests.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys

__all__ = ["main"]


def main(argv: list[str]) -> int:
    from server.cli import main as confide

    profile, room, prefix, count = argv[1], argv[2], argv[3], int(argv[4])
    assert argv[0] == "--profile"
    for i in range(count):
        print(f"TRY {i:03d}", flush=True)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = confide(["send", "--profile", profile, room, f"{prefix} {i:03d}"])
        m = re.fullmatch(r"sent as event (\d+)\n", out.getvalue())
        if status == 0 and m:
            print(f"ACK {i:03d} {m.group(1)}", flush=True)
        else:
            print(f"FAIL {i:03d} {status} {err.getvalue().strip()!r}", flush=True)
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
