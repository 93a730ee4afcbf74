"""Test helpers: an in-memory Source over a TransparencyLog (no sockets) and tampering."""

from __future__ import annotations

from crypto.tiles import BundleId, parse_tile_path
from server.translog import NotFound, TransparencyLog


class LogSource:
    """Serves a log's tlog-tiles paths straight from the service, as the HTTP routes would."""

    def __init__(self, log: TransparencyLog) -> None:
        self.log = log

    async def get(self, path: str) -> bytes | None:
        if path == "checkpoint":
            return await self.log.checkpoint()
        if path == "vkey":
            return (self.log.verifier.vkey() + "\n").encode()
        ident = parse_tile_path(path)
        try:
            if isinstance(ident, BundleId):
                return await self.log.read_bundle(ident)
            return await self.log.read_tile(ident)
        except NotFound:
            return None

    async def consistency_proof(self, old: int, new: int) -> list[bytes] | None:
        return await self.log.consistency_proof(old, new)

    async def opening(self, index: int) -> bytes:
        """The encoded opening of ``index``, as an auditor would be given it."""
        return (await self.log.opening(index)).to_bytes()
