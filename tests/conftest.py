"""Shared fixtures: where the IETF vectors live.

Vectors are read from ``$CONFIDE_VECTORS``, else from ``../shared/vectors``
beside the repository; never copied into it. Tests that need them skip with
that reason when neither exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def vectors_dir() -> Path | None:
    env = os.environ.get("CONFIDE_VECTORS")
    if env:
        return Path(env) if Path(env).is_dir() else None
    default = REPO.parent / "shared" / "vectors"
    return default if default.is_dir() else None


def load_vectors(relpath: str) -> list:
    """The JSON array in ``<vectors>/<relpath>``, or [] when the vectors are absent."""
    root = vectors_dir()
    if root is None or not (root / relpath).is_file():
        return []
    return json.loads((root / relpath).read_text())


def vector_params(relpath: str, suites: tuple[int, ...] | None = (1, 3)) -> list:
    """pytest params, one per case; unsupported suites are marked skipped with the reason."""
    cases = load_vectors(relpath)
    if not cases:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"vectors not found: {relpath} "
                             "(set CONFIDE_VECTORS or place ../shared/vectors)"))]
    out = []
    for i, case in enumerate(cases):
        suite = case.get("cipher_suite") if isinstance(case, dict) else None
        marks = ()
        if suites is not None and suite is not None and suite not in suites:
            marks = pytest.mark.skip(reason=f"suite {suite} not supported")
        out.append(pytest.param(case, id=f"{i}-s{suite}" if suite else str(i), marks=marks))
    return out
