"""``server.cli`` imports only the module(s) of the command named (``COMMAND_MODULES``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from server import cli


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no sub-commands")


def test_the_map_covers_every_command_and_only_known_modules():
    full = _choices(cli.build_parser())
    assert set(full) == set(cli.COMMAND_MODULES)
    assert all(m in cli.COMMANDS for mods in cli.COMMAND_MODULES.values() for m in mods)


@pytest.mark.parametrize("name", sorted(cli.COMMAND_MODULES))
def test_each_command_builds_from_its_own_modules_alone(name):
    full = _choices(cli.build_parser())
    alone = _choices(cli.build_parser(cli._modules_for([name, "--help"])))
    assert name in alone
    # The same sub-commands below it (e.g. admin's, from two modules).
    assert _choices_or_none(alone[name]) == _choices_or_none(full[name])


def _choices_or_none(parser: argparse.ArgumentParser) -> set[str] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return None


def test_help_and_unknown_commands_build_everything():
    assert cli._modules_for([]) == cli.COMMANDS
    assert cli._modules_for(["--help"]) == cli.COMMANDS
    assert cli._modules_for(["no-such-command"]) == cli.COMMANDS


def test_serve_does_not_import_the_client_tools():
    code = ("import sys; from server import cli\n"
            "cli.build_parser(cli._modules_for(['serve']))\n"
            "bad = [m for m in ('client.demo', 'client.interop', 'client.cli_client', "
            "'client.mls_driver') if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(cli.__file__).resolve().parents[1]))
    assert out.stdout.strip() == ""


def test_an_anchor_that_begins_with_a_dash_is_a_value_not_an_option():
    anchor = "-" + "A" * 42  # base64url: one anchor in 64 begins with "-"
    argv = cli._join_dash_values(["login", "--server", "http://x", "--user", "u", "--anchor",
                                  anchor, "--profile", "p"])
    args = cli.build_parser(cli.COMMAND_MODULES["login"]).parse_args(argv)
    assert args.anchor == anchor and str(args.profile) == "p"
