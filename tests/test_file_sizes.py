"""No module of the five packages grows past 600 lines (issue 9: files split by
responsibility, so that each reads in one sitting)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "protocol", "crypto", "federation", "client")
MAX_LINES = 600


def test_no_module_is_longer_than_600_lines():
    long = {str(p.relative_to(REPO)): n for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these by responsibility: {long}"
