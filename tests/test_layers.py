"""The architecture's layers, checked: ``crypto/`` and ``protocol/`` are pure.

They may import only the standard library's pure modules, each other (crypto
never imports protocol) and the pure third-party codecs and primitives
(PyNaCl, cryptography, msgpack). Any I/O library, shell package or clock
import fails this test, naming the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    # I/O and concurrency
    "asyncio", "aiohttp", "aiosqlite", "sqlite3", "socket", "ssl", "selectors", "subprocess",
    "multiprocessing", "threading", "concurrent", "http", "urllib", "requests", "io", "os",
    "pathlib", "shutil", "tempfile", "glob", "signal", "logging", "structlog",
    # clocks and hidden randomness
    "time", "datetime", "random",
    # Confide's shells
    "server", "client", "federation",
}
# `secrets` is allowed only in crypto/rng.py, the one injectable source of system randomness.
ALLOWED_EXCEPTIONS = {("crypto/rng.py", "secrets")}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _files(package: str):
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["crypto", "protocol"])
def test_pure_layers_import_no_io(package):
    bad = []
    for path in _files(package):
        rel = path.relative_to(REPO).as_posix()
        for line, name in _imports(path):
            if name in FORBIDDEN or (name == "secrets" and (rel, name) not in ALLOWED_EXCEPTIONS):
                bad.append(f"{rel}:{line} imports {name}")
            if package == "crypto" and name == "protocol":
                bad.append(f"{rel}:{line} imports protocol (crypto is the lowest layer)")
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_checker_catches_a_violation(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom aiohttp import web\nfrom .codec import Reader\n")
    assert [n for _, n in _imports(sample)] == ["os", "aiohttp"]


def _full_imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def test_federation_does_not_import_the_application_factory():
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in _files("federation")
        for line, name in _full_imports(path)
        if name == "server.app" or name.startswith("server.app.")
    ]
    assert not bad, bad
