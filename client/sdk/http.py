"""The HTTP transport: msgpack requests to one homeserver, errors mapped to typed ones.

:class:`Http` wraps an ``aiohttp.ClientSession``. :meth:`Http.call` sends a
msgpack body (or none) to a path under ``/_confide/client/v1`` with the bearer
token, and returns the decoded msgpack map. A non-2xx answer raises
:class:`~client.sdk.errors.ServerError` (or :class:`~client.sdk.errors.StaleEpoch`)
built from the server's ``{"error": {...}}`` body; no answer, a timeout or an
undecodable body raises :class:`~client.sdk.errors.TransportError`.

:meth:`Http.request` is the typed form: the body is a :mod:`protocol` message
(``protocol.api``, ``protocol.rooms_api``) and the answer is decoded strictly
into the given one. Sync and history answers are read with :meth:`Http.call`,
because each envelope in them is verified (and may be refused) on its own.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import msgpack

from protocol.api import CLIENT_PREFIX
from protocol.errors import ApiError
from protocol.schema import Message

from .errors import ServerError, TransportError

__all__ = ["Http", "quote_path"]

M = TypeVar("M", bound=Message)

_MSGPACK = "application/msgpack"
_MAX_RESPONSE = 64 << 20


def quote_path(segment: str) -> str:
    """Percent-encode one path segment (user and room ids carry ``@ ! :``)."""
    return quote(segment, safe="")


class Http:
    """Requests to the homeserver at ``base_url`` with an optional access token."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 session: aiohttp.ClientSession | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._own_session = session is None
        self._session = session
        self._timeout = timeout

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                   params: dict[str, Any] | None = None, raw: bytes | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        """``method`` ``CLIENT_PREFIX + path``; see the module docstring for what raises."""
        headers = {"Accept": _MSGPACK}
        data: bytes | None = None
        if raw is not None:
            headers["Content-Type"] = "application/octet-stream"
            data = raw
        elif body is not None:
            headers["Content-Type"] = _MSGPACK
            data = msgpack.packb(body, use_bin_type=True)
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.base_url + CLIENT_PREFIX + path
        try:
            async with self.session.request(
                    method, url, data=data, headers=headers,
                    params={k: str(v) for k, v in (params or {}).items() if v is not None},
                    timeout=aiohttp.ClientTimeout(total=timeout or self._timeout)) as resp:
                content = await _read_bounded(resp, _MAX_RESPONSE + 1)
                status, ctype = resp.status, resp.headers.get("Content-Type", "")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if len(content) > _MAX_RESPONSE:
            raise TransportError(f"{method} {path}: response too large")
        if ctype.split(";")[0].strip().lower() == "application/octet-stream" and status == 200:
            return {"bytes": content}
        try:
            decoded = msgpack.unpackb(content, raw=False) if content else {}
        except Exception:  # msgpack raises several unrelated types
            if status >= 400:
                raise ServerError(status, f"http_{status}", "non-msgpack error body") from None
            raise TransportError(f"{method} {path}: the answer is not msgpack") from None
        if status >= 400:
            raise ServerError.from_body(status, decoded)
        if not isinstance(decoded, dict):
            raise TransportError(f"{method} {path}: the answer is not a map")
        return decoded

    async def request(self, method: str, path: str, body: Message | None, answer: type[M], *,
                      params: dict[str, Any] | None = None, raw: bytes | None = None,
                      timeout: float | None = None) -> M:
        """:meth:`call` with a :mod:`protocol` request body, decoding the answer strictly as
        ``answer``; an answer that does not decode raises :class:`TransportError`."""
        out = await self.call(method, path, body.to_wire() if body is not None else None,
                              params=params, raw=raw, timeout=timeout)
        try:
            return answer.from_wire(out)
        except ApiError as exc:  # MalformedBody, or an identifier outside its grammar
            raise TransportError(f"{method} {path}: the answer does not decode ({exc})") from None

    async def get_raw(self, absolute_path: str) -> bytes:
        """GET a non-API resource of the server (e.g. the log's ``vkey``); raises
        :class:`TransportError` unless it answers 200."""
        try:
            async with self.session.get(self.base_url + absolute_path,
                                        timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                body = await _read_bounded(resp, _MAX_RESPONSE)
                if resp.status != 200:
                    raise TransportError(f"GET {absolute_path}: HTTP {resp.status}")
                return body
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"GET {absolute_path}: {type(exc).__name__}: {exc}") from None

    async def get_bytes(self, path: str) -> bytes:
        """GET a binary resource (an attachment)."""
        out = await self.call("GET", path)
        b = out.get("bytes")
        if not isinstance(b, bytes):
            raise TransportError(f"GET {path}: expected bytes")
        return b


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or its first ``limit`` bytes when it is longer.

    ``StreamReader.read(n)`` returns whatever is buffered (possibly part of the
    body), so read until the end of the stream or the limit.
    """
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
