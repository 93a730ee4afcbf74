"""The ``confide`` command: one entry point, each sub-command in its own module.

Each module listed in :data:`COMMANDS` exposes ``register(subparsers)``, which
adds its sub-command(s) with ``set_defaults(func=...)``; ``func(args)`` returns
the exit status. Modules are imported lazily so that a client-only command
never loads the server.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "COMMANDS"]

#: Modules that contribute sub-commands, in help order.
COMMANDS = (
    "client.conformance",
    "client.audit_cli",
    "client.interop",
    "client.mls_driver",
    "server.cli_serve",
    "server.cli_admin",
    "federation.cli",
    "client.cli_client",
    "client.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="confide", description="Confide homeserver and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command module not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
