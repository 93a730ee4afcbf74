"""The client commands of ``confide``, on the SDK (:mod:`client.sdk`).

Commands (every one takes ``--profile DIR``, the encrypted local state; ``mfa``, ``anchor``
and ``device`` are built by :mod:`client.cli_account`)::

    confide register --server URL --invite CODE --user NAME --profile DIR [--device-name N] [--auto-join]
    confide login    --server URL --user NAME --profile DIR [--device-name N] [--anchor A] [--auto-join]
                     [--totp CODE | --recovery-code CODE]   (prompted on a TTY when needed)
    confide mfa enable  --profile DIR [--code CODE]        shows the secret, prints recovery codes
    confide mfa disable --profile DIR [--code CODE | --recovery-code CODE]
    confide anchor   --profile DIR                         this profile's trust anchor
    confide room create --profile DIR [--name N]          prints the room id
    confide room invite --profile DIR ROOM USER           adds all of USER's devices
    confide room remove --profile DIR ROOM USER
    confide room join   --profile DIR ROOM                 (a room another of your devices is in)
    confide room leave  --profile DIR ROOM
    confide room invites --profile DIR [--json]            invitations waiting for you
    confide room accept  --profile DIR ROOM                join the room of an invitation
    confide room decline --profile DIR ROOM [--stay]       forget it (and propose your removal)
    confide room auto-join --profile DIR on|off            join every invitation at once
    confide room rotate --profile DIR ROOM                 an empty commit: fresh keys
    confide room list   --profile DIR [--json]
    confide send --profile DIR ROOM TEXT | --file PATH
    confide read --profile DIR ROOM [--json] [--follow] [--timeout S]
    confide device add  --profile DIR                      add your other devices to your rooms
    confide device list --profile DIR [--json]             with alerts about your devices
    confide device pending --profile DIR [--json]          devices waiting for approval, with codes
    confide device approve --profile DIR DEVICE --code CODE    after comparing the code
    confide device reject  --profile DIR DEVICE            remove a pending device
    confide attachment get --profile DIR ROOM SEQ --out PATH

The profile passphrase comes from ``CONFIDE_PASSPHRASE`` or a prompt; the
account password from ``CONFIDE_PASSWORD`` or a prompt. (``CONFIDE_PROFILE_KDF=minimum``
makes new profiles with Argon2id's minimum limits: for tests only.)

``confide register`` takes the whole invite, ``CODE#ANCHOR``: the anchor is the hash of the
server's trust document, checked before the code is sent. ``confide login`` on a new
device needs ``--anchor`` (the invite's, or ``confide anchor`` on another device of the
account); a mismatch or a missing anchor is refused (exit 5) and leaves no profile.

A checkpoint refused during a command (a rollback, a fork, missing witness cosignatures:
``spec/client-server.md`` 13.3) is printed as a ``WARNING`` line on stderr.

``confide read`` verifies every room event with the hub's published keys; an event it
refuses (bad hub signature, unknown key id, wrong event id, broken chain) is never
printed as a message: each is one sentence on stderr, and the exit status is 5.
``confide send`` to a known room catches that room up from its history, not a full sync.

A device made by ``confide login`` waits for approval: it prints its code, and another
device of the account approves it with ``confide device approve DEVICE --code CODE``
(refused, exit 5, when the code differs). Alerts about the account's devices (a pending
device, or an active one without a valid approval chain) go to stderr in ``confide read``
and ``confide device list``.

An invitation (a Welcome) waits for ``confide room accept`` unless the profile option
``auto_join`` is on (``--auto-join`` at register or login, or ``confide room auto-join
on``); Welcomes from your own other devices join at once.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["register", "EXIT_CODES"]

#: Exit statuses of the client commands.
EXIT_CODES = {
    0: "success",
    1: "the server refused the request (its error code is printed)",
    2: "usage error",
    3: "profile error (missing, wrong passphrase, damaged)",
    4: "the server could not be reached",
    5: "verification failed (a peer's keys are not proven in the transparency log, or a room event "
       "the hub did not sign, with an unknown key id, a wrong event id or a broken chain)",
    6: "not possible with this device's state (unknown room, not a member, retries exhausted)",
}

_EPILOG = "exit codes:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_CODES.items()) + (
    "\n\nCONFIDE_PASSPHRASE: the profile passphrase (else prompted); "
    "CONFIDE_PASSWORD: the account password (else prompted)")


def _parser(sub: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help, epilog=_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", type=Path, required=True, help="the profile directory (encrypted)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = _parser(subparsers, "register", "create an account from an invite code")
    p.add_argument("--server", required=True, help="homeserver URL, e.g. http://127.0.0.1:8008")
    p.add_argument("--invite", required=True)
    p.add_argument("--user", required=True, help="the localpart to register")
    p.add_argument("--device-name", default="confide-cli",
                   help="kept in this profile only: the server stores no device name")
    p.add_argument("--auto-join", action="store_true", help="join every invitation at once")
    _profile_arg(p)
    p.set_defaults(func=_cmd(_register, needs_account=False))

    p = _parser(subparsers, "login", "log in (a new device, or this profile's device again)")
    p.add_argument("--server", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--device-name", default="confide-cli",
                   help="kept in this profile only: the server stores no device name")
    factor = p.add_mutually_exclusive_group()
    factor.add_argument("--totp", default=None, help="a current code of your authenticator app")
    factor.add_argument("--recovery-code", default=None, help="one of your unused recovery codes")
    p.add_argument("--anchor", "--log-key-fingerprint", dest="anchor", default=None,
                   help="the server's trust anchor (needed on a new device)")
    p.add_argument("--auto-join", action="store_true", help="join every invitation at once")
    _profile_arg(p)
    p.set_defaults(func=_cmd(_login, needs_account=False))

    room = _parser(subparsers, "room", "create rooms and manage their members")
    rs = room.add_subparsers(dest="room_command", required=True)
    p = _parser(rs, "create", "create a room; prints its id")
    _profile_arg(p)
    p.add_argument("--name", default=None, help="a local name (never sent to the server)")
    p.set_defaults(func=_cmd(_room_create))
    for name, fn, help in (("invite", _room_invite, "add all devices of USER"),
                           ("remove", _room_remove, "remove all devices of USER")):
        p = _parser(rs, name, help)
        _profile_arg(p)
        p.add_argument("room")
        p.add_argument("user")
        p.set_defaults(func=_cmd(fn))
    for name, fn, help in (("join", _room_join, "join a room another of your devices is in"),
                           ("leave", _room_leave, "propose your removal and forget the room's keys"),
                           ("rotate", _room_rotate, "renew this device's keys in the room"),
                           ("accept", _room_accept, "join the room of an invitation")):
        p = _parser(rs, name, help)
        _profile_arg(p)
        p.add_argument("room")
        p.set_defaults(func=_cmd(fn))
    p = _parser(rs, "invites", "list the invitations waiting for you (who invited, the members)")
    _profile_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd(_room_invites))
    p = _parser(rs, "decline", "decline an invitation: forget it and propose your removal")
    _profile_arg(p)
    p.add_argument("room")
    p.add_argument("--stay", action="store_true",
                   help="send nothing (the hub keeps counting this device, which cannot read)")
    p.set_defaults(func=_cmd(_room_decline))
    p = _parser(rs, "auto-join", "join every invitation at once (on) or wait for accept (off)")
    _profile_arg(p)
    p.add_argument("state", choices=("on", "off"))
    p.set_defaults(func=_cmd(_room_auto_join))
    p = _parser(rs, "list", "list this device's rooms")
    _profile_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd(_room_list))

    p = _parser(subparsers, "send", "send a text message or a file")
    _profile_arg(p)
    p.add_argument("room")
    p.add_argument("text", nargs="?")
    p.add_argument("--file", type=Path, default=None, help="send this file as an attachment")
    p.set_defaults(func=_cmd(_send))

    p = _parser(subparsers, "read", "sync and print a room's messages (refused events on stderr, exit 5)")
    _profile_arg(p)
    p.add_argument("room")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--follow", action="store_true", help="keep waiting for new messages")
    p.add_argument("--timeout", type=float, default=None,
                   help="with --follow: stop after this many seconds")
    p.set_defaults(func=_cmd(_read))

    att = _parser(subparsers, "attachment", "attachments")
    ats = att.add_subparsers(dest="attachment_command", required=True)
    p = _parser(ats, "get", "download and decrypt the attachment of message SEQ")
    _profile_arg(p)
    p.add_argument("room")
    p.add_argument("seq", type=int)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_cmd(_attachment_get))


# -- plumbing --------------------------------------------------------------------------------


def _secret(env: str, prompt: str) -> str:
    value = os.environ.get(env)
    if value is not None:
        return value
    return getpass.getpass(prompt)


def _kdf_limits():
    from client.profile import INTERACTIVE, MINIMUM

    return MINIMUM if os.environ.get("CONFIDE_PROFILE_KDF") == "minimum" else INTERACTIVE


def _open_profile(path: Path, create: bool):
    from client.profile import Profile

    passphrase = _secret("CONFIDE_PASSPHRASE", "Profile passphrase: ")
    if Profile.exists(path):
        return Profile.open(path, passphrase)
    if not create:
        return Profile.open(path, passphrase)  # raises ProfileMissing
    return Profile.create(path, passphrase, _kdf_limits())


def _fail(code: int, text: str) -> int:
    print(f"confide: {text}", file=sys.stderr)
    return code


def _cmd(fn: Callable[..., Awaitable[int]], needs_account: bool = True) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from client.profile import ProfileError
        from client.sdk import (
            Client,
            SdkError,
            ServerError,
            TransportError,
            TrustAnchorMismatch,
            VerificationFailed,
        )

        fresh = not needs_account and not args.profile.exists()
        try:
            profile = _open_profile(args.profile, create=not needs_account)
        except ProfileError as exc:
            return _fail(3, f"{exc.code}: {exc}")

        async def main() -> int:
            client = Client.open(profile) if needs_account else None
            seen = len(client.log_alerts()) if client is not None else 0
            try:
                rc = await fn(args, client, profile)
                # a refusal that did not fail the command (a member checked during a sync) is
                # loud all the same: the server lied about its log
                for alert in client.log_alerts()[seen:] if client is not None else ():
                    print(f"confide: WARNING: the log of {alert['origin']} was refused: "
                          f"{alert['message']}", file=sys.stderr)
                return rc
            finally:
                if client is not None:
                    await client.close()

        try:
            return asyncio.run(main())
        except ServerError as exc:
            if exc.code in _MFA_SENTENCES:
                return _fail(1, _MFA_SENTENCES[exc.code].format(profile=args.profile))
            return _fail(1, f"server refused: {exc.code} (HTTP {exc.status}): {exc.message}")
        except TransportError as exc:
            return _fail(4, f"cannot reach the server: {exc}")
        except TrustAnchorMismatch as exc:
            if fresh:  # the profile this command made holds nothing yet: leave none behind
                import shutil

                shutil.rmtree(args.profile, ignore_errors=True)
            return _fail(5, f"refused: {exc}")
        except VerificationFailed as exc:
            return _fail(5, f"verification failed: {exc}")
        except ProfileError as exc:
            return _fail(3, f"{exc.code}: {exc}")
        except SdkError as exc:
            return _fail(6, f"{exc.code}: {exc}")
        except KeyboardInterrupt:
            return 130

    return run


#: One sentence for each expected MFA refusal (the CLI's wording; the code stays in it).
_MFA_SENTENCES = {
    "mfa_required": "mfa_required: this account needs a second factor; pass --totp CODE or "
                    "--recovery-code CODE",
    "mfa_invalid": "mfa_invalid: that code is wrong or was used already; wait for the next code "
                   "of your authenticator app, or use an unused recovery code",
    "mfa_enrolment_required": "mfa_enrolment_required: your role requires multi-factor sign-in; "
                              "run `confide mfa enable --profile {profile}` first",
    "mfa_already_enabled": "mfa_already_enabled: multi-factor sign-in is on already; run "
                           "`confide mfa disable` first to enrol another authenticator",
    "mfa_not_enabled": "mfa_not_enabled: multi-factor sign-in is not on for this account",
}


def _ask(prompt: str) -> str | None:
    """A line from the terminal, or None when stdin is not one."""
    if not sys.stdin.isatty():
        return None
    return input(prompt).strip()


# -- commands ---------------------------------------------------------------------------------


async def _register(args, _client, profile) -> int:
    from client.sdk import Client

    password = _secret("CONFIDE_PASSWORD", "Password: ")
    client = await Client.register(profile, args.server, args.invite, args.user, password,
                                   device_name=args.device_name)
    try:
        if args.auto_join:
            client.set_auto_join(True)
        print(f"registered {client.user_id} device {client.device_id}")
        _enrolment_hint(client, args.profile)
    finally:
        await client.close()
    return 0


async def _login(args, _client, profile) -> int:
    from client.sdk import Client, ServerError

    password = _secret("CONFIDE_PASSWORD", "Password: ")
    totp, recovery = args.totp, args.recovery_code
    try:
        client = await Client.login(profile, args.server, args.user, password,
                                    device_name=args.device_name, totp=totp, recovery_code=recovery,
                                    anchor=args.anchor)
    except ServerError as exc:
        asked = _ask("Code from your authenticator app: ") if exc.code == "mfa_required" else None
        if not asked:
            raise
        if len(asked) > 8:  # longer than a TOTP code: a recovery code
            totp, recovery = None, asked
        else:
            totp = asked
        client = await Client.login(profile, args.server, args.user, password,
                                    device_name=args.device_name, totp=totp, recovery_code=recovery,
                                    anchor=args.anchor)
    try:
        if args.auto_join:
            client.set_auto_join(True)
        print(f"logged in {client.user_id} device {client.device_id}")
        _enrolment_hint(client, args.profile)
        if await client.is_pending():
            print(f"this device waits for approval; its code is {client.own_code}")
            print(f"on another of your devices: confide device approve --profile DIR "
                  f"{client.device_id} --code '{client.own_code}' (only if it shows the same code)")
    finally:
        await client.close()
    return 0


def _enrolment_hint(client, profile: Path) -> None:
    if client.mfa_enrolment_required:
        print(f"your role requires multi-factor sign-in: run `confide mfa enable --profile {profile}` "
              "before anything else", file=sys.stderr)


async def _room_create(args, client, _profile) -> int:
    print(await client.create_room(args.name))
    return 0


async def _room_invite(args, client, _profile) -> int:
    await client.sync()
    added = await client.invite(args.room, args.user)
    print(f"added {len(added)} device(s) of {args.user}")
    return 0


async def _room_remove(args, client, _profile) -> int:
    await client.sync()
    n = await client.remove_member(args.room, args.user)
    print(f"removed {n} device(s) of {args.user}")
    return 0


async def _room_join(args, client, _profile) -> int:
    epoch = await client.join_external(args.room)
    print(f"joined {args.room} at epoch {epoch}")
    return 0


async def _room_leave(args, client, _profile) -> int:
    await client.sync()
    await client.leave(args.room)
    print(f"left {args.room} (the removal completes with another member's next commit)")
    return 0


async def _room_invites(args, client, _profile) -> int:
    await _drain(client)
    for inv in client.invites():
        if args.json:
            print(json.dumps({"room_id": inv.room_id, "inviter": inv.inviter,
                              "inviter_user": inv.inviter_user, "epoch": inv.epoch,
                              "members": inv.members}))
        else:
            print(f"{inv.room_id} from {inv.inviter_user} ({len(inv.members)} members)")
    if not client.invites() and not args.json:
        print("no invitations")
    return 0


async def _room_accept(args, client, _profile) -> int:
    await _drain(client)
    await client.accept(args.room)
    print(f"joined {args.room}")
    return 0


async def _room_decline(args, client, _profile) -> int:
    await _drain(client)
    await client.decline(args.room, leave=not args.stay)
    print(f"declined {args.room}")
    return 0


async def _room_auto_join(args, client, _profile) -> int:
    client.set_auto_join(args.state == "on")
    print(f"auto-join {args.state}")
    return 0


async def _room_rotate(args, client, _profile) -> int:
    await client.sync()
    epoch = await client.rotate_keys(args.room)
    print(f"new keys in epoch {epoch}")
    return 0


async def _room_list(args, client, _profile) -> int:
    await client.sync()
    rooms = client.rooms()
    if args.json:
        for r in rooms:
            print(json.dumps({"room_id": r.room_id, "name": r.name, "status": r.status.value,
                              "epoch": r.epoch, "members": list(r.members)}))
    else:
        for r in rooms:
            name = f" ({r.name})" if r.name else ""
            print(f"{r.room_id}{name} {r.status.value} epoch {r.epoch} members {len(r.members)}")
    return 0


async def _send(args, client, _profile) -> int:
    if (args.text is None) == (args.file is None):
        return _fail(2, "give either TEXT or --file")
    if client.store.has_room(args.room):
        await client.catch_up(args.room)  # that room only, so members just added can read it
    else:
        await client.sync()  # its Welcome may be waiting in the inbox
    if args.file is not None:
        seq = await client.send_attachment(args.room, args.file.read_bytes(), args.file.name)
    else:
        seq = await client.send_text(args.room, args.text)
    print(f"sent as event {seq}")
    return 0


def _jsonable(m) -> dict[str, Any]:
    """A :class:`~client.sdk.messages.RoomMessage` as JSON: its record, bytes in base64."""
    return {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
            for k, v in m.to_record().items()}


def _line(m) -> str:
    from client.sdk.messages import (
        AttachmentMessage,
        MembershipMessage,
        RefusedMessage,
        TextMessage,
    )

    when = datetime.datetime.fromtimestamp(m.ts / 1000).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(m, RefusedMessage):
        return f"[{m.seq}] {when} refused: verification failure: {m.detail}"
    if isinstance(m, TextMessage):
        what = m.body
    elif isinstance(m, AttachmentMessage):
        what = f"[attachment {m.name}, {m.size} bytes; confide attachment get ... {m.seq}]"
    elif isinstance(m, MembershipMessage):
        parts = [f"added {', '.join(m.added)}" if m.added else "",
                 f"removed {', '.join(m.removed)}" if m.removed else ""]
        what = "* " + "; ".join(p for p in parts if p)
    else:
        what = f"[{m.type.value}]"
    return f"[{m.seq}] {when} {m.sender_user}: {what}"


async def _drain(client) -> None:
    """Sync until the server has nothing more right now."""
    for _ in range(1000):
        result = await client.sync(0)
        if not result.messages and not result.joined and not result.raw_count:
            return


async def _read(args, client, _profile) -> int:
    import time

    await _drain(client)
    client.store.room(args.room)  # UnknownRoom if this device never joined it
    shown = -1

    def show() -> None:
        nonlocal shown
        for m in client.messages(args.room, shown):
            print(json.dumps(_jsonable(m)) if args.json else _line(m), flush=True)
            shown = m.seq

    reported: set[str] = set()

    def refusals() -> int:
        """Each refused event of the room, once, as one sentence on stderr; 5 if any."""
        from client.sdk.messages import RefusedMessage

        sentences = [r.sentence() for r in client.room(args.room).refused]
        sentences += [m.sentence() for m in client.messages(args.room) if isinstance(m, RefusedMessage)]
        for s in sentences:
            if s not in reported:
                reported.add(s)
                print(f"confide: verification failed: {s}", file=sys.stderr, flush=True)
        return 5 if reported else 0

    show()
    _show_alerts(client)
    if not args.follow:
        for w in client.room(args.room).warnings:
            print(f"warning: {w}", file=sys.stderr)
        return refusals()
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    refusals()
    while deadline is None or time.monotonic() < deadline:
        left = 25.0 if deadline is None else max(0.0, min(25.0, deadline - time.monotonic()))
        await client.sync(int(left * 1000))
        show()
        refusals()
    return refusals()


def _show_alerts(client) -> None:
    for alert in client.alerts():
        print(f"confide: {alert}", file=sys.stderr)


async def _attachment_get(args, client, _profile) -> int:
    await client.sync()
    from client.sdk.messages import AttachmentMessage

    match = [m for m in client.messages(args.room) if m.seq == args.seq and isinstance(m, AttachmentMessage)]
    if not match:
        return _fail(6, f"no attachment at event {args.seq} in {args.room}")
    args.out.write_bytes(await client.download_attachment(match[0]))
    print(f"wrote {args.out}")
    return 0
