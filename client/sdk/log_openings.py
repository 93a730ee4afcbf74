"""A user's own entries in its server's private log, and openings (``spec/audit-log.md``).

The public log holds sealed entries (commitments instead of user, device and room
ids). These calls fetch what the server may give the caller, and check it:

- :func:`own_entries`: the indexes of the entries naming the signed-in user (its
  devices' registrations and removals, logins, logouts, consents, messages sent), so
  each of its devices can watch the account;
- :func:`open_entry`: one entry's inclusion proof, checked against the pinned log key,
  and its opening, checked against the proven entry: the opened entry;
- :func:`auditor_openings`: for ``confide audit verify --credential``, a fetcher of
  openings with an auditor credential (each fetch is logged by the server).

Raises :class:`client.audit.AuditFailure` for anything that does not verify and
:class:`~client.sdk.errors.ServerError` for a refusal (``not_found``: no such entry or
not one this user may open).
"""

from __future__ import annotations

import aiohttp

from client.audit import LOG_PATH, AuditFailure, Openings, fetch_proof, verify_tlog_proof
from crypto.errors import CryptoError
from crypto.note import parse_vkey
from protocol.api import CLIENT_PREFIX
from protocol.audit import AuditEntry
from protocol.audit_seal import SealedEntry, decode_opening
from protocol.log_openings import AUDITOR_SCHEME, OpeningResponse, OwnEntriesResponse

from .http import Http

__all__ = ["own_entries", "open_entry", "fetch_opening", "auditor_openings"]


async def own_entries(http: Http, start: int = 0) -> list[int]:
    """Every index, from ``start``, of an entry naming the signed-in user, ascending."""
    out: list[int] = []
    cursor: int | None = start
    while cursor is not None:
        page = await http.request("GET", "/log/mine", None, OwnEntriesResponse,
                                  params={"from": cursor})
        out.extend(page.indexes)
        cursor = page.next
    return out


async def fetch_opening(http: Http, index: int) -> bytes:
    """The encoded opening of entry ``index`` as the server gives it to this user."""
    return (await http.request("GET", f"/log/openings/{index}", None, OpeningResponse)).opening


async def open_entry(http: Http, index: int, vkey: str | None = None) -> tuple[SealedEntry, AuditEntry]:
    """``(public entry, opened entry)`` of ``index``: the inclusion proof verified against
    ``vkey`` (the log key pinned in the profile, else the server's own), the opening
    verified against the proven entry."""
    if vkey is None:
        vkey = (await http.get_raw(LOG_PATH + "/vkey")).decode().strip()
    proof = await fetch_proof(http.session, http.base_url, str(index))
    try:
        _, proven, sealed = verify_tlog_proof(proof, parse_vkey(vkey))
        opening = decode_opening(await fetch_opening(http, index))
        if proven != index or opening.index != index:
            raise AuditFailure("the proof or opening is for another entry", index=index)
        return sealed, opening.verify(sealed.to_bytes())
    except CryptoError as exc:
        raise AuditFailure(f"opening: {exc}", index=index) from exc


def auditor_openings(session: aiohttp.ClientSession, base_url: str, credential: str) -> Openings:
    """A fetcher of openings (for :func:`client.audit.verify_log`) with an auditor credential."""
    url = base_url.rstrip("/")
    if url.endswith(LOG_PATH):
        url = url[: -len(LOG_PATH)]
    headers = {"Authorization": f"{AUDITOR_SCHEME} {credential}", "Accept": "application/msgpack"}

    async def fetch(index: int) -> bytes:
        async with session.get(f"{url}{CLIENT_PREFIX}/log/openings/{index}", headers=headers) as resp:
            body = await resp.content.read(1 << 16)
            if resp.status == 401:
                raise AuditFailure("the auditor credential is unknown or revoked", index=index)
            if resp.status != 200:
                raise AuditFailure(f"no opening (HTTP {resp.status})", index=index)
        try:
            return OpeningResponse.from_wire(_unpack(body)).opening
        except Exception as exc:  # a malformed answer is a verification failure
            raise AuditFailure(f"malformed opening answer: {type(exc).__name__}", index=index) from None

    return fetch


def _unpack(body: bytes):
    import msgpack

    return msgpack.unpackb(body, raw=False)
