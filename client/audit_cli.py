"""``confide audit verify|export|prove``: the auditor's command line.

- ``confide audit verify SOURCE [--state FILE] [--key VKEY | --anchor A] [--credential TOKEN]``:
  SOURCE is a server URL, an exported bundle directory, or a ``.tlog-proof`` file
  (from ``prove``). ``--anchor`` (a URL only) takes the log key from the server's
  trust document (``GET /_confide/client/v1/trust``) after checking its hash against
  the anchor, instead of pinning ``vkey`` on first use. Without a credential:
  structure, signatures and the tree (the entries are sealed, so nobody is named);
  with an auditor credential (``confide admin auditor add``, a live server only):
  also every entry's opening, checked against its commitments, and the signatures
  the opened entries carry. Prints a summary; exit status 1 on any verification
  failure, naming the entry index or tree size at fault, 2 on usage or I/O errors.
- ``confide audit export URL OUT``: write an offline bundle directory.
- ``confide audit prove URL ENTRY|EVENT``: print the tlog-proof of an entry
  index or a room event hash (64 hex digits).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from crypto.note import parse_vkey

from .audit import (
    AuditFailure,
    AuditState,
    BundleSource,
    HttpSource,
    check_witness,
    export_bundle,
    fetch_proof,
    verify_log,
    verify_tlog_proof,
)
from .sdk.log_openings import auditor_openings

__all__ = ["register"]


def register(subparsers) -> None:
    audit = subparsers.add_parser("audit", help="verify a server's transparency log")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    v = sub.add_parser("verify", help="verify a log (URL), a bundle (directory) or a tlog-proof (file)")
    v.add_argument("source")
    v.add_argument("--state", type=Path, help="state file: pinned key and last checkpoint")
    v.add_argument("--key", help="the log's verifier key (name+id+key)")
    v.add_argument("--anchor", help="the server's trust anchor (the hash after # in an invite)")
    v.add_argument("--credential", metavar="TOKEN",
                   help="an auditor credential: also fetch and check every entry's opening")
    v.add_argument("--witness", action="append", default=[], metavar="URL",
                   help="a federation peer whose witness view of this log to compare (repeatable)")
    v.set_defaults(func=_verify)
    e = sub.add_parser("export", help="write an offline bundle of a live log")
    e.add_argument("url")
    e.add_argument("out", type=Path)
    e.set_defaults(func=_export)
    p = sub.add_parser("prove", help="print the inclusion proof of an entry index or event hash")
    p.add_argument("url")
    p.add_argument("what", metavar="ENTRY|EVENT")
    p.set_defaults(func=_prove)


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


async def _verify_async(args) -> int:
    state = AuditState.load(args.state) if args.state else AuditState()
    if not _is_url(args.source) and Path(args.source).is_file():
        key = args.key or state.vkey
        if key is None:
            print("audit: a tlog-proof needs --key or a state file with a pinned key", file=sys.stderr)
            return 2
        cp, index, entry = verify_tlog_proof(Path(args.source).read_bytes(), parse_vkey(key), state)
        print(f"entry {index} is in log {cp.origin} at size {cp.size}: OK")
        print(f"  {entry}")
        return 0
    if args.credential and not _is_url(args.source):
        print("audit: --credential needs a server URL (openings are fetched live)", file=sys.stderr)
        return 2
    if args.anchor is not None and not _is_url(args.source):
        print("audit: --anchor needs a server URL", file=sys.stderr)
        return 2
    if _is_url(args.source):
        async with aiohttp.ClientSession() as session:
            if args.anchor is not None:
                args.key = await _anchored_key(session, args.source, args.anchor, args.key)
            source = HttpSource(session, args.source)
            openings = auditor_openings(session, args.source, args.credential) if args.credential else None
            report, new_state = await verify_log(source, state, args.key, openings)
            witnessed = [await check_witness(session, url, source, report.checkpoint,
                                             parse_vkey(new_state.vkey or args.key))
                         for url in args.witness]
        print(report.summary())
        for line in witnessed:
            print("  " + line)
        if args.state:
            new_state.save(args.state)
        return 0
    else:
        if not Path(args.source).is_dir():
            print(f"audit: {args.source}: not a URL, bundle directory or proof file", file=sys.stderr)
            return 2
        report, new_state = await verify_log(BundleSource(Path(args.source)), state, args.key)
    print(report.summary())
    if args.state:
        new_state.save(args.state)
    return 0


async def _anchored_key(session: aiohttp.ClientSession, url: str, anchor: str,
                        key: str | None) -> str:
    """The log key of the trust document at ``url`` whose hash is ``anchor``."""
    from protocol.api import CLIENT_PREFIX
    from protocol.trust import (
        MAX_TRUST_DOCUMENT,
        TrustDocumentInvalid,
        anchor_of,
        parse_trust_document,
    )

    async with session.get(url.rstrip("/") + CLIENT_PREFIX + "/trust") as resp:
        raw = await resp.content.read(MAX_TRUST_DOCUMENT + 1)
        if resp.status != 200:
            raise AuditFailure(f"GET /trust: HTTP {resp.status}")
    if anchor_of(raw) != anchor:
        raise AuditFailure("the server's trust document does not match the anchor")
    try:
        doc = parse_trust_document(raw)
    except TrustDocumentInvalid as exc:
        raise AuditFailure(f"the trust document is malformed: {exc}") from None
    if key is not None and key != doc.log_key:
        raise AuditFailure("--key is not the log key of the anchored trust document")
    return doc.log_key


def _run(coro) -> int:
    try:
        return asyncio.run(coro)
    except AuditFailure as exc:
        print(f"audit: FAILED: {exc}", file=sys.stderr)
        return 1
    except (OSError, aiohttp.ClientError, ValueError) as exc:
        print(f"audit: error: {exc}", file=sys.stderr)
        return 2


def _verify(args) -> int:
    return _run(_verify_async(args))


async def _export_async(args) -> int:
    async with aiohttp.ClientSession() as session:
        cp = await export_bundle(HttpSource(session, args.url), args.out)
    print(f"exported {cp.size} entries of {cp.origin} to {args.out}")
    return 0


def _export(args) -> int:
    return _run(_export_async(args))


async def _prove_async(args) -> int:
    async with aiohttp.ClientSession() as session:
        sys.stdout.write((await fetch_proof(session, args.url, args.what)).decode())
    return 0


def _prove(args) -> int:
    return _run(_prove_async(args))
