"""Entry bundles are served gzip-compressed when the request accepts gzip, the same bytes otherwise."""

from __future__ import annotations

import gzip

import aiohttp
import pytest

from crypto.tiles import BundleId
from server.appkeys import AUDIT
from server.translog.http import accepts_gzip

pytestmark = pytest.mark.timeout(60)

LOG = "/_confide/log/v1"


async def _get(hs, path: str, accept_encoding: str | None) -> tuple[int, dict, bytes]:
    headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    # auto_decompress off and no default Accept-Encoding: the bytes as they were sent
    session = aiohttp.ClientSession(auto_decompress=False, skip_auto_headers=["Accept-Encoding"])
    async with session, session.get(hs.client.make_url(path), headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_entry_bundle_gzip_when_accepted_identical_after_decompression(hs):
    await hs.register("alice")
    await hs.app[AUDIT].flush()
    size = hs.log.size
    assert 0 < size < 256
    bundle = BundleId(0, size)
    path = f"{LOG}/{bundle.path()}"
    stored = await hs.log.read_bundle(bundle)

    status, headers, plain = await _get(hs, path, None)
    assert status == 200 and "Content-Encoding" not in headers
    assert headers["Vary"] == "Accept-Encoding" and plain == stored

    for accept in ("gzip", "br, gzip;q=0.5", "*", "deflate, x-gzip"):
        status, headers, body = await _get(hs, path, accept)
        assert status == 200 and headers["Content-Encoding"] == "gzip", accept
        assert headers["Vary"] == "Accept-Encoding"
        assert int(headers["Content-Length"]) == len(body)
        assert gzip.decompress(body) == plain

    for accept in ("identity", "gzip;q=0", "br", "*, gzip;q=0", "*;q=0"):
        status, headers, body = await _get(hs, path, accept)
        assert status == 200 and "Content-Encoding" not in headers and body == plain, accept

    status, headers, _ = await _get(hs, f"{LOG}/tile/0/000.p/{size}", "gzip")
    assert status == 200 and "Content-Encoding" not in headers  # hash tiles stay as they are


@pytest.mark.parametrize(("value", "allowed"), [
    ("", False), ("gzip", True), ("GZIP", True), ("gzip;q=0", False), ("gzip; q=0.001", True),
    ("*", True), ("*;q=0", False), ("gzip;q=0, *", False), ("identity, *;q=0.1", True),
    ("gzip;q=bogus", False), ("deflate", False),
])
def test_accept_encoding_parsing(value, allowed):
    assert accepts_gzip(value) is allowed
