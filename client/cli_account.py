"""``confide mfa``, ``confide anchor`` and ``confide device``: this account's second factor,
trust anchor and devices (the command-line conventions of :mod:`client.cli_client`).

Commands (every one takes ``--profile DIR``)::

    confide mfa enable  --profile DIR [--code CODE]        shows the secret, prints recovery codes
    confide mfa disable --profile DIR [--code CODE | --recovery-code CODE]
    confide anchor   --profile DIR                         this profile's trust anchor
    confide device add|list|pending --profile DIR
    confide device approve --profile DIR DEVICE --code CODE
    confide device reject --profile DIR DEVICE
"""

from __future__ import annotations

import argparse
import base64
import json
import sys

from client.cli_client import _ask, _cmd, _fail, _parser, _profile_arg, _show_alerts

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    mfa = _parser(subparsers, "mfa", "multi-factor sign-in (TOTP authenticator, recovery codes)")
    ms = mfa.add_subparsers(dest="mfa_command", required=True)
    p = _parser(ms, "enable", "enrol an authenticator app; prints your recovery codes once")
    _profile_arg(p)
    p.add_argument("--code", default=None, help="the app's current code (else asked for)")
    p.set_defaults(func=_cmd(_mfa_enable))
    p = _parser(ms, "disable", "turn multi-factor sign-in off")
    _profile_arg(p)
    factor = p.add_mutually_exclusive_group()
    factor.add_argument("--code", default=None, help="the app's current code (else asked for)")
    factor.add_argument("--recovery-code", default=None)
    p.set_defaults(func=_cmd(_mfa_disable))

    p = _parser(subparsers, "anchor", "print this profile's trust anchor (for another device's login)")
    _profile_arg(p)
    p.set_defaults(func=_cmd(_anchor))

    dev = _parser(subparsers, "device", "this account's devices")
    ds = dev.add_subparsers(dest="device_command", required=True)
    p = _parser(ds, "add", "add your other devices (proven in the log) to your rooms")
    _profile_arg(p)
    p.set_defaults(func=_cmd(_device_add))
    p = _parser(ds, "list", "list your account's devices (alerts on stderr)")
    _profile_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd(_device_list))
    p = _parser(ds, "pending", "list your devices waiting for approval, with their codes")
    _profile_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd(_device_pending))
    p = _parser(ds, "approve", "approve a pending device after comparing its code")
    _profile_arg(p)
    p.add_argument("device")
    p.add_argument("--code", required=True, help="the code the new device shows")
    p.set_defaults(func=_cmd(_device_approve))
    p = _parser(ds, "reject", "remove a pending device you did not sign in on")
    _profile_arg(p)
    p.add_argument("device")
    p.set_defaults(func=_cmd(_device_reject))


async def _mfa_enable(args, client, _profile) -> int:
    begun = await client.mfa_begin()
    print(f"secret: {begun.secret}", flush=True)
    print(f"uri: {begun.otpauth_uri}", flush=True)
    print("add it to your authenticator app (scan the URI or type the secret)", flush=True)
    code = args.code
    if code is None:
        print("code: ", end="", flush=True)
        code = sys.stdin.readline().strip()
    if not code:
        return _fail(2, "no code given; run `confide mfa enable` again with --code CODE")
    codes = await client.mfa_confirm(code)
    print("multi-factor sign-in is on. Recovery codes (each works once; keep them offline, they "
          "are not shown again):")
    for c in codes:
        print(f"  {c}")
    return 0


async def _mfa_disable(args, client, _profile) -> int:
    code, recovery = args.code, args.recovery_code
    if code is None and recovery is None:
        code = _ask("Code from your authenticator app: ")
        if not code:
            return _fail(2, "give --code CODE or --recovery-code CODE")
    await client.mfa.disable(code, recovery)
    print("multi-factor sign-in is off")
    return 0


async def _anchor(args, client, _profile) -> int:
    print(client.anchor)
    return 0


async def _device_add(args, client, _profile) -> int:
    client.auto_add_own_devices = False  # done explicitly below, to report it
    await client.sync()
    added = await client.add_own_devices()
    for room, ids in added.items():
        print(f"{room}: added {', '.join(ids)}")
    if not added:
        print("nothing to add")
    return 0


async def _device_list(args, client, _profile) -> int:
    await client.watch_own_devices()
    for d in (await client.account_devices()).devices:
        name = client.store.account().device_name if str(d.device_id) == client.device_id else ""
        me = (f" (this device: {name})" if name else " (this device)") \
            if str(d.device_id) == client.device_id else ""
        key = base64.b64encode(d.signature_key).decode() if d.signature_key else None
        state = "pending" if d.pending else "approved"
        if args.json:
            print(json.dumps({"device_id": str(d.device_id), "signature_key": key,
                              "log_index": d.log_index, "this": bool(me), "state": state}))
        elif key is None:
            print(f"{d.device_id}{me} {state}, no keys yet")
        else:
            print(f"{d.device_id}{me} {state} key {key[:16]}... log entry {d.log_index}")
    _show_alerts(client)
    return 0


async def _device_pending(args, client, _profile) -> int:
    pending = await client.pending_devices()
    for p in pending:
        if args.json:
            print(json.dumps({"device_id": p.device_id, "code": p.code, "created_at": p.created_at}))
        else:
            print(f"{p.device_id} code {p.code}")
    if not pending and not args.json:
        print("no device waits for approval")
    return 0


async def _device_approve(args, client, _profile) -> int:
    index = await client.approve_device(args.device, args.code)
    print(f"approved {args.device} (log entry {index})")
    client.auto_add_own_devices = False  # done explicitly below, to report it
    await client.sync()
    for room, ids in (await client.add_own_devices()).items():
        print(f"{room}: added {', '.join(ids)}")
    return 0


async def _device_reject(args, client, _profile) -> int:
    from client.sdk.http import quote_path
    from protocol.api import Empty

    await client.http.request("DELETE", f"/devices/{quote_path(args.device)}", None, Empty)
    print(f"removed {args.device}")
    return 0
