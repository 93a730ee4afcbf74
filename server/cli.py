"""The ``confide`` command: one entry point, each sub-command in its own module.

Each module listed in :data:`COMMANDS` exposes ``register(subparsers)``, which
adds its sub-command(s) with ``set_defaults(func=...)``; ``func(args)`` returns
the exit status. Modules are imported lazily so that a client-only command
never loads the server: :data:`COMMAND_MODULES` names, for each top-level
sub-command, the module(s) that build it, and only those are imported when
the command line names one of them (``confide serve`` does not load the
client SDK, the demo or the interop tools). Anything else (``--help``, no
command, a command missing from the map) builds the whole parser.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "COMMANDS", "COMMAND_MODULES", "build_parser"]

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
    "client.cli_account",
    "client.demo",
)


_CLIENT_COMMANDS = ("register", "login", "room", "send", "read", "attachment")
_ACCOUNT_COMMANDS = ("mfa", "anchor", "device")

#: Top-level sub-command -> the modules of :data:`COMMANDS` that register it (in that order).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "conformance": ("client.conformance",),
    "audit": ("client.audit_cli",),
    "interop": ("client.interop",),
    "mls-driver": ("client.mls_driver",),
    "serve": ("server.cli_serve",),
    "admin": ("server.cli_admin", "federation.cli"),
    "demo": ("client.demo",),
    **{name: ("client.cli_client",) for name in _CLIENT_COMMANDS},
    **{name: ("client.cli_account",) for name in _ACCOUNT_COMMANDS},
}


def build_parser(modules: tuple[str, ...] = COMMANDS) -> argparse.ArgumentParser:
    """The parser with the sub-commands of ``modules`` (all of :data:`COMMANDS` by default)."""
    parser = argparse.ArgumentParser(prog="confide", description="Confide homeserver and tools")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command module not built yet
        module.register(sub)
    return parser


def _modules_for(argv: list[str]) -> tuple[str, ...]:
    """The modules needed for ``argv``: those of its command, or all of them."""
    if argv and not argv[0].startswith("-"):
        return COMMAND_MODULES.get(argv[0], COMMANDS)
    return COMMANDS


#: Options whose value may begin with "-" (a trust anchor is base64url): their next word is
#: always their value, as if written ``--anchor=VALUE``.
_VALUE_MAY_START_WITH_DASH = ("--anchor", "--log-key-fingerprint")


def _join_dash_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word in _VALUE_MAY_START_WITH_DASH:
            value = next(words, None)
            out.append(word if value is None else f"{word}={value}")
        else:
            out.append(word)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = _join_dash_values(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_modules_for(argv))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
