"""The architecture's layers, checked.

- ``crypto/`` and ``protocol/`` are pure. They may import only the standard
  library's pure modules, each other (crypto never imports protocol) and the
  pure third-party codecs and primitives (PyNaCl, cryptography, msgpack). Any
  I/O library, shell package or clock import fails this test, naming the file
  and line.
- One composition root: only ``server/app.py`` (and the standalone log server's
  ``server/translog/devserver.py``) constructs services (the
  classes held under an AppKey, and a few building blocks); any other module
  of the shells that calls one fails, naming the file and line; the root sets
  no attribute of what it built (no wiring after construction).
- No runtime import cycle between ``server/`` and ``federation/``: the graph of
  the imports that run when a module is imported (module and class bodies, not
  functions, not ``if TYPE_CHECKING``) has no strongly connected component
  holding modules of both.

Each check is also run on a synthetic violation, so it is shown to fail.
"""

from __future__ import annotations

import ast
import builtins
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


def _files(package: str, root: Path = REPO):
    return sorted((root / package).rglob("*.py"))


def purity_violations(package: str, root: Path = REPO) -> list[str]:
    bad = []
    for path in _files(package, root):
        rel = path.relative_to(root).as_posix()
        for line, name in _imports(path):
            if name in FORBIDDEN or (name == "secrets" and (rel, name) not in ALLOWED_EXCEPTIONS):
                bad.append(f"{rel}:{line} imports {name}")
            if package == "crypto" and name == "protocol":
                bad.append(f"{rel}:{line} imports protocol (crypto is the lowest layer)")
    return bad


@pytest.mark.parametrize("package", ["crypto", "protocol"])
def test_pure_layers_import_no_io(package):
    bad = purity_violations(package)
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


# -- one composition root ------------------------------------------------------------------

#: The modules allowed to construct services: the homeserver's composition root, and the
#: standalone log server's (its own program: one log and its witness, for tests and demos).
COMPOSITION_ROOTS = {"server/app.py", "server/translog/devserver.py"}
#: Shell packages scanned for service construction (tests/ and bench/ build their own).
SHELLS = ("server", "federation", "client", "protocol", "crypto")
#: Types under an AppKey that are not services built from collaborators: the configuration
#: and the storage handles, which the offline tools (admin CLI, log devserver) open too.
NOT_SERVICES = {"Config", "Database", "TransparencyLog"}
#: Services built only by the root that no AppKey holds.
MORE_SERVICES = {"Discovery", "ReplayCache", "LoginLimiter", "FailureWindow", "Witness",
                 "ClaimLimiter", "TokenBucket", "DeviceShare", "ByteMeter"}
#: Class methods that construct their class (``await ServerKeyring.open(...)``).
FACTORIES = {"open"}


def _app_key_types(root: Path) -> set[str]:
    """The classes stored under ``web.AppKey(name, Class)`` in the two appkeys modules."""
    out = set()
    for rel in ("server/appkeys.py", "federation/appkeys.py"):
        for node in ast.walk(ast.parse((root / rel).read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "AppKey" and len(node.args) == 2
                    and isinstance(node.args[1], ast.Name)
                    and not hasattr(builtins, node.args[1].id)):  # e.g. an AppKey of bytes
                out.add(node.args[1].id)
    return out


def service_classes(root: Path = REPO) -> set[str]:
    return (_app_key_types(root) - NOT_SERVICES) | MORE_SERVICES


def constructions(path: Path, services: set[str]):
    """``(line, class)`` for every call in ``path`` that builds one of ``services``: ``Cls(...)``,
    ``module.Cls(...)``, ``Cls.open(...)``, also under an ``import ... as`` alias."""
    tree = ast.parse(path.read_text(), filename=str(path))
    alias = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                alias[a.asname or a.name] = a.name
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and alias.get(f.id, f.id) in services:
            yield node.lineno, alias.get(f.id, f.id)
        elif isinstance(f, ast.Attribute) and f.attr in services:
            yield node.lineno, f.attr
        elif (isinstance(f, ast.Attribute) and f.attr in FACTORIES and isinstance(f.value, ast.Name)
              and alias.get(f.value.id, f.value.id) in services):
            yield node.lineno, f"{alias.get(f.value.id, f.value.id)}.{f.attr}"


def construction_violations(root: Path, services: set[str]) -> list[str]:
    bad = []
    for package in SHELLS:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel in COMPOSITION_ROOTS:
                continue
            bad += [f"{rel}:{line} builds {name}" for line, name in constructions(path, services)]
    return bad


def test_the_service_set_names_the_services():
    services = service_classes()
    assert {"Hub", "RoomFederation", "ForwardedSends", "Delivery", "Sessions", "Accounts",
            "Devices", "KeyDirectory", "AuditTrail", "FederationSender", "TransactionReceiver",
            "ServerKeyring", "FederationClient", "PeerKeys", "RequestVerifier", "Witnessing",
            "Wakeups", "BlobStore"} <= services


def test_services_are_built_only_by_the_composition_root():
    bad = construction_violations(REPO, service_classes())
    assert not bad, "services built outside the composition root:\n" + "\n".join(bad)
    built = {name for _, name in constructions(REPO / "server/app.py", service_classes())}
    assert {"Hub", "RoomFederation", "Delivery", "ServerKeyring.open"} <= built


def test_construction_check_catches_a_service_built_elsewhere(tmp_path):
    (tmp_path / "server" / "rooms").mkdir(parents=True)
    (tmp_path / "server" / "app.py").write_text("from server.rooms.hub import Hub\nHub(1)\n")
    (tmp_path / "server" / "rooms" / "x.py").write_text(
        "from server.rooms.hub import Hub as H\nfrom server import hub\n"
        "from federation.keyring import ServerKeyring\n"
        "def f(db, audit):\n    H(db)\n    hub.Hub(db)\n    ServerKeyring.open(db)\n"
        "    ServerKeyring.current(db)\n    Hubs(db)\n")
    bad = construction_violations(tmp_path, {"Hub", "ServerKeyring"})
    assert bad == ["server/rooms/x.py:5 builds Hub", "server/rooms/x.py:6 builds Hub",
                   "server/rooms/x.py:7 builds ServerKeyring.open"]


def setters(path: Path) -> list[int]:
    """Lines that assign an attribute (``hub.federation = rooms``): wiring after construction."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        for target in targets:
            if any(isinstance(t, ast.Attribute) for t in ast.walk(target)):
                out.append(node.lineno)
    return out


def test_the_composition_root_sets_nothing_after_construction():
    for rel in sorted(COMPOSITION_ROOTS):
        assert setters(REPO / rel) == [], f"{rel} sets attributes of built services"


def test_setter_check_catches_wiring_after_construction(tmp_path):
    sample = tmp_path / "app.py"
    sample.write_text("hub = Hub(db)\napp[HUB] = hub\nhub.federation = rooms\n"
                      "app[DELIVERY].federation, x = rooms, 1\n")
    assert setters(sample) == [3, 4]


# -- no runtime import cycle between server/ and federation/ ------------------------------

GRAPH_PACKAGES = ("server", "federation", "client", "protocol", "crypto")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(tree: ast.Module):
    """Import statements run when the module is imported: not in functions, not under
    ``if TYPE_CHECKING``."""
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the repository modules its import runs (each named module and, as Python
    imports them first, its parent packages)."""
    files = {_module_name(root, p): p for pkg in GRAPH_PACKAGES if (root / pkg).is_dir()
             for p in (root / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = []
        for node in _runtime_imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.append(base)
            targets += [f"{base}.{a.name}" for a in node.names]
        edges = set()
        for target in targets:
            parts = target.split(".")
            edges |= {m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
                      if m in files and m != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(component)
    return out


def cross_package_cycles(root: Path) -> list[list[str]]:
    return [sorted(c) for c in cycles(import_graph(root))
            if {m.split(".")[0] for m in c} >= {"server", "federation"}]


def test_no_runtime_import_cycle_between_server_and_federation():
    graph = import_graph(REPO)
    # the graph is real: both directions exist, just not in a cycle
    assert "federation.rooms" in graph["server.app"] and "server.rooms.hub" in graph["federation.forwarded"]
    assert not cross_package_cycles(REPO)


def test_cycle_check_catches_a_cycle_across_the_packages(tmp_path):
    for rel, text in {
        "server/__init__.py": "", "server/rooms/__init__.py": "",
        "server/rooms/hub.py": "from federation.rooms import RoomFederation\n",
        "federation/__init__.py": "from .setup import setup\n",
        "federation/setup.py": "import asyncio\n",
        "federation/rooms.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                               "    from server.app import App\n"
                               "def f():\n    from server.rooms import hub\n",
        "server/app.py": "from federation.rooms import RoomFederation\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert not cross_package_cycles(tmp_path)  # deferred and type-only imports do not count
    # federation's package init runs setup, which imports the hub, which imports federation
    (tmp_path / "federation/setup.py").write_text("from server.rooms import hub\n")
    assert cross_package_cycles(tmp_path) == [["federation", "federation.setup", "server.rooms.hub"]]


# -- crypto/ and protocol/ stay pure, and the purity check itself can fail ------------------

def test_purity_check_catches_io_in_a_pure_layer(tmp_path):
    (tmp_path / "crypto").mkdir()
    (tmp_path / "crypto" / "bad.py").write_text("import asyncio\nfrom protocol.ids import UserId\n")
    (tmp_path / "protocol").mkdir()
    (tmp_path / "protocol" / "fine.py").write_text("from crypto.primitives import sha256\n")
    assert purity_violations("crypto", tmp_path) == [
        "crypto/bad.py:1 imports asyncio",
        "crypto/bad.py:2 imports protocol (crypto is the lowest layer)"]
    assert purity_violations("protocol", tmp_path) == []
