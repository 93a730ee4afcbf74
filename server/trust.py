"""The server's trust document (``protocol.trust``): built once at start, served to clients.

- :func:`trust_document`: the document of a configuration and the log's verifier key;
- ``GET /_confide/client/v1/trust`` (no token: a client needs it before it registers):
  the document's exact bytes (``text/plain``). A client hashes them and compares the
  hash with the anchor of its invite (``spec/client-server.md``, section 16);
- :func:`stored_document`: the document the server recorded at its last start
  (``server_meta`` key ``trust_document``), which ``confide admin invite`` anchors.
"""

from __future__ import annotations

import aiosqlite
from aiohttp import web

from crypto.note import Verifier
from protocol.api import CLIENT_PREFIX
from protocol.trust import TrustDocument
from server.config import Config
from server.storage import meta

__all__ = ["TRUST_DOCUMENT", "TRUST_PATH", "trust_document", "record_document", "stored_document",
           "add_trust_routes"]

TRUST_PATH = CLIENT_PREFIX + "/trust"
#: The encoded trust document (filled when the application starts).
TRUST_DOCUMENT = web.AppKey("confide.trust_document", bytes)
_META_KEY = "trust_document"


def trust_document(config: Config, log_key: Verifier) -> TrustDocument:
    policy = config.log
    return TrustDocument.of(config.server_name, log_key.vkey(), policy.witness_quorum,
                            policy.witnesses, policy.peer_log_keys)


async def record_document(tx: aiosqlite.Connection, doc: TrustDocument) -> None:
    """Remember the document of this start (``confide admin invite`` reads it)."""
    await tx.execute("INSERT INTO server_meta (key, value) VALUES (?, ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                     (_META_KEY, doc.encode().decode()))


async def stored_document(conn: aiosqlite.Connection) -> bytes | None:
    value = await meta.get(conn, _META_KEY)
    return None if value is None else value.encode()


async def _serve_trust(request: web.Request) -> web.Response:
    return web.Response(body=request.app[TRUST_DOCUMENT], content_type="text/plain",
                        headers={"Cache-Control": "no-cache"})


def add_trust_routes(router: web.UrlDispatcher) -> None:
    router.add_get(TRUST_PATH, _serve_trust)
