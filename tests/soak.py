"""``make soak``: the two-server and end-to-end tests, run over and over under CPU load.

``python -m tests.soak [--runs N] [--burners K] [PYTEST PATHS...]`` starts K busy-loop
processes (each exits by itself once this process is gone, even after a SIGKILL), then
runs ``pytest -x`` on the paths N times in a row and stops at the first failing run.
It prints one line per run (its number, its status, its seconds) and a summary line;
the exit status is 0 when every run passed, else that of the failing run. The busy
loops (and a suite run still going) are killed on every way out (success, failure,
SIGINT, SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main", "SOAK_PATHS"]

REPO = Path(__file__).resolve().parent.parent

#: What ``make soak`` runs: in-process two-server rooms, two-process federation, end to end
#: (which includes the SIGTERM tests of ``tests/e2e/test_shutdown.py``).
SOAK_PATHS = (
    "tests/federation/test_rooms_two_servers.py",
    "tests/federation/test_net_processes.py",
    "tests/federation/test_net_rooms.py",
    "tests/e2e",
)

#: A busy loop that ends when its parent (this process) is gone.
_BURNER = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    pass\n"


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--burners", type=int, default=2, help="busy-loop processes")
    parser.add_argument("paths", nargs="*", default=list(SOAK_PATHS))
    args = parser.parse_args(argv)

    def terminated(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    burners = [subprocess.Popen([sys.executable, "-c", _BURNER]) for _ in range(args.burners)]
    started = time.monotonic()
    passed = 0
    suite: list[subprocess.Popen] = []
    try:
        for run in range(1, args.runs + 1):
            begin = time.monotonic()
            suite[:] = [subprocess.Popen([sys.executable, "-m", "pytest", "-x", "-q",
                                          "-p", "no:cacheprovider", *args.paths], cwd=REPO)]
            status = suite[0].wait()
            took = time.monotonic() - begin
            print(f"soak: run {run}/{args.runs} {'passed' if status == 0 else 'FAILED'} "
                  f"({took:.0f} s)", flush=True)
            if status != 0:
                return status
            passed += 1
        return 0
    finally:
        _stop(suite + burners)
        print(f"soak: {passed}/{args.runs} runs passed under {args.burners} busy loops in "
              f"{time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
