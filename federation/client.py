"""The signed server-to-server HTTP client (aiohttp).

:class:`FederationClient` signs every request with the keyring's current key
(``spec/server-server.md`` section 3), resolves the destination through
:class:`~federation.discovery.Discovery` and reads the msgpack answer with a
size cap. Errors are typed:

- :class:`~protocol.federation.PeerDenied`: the destination is refused by the
  local policy, or is this server itself (nothing is sent);
- :class:`~protocol.federation.PeerUnreachable`: discovery failed, the
  connection failed or timed out, or the answer is not msgpack of at most
  ``max_response`` bytes. Its message is the same whatever the reason
  ("NAME cannot be reached"), so that a relayed answer does not tell a closed
  port from an open one; the reason goes to the log (``federation_peer_unreachable``);
- :class:`~protocol.federation.PeerRefused`: the peer answered an error;
  ``remote_code`` / ``remote_status`` carry its code and status.

The same client fetches peers' key documents (unsigned ``GET``), after the same
destination check: nothing is ever fetched from a server the policy does not name.
All outbound work (discovery, requests, key documents, public log resources) runs
in a bounded pool of ``max_outbound`` concurrent requests, so that a flood of
requests towards slow peers waits there instead of taking the event loop's
resolver threads and connections from local work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
from yarl import URL

from protocol.api import MSGPACK
from protocol.errors import MalformedBody
from protocol.federation import (
    KEY_PATH,
    MAX_TXN_BODY,
    SEND_PATH,
    PeerDenied,
    PeerRefused,
    PeerUnreachable,
    ServerKeys,
    Transaction,
    TransactionResponse,
    parse_target,
    parse_txn_id,
    sign_request,
)
from protocol.schema import Message, pack_body, unpack_body

from .discovery import Discovery
from .keyring import ServerKeyring
from .policy import PeerPolicy

__all__ = ["FederationClient", "MAX_RESPONSE", "MAX_OUTBOUND"]

log = structlog.get_logger("confide.federation")

#: Default cap on a federation answer (bytes).
MAX_RESPONSE = 4 * 1024 * 1024
#: Default size of the outbound pool (concurrent outbound requests).
MAX_OUTBOUND = 16


def unreachable(destination: str, reason: str) -> PeerUnreachable:
    """The one answer for a peer that cannot be reached; ``reason`` is logged only."""
    log.info("federation_peer_unreachable", destination=destination, reason=reason)
    return PeerUnreachable(f"{destination} cannot be reached")


class FederationClient:
    def __init__(self, session: aiohttp.ClientSession, server_name: str, keyring: ServerKeyring,
                 discovery: Discovery, policy: PeerPolicy, clock: Callable[[], float],
                 request_timeout: float = 30.0, connect_timeout: float = 10.0,
                 max_outbound: int = MAX_OUTBOUND) -> None:
        self._session = session
        self.server_name = server_name
        self._keyring = keyring
        self._discovery = discovery
        self._policy = policy
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=connect_timeout)
        self._pool = asyncio.Semaphore(max_outbound)

    async def _base_url(self, destination: str) -> str:
        try:
            return await self._discovery.base_url(destination)
        except PeerUnreachable as exc:
            raise unreachable(destination, exc.message) from None

    def _check_destination(self, destination: str) -> None:
        if destination == self.server_name:
            raise PeerDenied("a server does not federate with itself")
        self._policy.check(destination)

    async def request(self, method: str, destination: str, target: str, body: bytes | Message | dict | None = None,
                      *, max_response: int = MAX_RESPONSE) -> bytes:
        """Send one signed request; returns the raw msgpack body of a 2xx answer.

        ``target`` is the path and query exactly as it will appear on the
        request line (already percent-encoded). Raises the errors of the module.
        """
        self._check_destination(destination)
        parse_target(target)
        data = b"" if body is None else body if isinstance(body, bytes) else pack_body(body)
        key = self._keyring.current()
        auth = sign_request(key.seed, key.key_id, method, target, data, self.server_name, destination,
                            int(self._clock() * 1000))
        headers = {"Authorization": auth.to_header(), "Accept": MSGPACK}
        if body is not None:
            headers["Content-Type"] = MSGPACK
        async with self._pool:
            base = await self._base_url(destination)
            return await self._send(destination, method, URL(base + target, encoded=True), headers, data,
                                    max_response)

    async def call(self, method: str, destination: str, target: str, body: bytes | Message | dict | None = None,
                   *, max_response: int = MAX_RESPONSE) -> Any:
        """:meth:`request`, then the answer unpacked (one msgpack value)."""
        raw = await self.request(method, destination, target, body, max_response=max_response)
        try:
            return unpack_body(raw)
        except MalformedBody:
            raise unreachable(destination, "malformed body") from None

    async def send_transaction(self, destination: str, txn_id: str, txn: Transaction) -> TransactionResponse:
        """``PUT /send/{txn_id}``; the peer's :class:`TransactionResponse`."""
        target = SEND_PATH.format(txn_id=parse_txn_id(txn_id))
        obj = await self.call("PUT", destination, target, txn, max_response=MAX_TXN_BODY)
        try:
            return TransactionResponse.from_wire(obj, "transaction_response")
        except MalformedBody as exc:
            raise unreachable(destination, f"malformed transaction response: {exc.message}") from None

    async def get_public(self, server: str, target: str, *, cap: int = 1 << 20) -> bytes:
        """An unsigned ``GET`` of a peer's public resource (its transparency log): the raw
        body of a ``200``. Raises :class:`PeerDenied`, :class:`PeerUnreachable`, or
        :class:`PeerRefused` with ``remote_code`` ``not_found`` for a ``404``."""
        self._check_destination(server)
        parse_target(target)
        async with self._pool:
            url = URL(await self._base_url(server) + target, encoded=True)
            try:
                async with self._session.get(url, timeout=self._timeout, allow_redirects=False) as resp:
                    raw = await resp.content.read(cap + 1)
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise unreachable(server, type(exc).__name__) from None
        if len(raw) > cap:
            raise unreachable(server, f"more than {cap} bytes")
        if status == 404:
            raise PeerRefused(f"{server} has no {target}", "not_found", 404)
        if status != 200:
            raise unreachable(server, f"HTTP {status}")
        return bytes(raw)

    async def fetch_server_keys(self, server: str) -> ServerKeys:
        """``GET /_confide/key/v1/server`` of ``server``, self-signature verified.

        Raises :class:`PeerDenied` (not a configured peer: nothing is fetched),
        :class:`PeerUnreachable` or :class:`ServerKeysInvalid`.
        """
        self._check_destination(server)
        async with self._pool:
            base = await self._base_url(server)
            raw = await self._send(server, "GET", URL(base + KEY_PATH, encoded=True), {"Accept": MSGPACK},
                                   b"", 64 * 1024)
        keys = ServerKeys.decode(raw)
        keys.verify(server)
        return keys

    async def _send(self, destination: str, method: str, url: URL, headers: dict[str, str], data: bytes, cap: int) -> bytes:
        try:
            async with self._session.request(method, url, headers=headers, data=data or None,
                                             timeout=self._timeout, allow_redirects=False) as resp:
                raw = bytearray()
                while chunk := await resp.content.read(cap + 1 - len(raw)):
                    raw += chunk
                    if len(raw) > cap:
                        raise unreachable(destination, f"more than {cap} bytes")
                status = resp.status
                mime = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise unreachable(destination, type(exc).__name__) from None
        if mime != MSGPACK:
            raise unreachable(destination, f"HTTP {status} without msgpack")
        if 200 <= status < 300:
            return bytes(raw)
        raise _refusal(destination, bytes(raw), status)


def _refusal(destination: str, raw: bytes, status: int) -> PeerRefused | PeerUnreachable:
    try:
        err = unpack_body(raw)["error"]
        code, message = err["code"], err.get("message", "")
        if type(code) is not str or type(message) is not str or len(code) > 64:
            raise TypeError
    except (MalformedBody, KeyError, TypeError, AttributeError):
        return unreachable(destination, f"HTTP {status} without a Confide error body")
    refused = PeerRefused(f"peer refused: {code}: {message[:200]}", code, status)
    #: The other fields of the peer's error (e.g. ``current_epoch``), passed on when relayed.
    refused.remote_details = {k: v for k, v in err.items()  # type: ignore[attr-defined]
                              if k not in ("code", "message") and type(k) is str
                              and isinstance(v, int | str | bool) and len(k) <= 64}
    return refused
