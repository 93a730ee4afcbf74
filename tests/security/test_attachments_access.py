"""Finding 13 (issue 10): an attachment is readable by its uploader and by the members of the
rooms where it was announced (within what they could read), by nobody else.

One real ``confide serve`` process (:class:`tests.harness.PeerProcess`, no peers) and SDK
clients over HTTP (``spec/client-server.md`` 11.2-11.3). Alice uploads and announces
attachments in a room with Bob; Mallory shares no room with Alice:

- Mallory fetching by the content id gets ``not_found``, the very answer (status, code,
  message, details) of a content id nobody uploaded;
- Mallory cannot link it into a room of her own to read it (``not_found``, no link row);
- Bob, a member, reads it; once removed, Bob still reads the attachment announced before
  his removal, and gets ``not_found`` for one announced after it."""

from __future__ import annotations

import sqlite3

import pytest

from client.sdk import ServerError
from client.sdk.messages import AttachmentMessage
from protocol.rooms_api import AttachmentLink, AttachmentResponse
from tests.harness import PeerProcess, free_port

pytestmark = [pytest.mark.net, pytest.mark.timeout(120)]

UNKNOWN = "ab" * 32


async def _refusal(client, content_id: str) -> tuple:
    with pytest.raises(ServerError) as err:
        await client.http.get_bytes(f"/attachments/{content_id}")
    e = err.value
    return e.status, e.code, e.message, e.details


async def _attachments(client, room: str) -> dict[str, AttachmentMessage]:
    await client.sync()
    return {m.name: m for m in client.messages(room) if isinstance(m, AttachmentMessage)}


async def test_attachments_only_for_uploader_and_members_who_could_read_them(tmp_path):
    server = PeerProcess(tmp_path, "a.test", free_port(), {})
    server.start()
    clients = []
    try:
        alice, bob, mallory = (await server.user("alice"), await server.user("bob"),
                               await server.user("mallory"))
        clients += [alice, bob, mallory]
        room = await alice.create_room("consult")
        await alice.invite(room, bob.user_id)
        await bob.sync()
        assert bob.store.has_room(room)

        await alice.send_attachment(room, b"scan before removal", "before.pdf")
        before = (await _attachments(bob, room))["before.pdf"]
        assert await bob.download_attachment(before) == b"scan before removal"
        assert await alice.http.get_bytes(f"/attachments/{before.content_id}")  # the uploader

        unknown = await _refusal(mallory, UNKNOWN)
        assert unknown[:2] == (404, "not_found")
        assert await _refusal(mallory, before.content_id) == unknown

        own = await mallory.create_room("mine")
        seq = await mallory.send_text(own, "nothing to see")
        with pytest.raises(ServerError) as err:
            await mallory.http.request("POST", f"/rooms/{own}/attachments/{before.content_id}",
                                       AttachmentLink(seq), AttachmentResponse)
        assert (err.value.status, err.value.code) == (404, "not_found")
        assert await _refusal(mallory, before.content_id) == unknown

        await alice.remove_member(room, bob.user_id)
        await alice.send_attachment(room, b"scan after removal", "after.pdf")
        after = (await _attachments(alice, room))["after.pdf"]
        await bob.sync()
        assert await bob.download_attachment(before) == b"scan before removal"
        assert await _refusal(bob, after.content_id) == await _refusal(bob, UNKNOWN)
        assert await _refusal(mallory, after.content_id) == unknown

        with sqlite3.connect(server.data / "confide.sqlite") as conn:
            linkers = conn.execute("SELECT DISTINCT user_id FROM attachment_links").fetchall()
        assert linkers == [(alice.user_id,)]
    finally:
        for c in clients:
            await c.close()
        server.stop()
