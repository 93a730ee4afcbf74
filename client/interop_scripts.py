"""The IETF interop scripts of ``confide interop``: where they are, how they load, and which
implementation plays each actor (an *assignment*, see :mod:`client.interop`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .interop_driver import REPO

__all__ = ["ASSIGNMENTS", "configs_dir", "load_script_file", "actors_of", "assign"]

ASSIGNMENTS = ("all-confide", "all-ts-mls", "alternating", "ts-mls-as-creator")


def configs_dir() -> Path:
    """$CONFIDE_VECTORS/mls-interop/configs, else ../shared/vectors/mls-interop/configs."""
    env = os.environ.get("CONFIDE_VECTORS")
    root = Path(env) if env else REPO.parent / "shared" / "vectors"
    return root / "mls-interop" / "configs"


def _lower_keys(value):
    if isinstance(value, dict):
        return {k.lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def load_script_file(folder: Path, name: str) -> dict[str, list[dict]]:
    """The scripts of ``<folder>/<name>.json``, step keys lower-cased (Go matches them so)."""
    data = json.loads((folder / f"{name}.json").read_text())
    return {script: _lower_keys(steps) for script, steps in data["scripts"].items()}


_ACTOR_KEYS = ("actor", "members", "joiners", "joiner", "signer", "clients", "proposer",
               "committer", "welcomer", "member")


def actors_of(steps: list[dict]) -> list[str]:
    """Every actor name of a script, in order of first appearance."""
    seen: dict[str, None] = {}
    for step in steps:
        for key in _ACTOR_KEYS:
            value = step.get(key)
            for name in value if isinstance(value, list) else [value] if value else []:
                seen.setdefault(name, None)
    return list(seen)


def assign(assignment: str, actors: list[str]) -> dict[str, str]:
    """Actor -> implementation name for one of :data:`ASSIGNMENTS`."""
    if assignment == "all-confide":
        return dict.fromkeys(actors, "confide")
    if assignment == "all-ts-mls":
        return dict.fromkeys(actors, "ts-mls")
    if assignment == "alternating":
        return {a: ("confide", "ts-mls")[i % 2] for i, a in enumerate(actors)}
    if assignment == "ts-mls-as-creator":
        return {a: "ts-mls" if i == 0 else "confide" for i, a in enumerate(actors)}
    raise ValueError(f"unknown assignment {assignment!r}")

