"""Attachments: content-addressed encrypted blobs, size limit, auth, atomic storage, and a
download by a device that may not read the blob (not the uploader) answering ``not_found``."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import msgpack

from crypto.rng import system_rng
from protocol.sealed import seal_attachment
from server.config import Attachments
from tests.harness import P, new_member, start

OCTET = {"Content-Type": "application/octet-stream"}


def _sealed(plain: bytes) -> bytes:
    """A Confide sealed blob (the only attachments the server takes, protocol/sealed.py)."""
    return seal_attachment(plain, system_rng)[0]


async def _upload(hs, token, data, headers=OCTET):
    resp = await hs.client.post(f"{P}/attachments", data=data,
                                headers={**headers, "Authorization": f"Bearer {token}"})
    return resp.status, msgpack.unpackb(await resp.read())


async def test_upload_download_and_dedup(hs):
    alice = await new_member(hs, "alice")
    bob = await new_member(hs, "bob")
    blob = _sealed(bytes(range(256)) * 1000)
    status, body = await _upload(hs, alice.token, blob)
    assert status == 200 and body["content_id"] == hashlib.sha256(blob).hexdigest()
    assert await _upload(hs, alice.token, blob) == (status, body)
    resp = await hs.client.get(f"{P}/attachments/{body['content_id']}",
                               headers={"Authorization": f"Bearer {alice.token}"})
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/octet-stream"
    assert await resp.read() == blob
    # bob shares no room where it was announced: the answer of an unknown id
    # (tests/security/test_attachments_access.py covers members and removed members)
    resp = await hs.client.get(f"{P}/attachments/{body['content_id']}",
                               headers={"Authorization": f"Bearer {bob.token}"})
    assert resp.status == 404 and msgpack.unpackb(await resp.read())["error"]["code"] == "not_found"
    root = hs.config.data_dir / "attachments"
    stored = [p for p in root.rglob("*") if p.is_file()]
    assert stored == [root / body["content_id"][:2] / body["content_id"]]
    assert list((root / "tmp").iterdir()) == []


async def test_auth_content_type_and_unknown_ids(hs):
    alice = await new_member(hs, "alice")
    resp = await hs.client.post(f"{P}/attachments", data=b"x", headers=OCTET)
    assert resp.status == 401
    status, err = await _upload(hs, alice.token, b"x", {"Content-Type": "application/msgpack"})
    assert (status, err["error"]["code"]) == (415, "unsupported_media_type")
    status, err = await _upload(hs, alice.token, b"")
    assert (status, err["error"]["code"]) == (400, "bad_request")
    for cid in ["0" * 64, "ZZ", "../" + "0" * 61, "A" * 64]:
        resp = await hs.client.get(f"{P}/attachments/{cid}",
                                   headers={"Authorization": f"Bearer {alice.token}"})
        assert resp.status == 404, cid
    resp = await hs.client.get(f"{P}/attachments/{'0' * 64}")
    assert resp.status == 401


async def test_size_limit_from_config(tmp_path, clock):
    hs = await start(tmp_path, clock, attachments=replace(Attachments(), max_size=4096))
    try:
        alice = await new_member(hs, "alice")
        fits = _sealed(b"a" * 3500)  # 18 + 3584 + 16 bytes
        assert len(fits) == 3618
        status, _ = await _upload(hs, alice.token, fits)
        assert status == 200
        status, err = await _upload(hs, alice.token, _sealed(b"b" * 4097))
        assert (status, err["error"]["code"]) == (413, "attachment_too_large")
        big = _sealed(b"c" * 4500)

        async def chunks():  # no Content-Length: counted while reading
            for i in range(0, len(big), 1000):
                yield big[i:i + 1000]

        status, err = await _upload(hs, alice.token, chunks())
        assert (status, err["error"]["code"]) == (413, "attachment_too_large")
        root = hs.config.data_dir / "attachments"
        assert len([p for p in root.rglob("*") if p.is_file()]) == 1
    finally:
        await hs.client.close()


def test_default_limit_is_10_mib():
    assert Attachments().max_size == 10 * 1024 * 1024
