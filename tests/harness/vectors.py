"""The spec's committed test vectors stay what their generators build."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["assert_vectors_current"]


def assert_vectors_current(directory: Path, module_name: str) -> None:
    """Every file ``directory/generate.py`` builds equals the committed one (loaded as
    ``module_name``); a stale one fails naming it."""
    spec = importlib.util.spec_from_file_location(module_name, directory / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, obj in gen.build().items():
        assert (directory / name).read_text() == gen.render(obj), f"{name} is stale: rerun generate.py"
