"""Content-addressed storage of encrypted attachments under ``data_dir/attachments``.

A blob is stored as ``<aa>/<sha256 hex>`` where ``aa`` is the first two hex
digits. :meth:`BlobStore.put` streams the body into ``tmp/`` while hashing and
counting it, fsyncs the file, renames it into place and fsyncs the directory,
so a blob that got an answer survives a crash and a blob on disk is always
whole. The same content uploaded twice is stored once. The server never sees
the key: clients encrypt before upload and send the key inside MLS. Only Confide
sealed blobs are taken (:func:`protocol.sealed.check_attachment`: the header as soon
as its bytes arrived, the padded length at the end); the temporary file of a refused
upload is removed, so nothing of it stays.

Errors: :class:`~protocol.room_errors.AttachmentTooLarge` (over ``max_size``,
checked against ``Content-Length`` first and while reading),
:class:`~protocol.channel_errors.AttachmentNotSealed`,
:class:`~protocol.errors.BadRequest` (an empty body), and
:class:`~protocol.errors.NotFound` from :meth:`BlobStore.path` for an unknown id.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from crypto.rng import Rng
from protocol.errors import BadRequest, NotFound
from protocol.room_errors import AttachmentTooLarge
from protocol.sealed import ATTACHMENT_HEADER, check_attachment, check_attachment_header

__all__ = ["BlobStore", "CONTENT_ID"]

#: A content id: SHA-256 of the blob as 64 lower-case hex digits.
CONTENT_ID = re.compile(r"[0-9a-f]{64}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path, max_size: int, rng: Rng) -> None:
        self.root = root
        self.max_size = max_size
        self.rng = rng
        self._tmp = root / "tmp"

    def open(self) -> None:
        """Create the directories and drop temporary files a crash left behind."""
        self._tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)

    async def put(self, chunks: AsyncIterator[bytes], declared_length: int | None) -> str:
        """Store the streamed blob; returns its content id (see the module docstring)."""
        if declared_length is not None and declared_length > self.max_size:
            raise AttachmentTooLarge(f"attachments are at most {self.max_size} bytes")
        tmp = self._tmp / self.rng(16).hex()
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with open(tmp, "wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_size:
                        raise AttachmentTooLarge(f"attachments are at most {self.max_size} bytes")
                    if len(head) < ATTACHMENT_HEADER:
                        head = (head + chunk)[:ATTACHMENT_HEADER]
                        if len(head) == ATTACHMENT_HEADER:
                            check_attachment_header(head)  # before more is written
                    digest.update(chunk)
                    f.write(chunk)
                if size == 0:
                    raise BadRequest("an attachment has at least one byte")
                check_attachment(head, size)
                f.flush()
                await asyncio.to_thread(os.fsync, f.fileno())
            content_id = digest.hexdigest()
            await asyncio.to_thread(self._install, tmp, content_id)
        finally:
            tmp.unlink(missing_ok=True)
        return content_id

    def _install(self, tmp: Path, content_id: str) -> None:
        final = self._final(content_id)
        if final.exists():
            return  # the same bytes are already stored
        final.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def _final(self, content_id: str) -> Path:
        return self.root / content_id[:2] / content_id

    def path(self, content_id: str) -> Path:
        """The file of a stored blob; raises :class:`NotFound` (also for a malformed id)."""
        if not CONTENT_ID.fullmatch(content_id):
            raise NotFound("no such attachment")
        final = self._final(content_id)
        if not final.is_file():
            raise NotFound("no such attachment")
        return final
