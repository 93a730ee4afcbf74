"""Finding 1 (issue 10): a public log that names nobody. Attacks on a real ``confide serve``.

Before, ``tile/entries/*`` (no token) listed every account, login, logout and failed login
with device and time, and each room event's sender: it showed which clinician a client
sees. Now every identifier field of an entry is a salted commitment
(``protocol/audit_seal.py``); openings go only to the entry's subject, the room's members
(room events), users who may contact the subject (device entries) and auditors with a
credential (each auditor read is itself an entry); failed logins are one count per window.

One e2e run (SDK clients over HTTP against :class:`tests.harness.PeerProcess`): two users
register, a second device logs in, one logs out, a failed login, a room, messages. Then:

1. every public log resource (checkpoint, vkey, every tile and entry bundle, every
   inclusion proof, consistency proofs) is fetched anonymously and scanned, as raw bytes and
   as decoded msgpack strings, for user ids, localparts, device ids, device names, room
   ids, credentials and signature keys: none is there;
2. openings: a stranger, an anonymous caller and a user with no contact get the very answer
   of an index beyond the log; the subject, a room member and an auditor are served, and
   the client checks each opening against the proven public entry;
3. an auditor's read is itself a (sealed) ``auditor_read`` entry; a revoked credential is
   refused;
4. failed logins: no entry per guess, one ``failed_logins`` count per window;
5. the log relay refuses an anonymous caller (401) and relays for a signed-in user.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess

import aiohttp
import msgpack
import pytest

from client.audit import HttpSource, verify_log
from client.profile import MINIMUM, Profile
from client.sdk import Client, ServerError
from client.sdk.log_openings import auditor_openings, open_entry, own_entries
from crypto.tiles import bundles_for_size, decode_bundle, decode_tile, tiles_for_size
from protocol.api import CLIENT_PREFIX
from protocol.audit import ENTRY_KINDS, AccessAction, AuditorRead, FailedLogins, RemovalReason
from protocol.audit_seal import decode_opening, decode_sealed
from protocol.events import EventKind
from tests.harness import CONFIDE, PASSWORD, REPO, PeerProcess, free_port

pytestmark = [pytest.mark.net, pytest.mark.timeout(180)]

LOG = "/_confide/log/v1"
NAMES = ("annika", "bertram", "mallory")


def _db(server: PeerProcess) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{server.data / 'confide.sqlite'}?mode=ro", uri=True)


def _auditor(server: PeerProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CONFIDE, "admin", "auditor", *args, "--data", str(server.data)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


async def _get(session: aiohttp.ClientSession, url: str, headers: dict | None = None) -> tuple[int, bytes]:
    async with session.get(url, headers=headers or {}) as resp:
        return resp.status, await resp.read()


async def _wrong_login(server: PeerProcess, user: str) -> int:
    body = msgpack.packb({"user": user, "password": "wrong password"})
    async with aiohttp.ClientSession() as s, s.post(
            server.url + CLIENT_PREFIX + "/login", data=body,
            headers={"Content-Type": "application/msgpack"}) as resp:
        return resp.status


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("logpriv")
    server = PeerProcess(tmp, "a.test", free_port(), {})
    server.cfg.write_text(server.cfg.read_text() + "[login]\nfailure_log_window = 1\n")
    server.start()
    try:
        yield server, asyncio.run(_e2e(server, tmp))
    finally:
        server.stop()


async def _e2e(server: PeerProcess, tmp) -> dict:
    """The run whose public log is scanned; returns what the tests need (tokens, rooms)."""
    annika, bertram, mallory = [await server.user(n) for n in NAMES]
    laptop = await Client.login(Profile.create(tmp / "annika-laptop", "pp", MINIMUM), server.url,
                                "annika", PASSWORD, device_name="annika's laptop",
                                anchor=annika.anchor, auto_add_own_devices=False)
    assert await _wrong_login(server, "bertram") == 403
    room = await annika.create_room("therapy with bertram")
    await annika.invite(room, bertram.user_id)
    await bertram.sync()
    await annika.send_text(room, "see you on tuesday")
    await bertram.send_text(room, "thanks, tuesday works")
    approval = await annika.approve_device(laptop.device_id, laptop.own_code)  # device_approved
    laptop_device = laptop.device_id
    await laptop.logout()
    out = {"room": room, "tokens": {c.user_id: c.http.token for c in (annika, bertram, mallory)},
           "approval": approval, "laptop": laptop_device,
           "users": [c.user_id for c in (annika, bertram, mallory)],
           "devices": {c.user_id: c.device_id for c in (annika, bertram, mallory)}}
    for c in (annika, bertram, mallory, laptop):
        await c.close()
    return out


def _identifiers(server: PeerProcess, run: dict) -> list[bytes]:
    """Everything that would name a person, a device or a room: user ids and localparts,
    device ids and names, room ids, credentials and signature keys (from the server's DB)."""
    with _db(server) as conn:
        devices = conn.execute("SELECT user_id, device_id, credential, signature_key "
                               "FROM devices").fetchall()
        rooms = [r[0] for r in conn.execute("SELECT room_id FROM rooms")]
    found: list[bytes] = [n.encode() for n in NAMES] + [u.encode() for u in run["users"]]
    found += [b"annika's laptop", b"phone"]  # the device names the clients gave
    for user, device, credential, key in devices:
        found += [user.encode(), device.encode()]
        found += [bytes(v) for v in (credential, key) if v is not None]
    found += [r.encode() for r in rooms] + [r.split(":")[0].encode() for r in rooms]
    assert len(rooms) == 1 and len(devices) == 4
    return found


async def _public_resources(url: str) -> tuple[int, dict[str, bytes]]:
    """Every public log resource, fetched anonymously: (size, path -> body)."""
    async with aiohttp.ClientSession() as s:
        bodies: dict[str, bytes] = {}
        for path in ("checkpoint", "vkey"):
            status, bodies[path] = await _get(s, f"{url}{LOG}/{path}")
            assert status == 200
        size = int(bodies["checkpoint"].split(b"\n")[1])
        paths = [t.path() for t in tiles_for_size(size)] + [b.path() for b in bundles_for_size(size)]
        paths += [f"proof/inclusion?index={i}" for i in range(size)]
        paths += [f"proof/consistency?old={m}&new={size}" for m in range(1, size)]
        for path in paths:
            status, bodies[path] = await _get(s, f"{url}{LOG}/{path}", {"Accept-Encoding": "identity"})
            assert status == 200, path
    return size, bodies


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in _strings(k) + _strings(v)]
    if isinstance(obj, list | tuple):
        return [s for v in obj for s in _strings(v)]
    return []


async def test_no_public_log_resource_names_anyone(run):
    server, info = run
    size, bodies = await _public_resources(server.url)
    names = _identifiers(server, info)
    for path, body in bodies.items():
        for name in names:
            assert name not in body, (path, name)
    # every entry decodes as a sealed entry, and its only strings are protocol words
    entries = [e for b in bundles_for_size(size) for e in decode_bundle(bodies[b.path()], b.width)]
    tiles0 = [h for t in tiles_for_size(size) if t.level == 0 for h in decode_tile(bodies[t.path()], t)]
    assert len(entries) == len(tiles0) == size
    words = set(ENTRY_KINDS) | set(AccessAction) | set(RemovalReason) | set(EventKind) | {"kind"}
    kinds = set()
    for raw in entries:
        sealed = decode_sealed(raw)
        kinds.add(sealed.kind)
        for s in _strings(msgpack.unpackb(raw)):  # keys (field names) and string values
            assert s in words or s in dict(sealed.fields), s
            assert "@" not in s and "!" not in s and ":" not in s, s
    assert {"device_added", "device_approved", "access", "room_event"} <= kinds
    assert "access/login_failed" not in kinds


async def test_openings_go_to_subject_members_and_auditors_only(run):
    server, info = run
    annika, bertram, mallory = info["users"]
    tokens = info["tokens"]
    with _db(server) as conn:
        (size,) = conn.execute("SELECT MAX(idx) + 1 FROM translog_entries").fetchone()
        annika_device_index = conn.execute("SELECT key_log_index FROM devices WHERE user_id = ? AND "
                                           "device_id = ?", (annika, info["devices"][annika])).fetchone()[0]
    async with aiohttp.ClientSession() as s:
        from client.sdk.http import Http

        def http(user):
            return Http(server.url, tokens[user], session=s)

        # the subject's "my entries": its devices, logins, logout, messages sent
        mine = await own_entries(http(annika))
        assert annika_device_index in mine
        opened = {i: (await open_entry(http(annika), i))[1] for i in mine}
        kinds = {(e.KIND, getattr(e, "action", None)) for e in opened.values()}
        assert {("device_added", None), ("access", AccessAction.LOGIN), ("access", AccessAction.LOGOUT),
                ("room_event", None)} <= kinds
        assert all(annika in (getattr(e, "user", None), getattr(e, "sender", None)) for e in opened.values())
        # a room member opens the other member's room events; mallory (no room) does not
        room_event = next(i for i, e in opened.items() if e.KIND == "room_event")
        _, as_member = await open_entry(http(bertram), room_event)
        assert (as_member.room, as_member.sender) == (info["room"], annika)
        # mallory, an anonymous caller and a bad token: the very answer of a missing index
        url = f"{server.url}{CLIENT_PREFIX}/log/openings"
        missing = await _get(s, f"{url}/{size + 1000}", {"Authorization": f"Bearer {tokens[mallory]}"})
        assert missing[0] == 404 and msgpack.unpackb(missing[1])["error"]["code"] == "not_found"
        for index in (room_event, annika_device_index, *mine):
            got = await _get(s, f"{url}/{index}", {"Authorization": f"Bearer {tokens[mallory]}"})
            assert got == missing, index
        for index in (room_event, size + 1000):
            status, body = await _get(s, f"{url}/{index}")
            assert status == 401 and annika.encode() not in body
        with pytest.raises(ServerError) as err:
            await own_entries(Http(server.url, "x" * 43, session=s))
        assert err.value.status == 401
        # bertram may contact annika (a shared room): her device entries open for him too
        _, device = await open_entry(http(bertram), annika_device_index)
        assert (device.user, device.device) == (annika, info["devices"][annika])
        # and the device list carries the registration's opening, checked by the client
        status, raw = await _get(s, f"{server.url}{CLIENT_PREFIX}/users/{annika}/devices",
                                 {"Authorization": f"Bearer {tokens[bertram]}"})
        listed = msgpack.unpackb(raw)["devices"]
        assert status == 200 and {decode_opening(d["opening"]).index for d in listed} >= {annika_device_index}
        # the approval of her laptop (sealed like the others): opened by a contact, not by
        # mallory, and listed with the opening of every entry of the laptop's chain
        _, approved = await open_entry(http(bertram), info["approval"])
        assert (approved.KIND, approved.user, approved.device, approved.approver_device) == (
            "device_approved", annika, info["laptop"], info["devices"][annika])
        got = await _get(s, f"{url}/{info['approval']}", {"Authorization": f"Bearer {tokens[mallory]}"})
        assert got == missing
        [laptop] = [d for d in listed if d["device_id"] == info["laptop"]]
        assert laptop["chain"] == [info["approval"], annika_device_index]
        assert [decode_opening(o).index for o in laptop["chain_openings"]] == laptop["chain"]


async def test_auditor_reads_are_logged_and_revocable(run):
    server, _ = run
    added = _auditor(server, "add", "hhs")
    assert added.returncode == 0, added.stderr
    credential = added.stdout.strip()
    assert _auditor(server, "add", "hhs").returncode == 1  # one sentence, exit 1
    with _db(server) as conn:
        assert credential.encode() not in b"".join(bytes(r[0]) for r in conn.execute(
            "SELECT token_hash FROM log_auditors"))
    async with aiohttp.ClientSession() as s:
        source = HttpSource(s, server.url)
        openings = auditor_openings(s, server.url, credential)
        report, _ = await verify_log(source, openings=openings)  # every opening checked
        size = report.checkpoint.size
        assert report.opened == size and report.devices  # the auditor sees the device history
        # each read appended one sealed auditor_read entry (naming auditor and index by commitment)
        with _db(server) as conn:
            reads = [decode_opening_row(r) for r in conn.execute(
                "SELECT data FROM translog_openings WHERE idx >= ?", (size,))]
        read = [e for e in reads if isinstance(e, AuditorRead)]
        assert sorted(e.index for e in read) == list(range(size)) and {e.auditor for e in read} == {"hhs"}
        status, raw = await _get(s, f"{server.url}{LOG}/tile/entries/000.p/{size + 1}")
        if status == 200:
            assert b"hhs" not in raw
        # the CLI with the credential: every opening checked, the device history shown
        cli = await asyncio.to_thread(subprocess.run, [
            *CONFIDE, "audit", "verify", server.url, "--credential", credential],
            cwd=REPO, capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert "openings checked:" in cli.stdout and "devices of @annika:a.test" in cli.stdout
        # revoked: refused, and nothing more is logged
        assert _auditor(server, "revoke", "hhs").returncode == 0
        assert "revoked" in _auditor(server, "list").stdout
        status, _ = await _get(s, f"{server.url}{CLIENT_PREFIX}/log/openings/0",
                               {"Authorization": f"ConfideAuditor {credential}"})
        assert status == 401
    # the CLI: without a credential, structure only; with a revoked one, one sentence, exit 1
    cli = subprocess.run([*CONFIDE, "audit", "verify", server.url], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 0 and "openings not checked" in cli.stdout and "annika" not in cli.stdout
    cli = subprocess.run([*CONFIDE, "audit", "verify", server.url, "--credential", credential],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1 and "revoked" in cli.stderr


def decode_opening_row(row):
    from protocol.audit import decode_entry

    return decode_entry(bytes(row[0]))


async def test_failed_logins_are_counted_per_window_not_logged_per_guess(run):
    server, _ = run

    def logged() -> list[FailedLogins]:
        with _db(server) as conn:
            rows = conn.execute("SELECT data FROM translog_openings ORDER BY idx").fetchall()
        return [e for e in map(decode_opening_row, rows) if isinstance(e, FailedLogins)]

    before = sum(e.count for e in logged())
    for user in ("bertram", "nobody-at-all", "bertram"):
        assert await _wrong_login(server, user) == 403
    for _ in range(200):  # the 1-second windows close and are logged by the background task
        if sum(e.count for e in logged()) >= before + 3:
            break
        await asyncio.sleep(0.05)
    entries = logged()
    assert sum(e.count for e in entries) == before + 3
    assert all(e.time - e.window_start == 1000 for e in entries)
    with _db(server) as conn:
        opened = b"".join(bytes(r[0]) for r in conn.execute("SELECT data FROM translog_openings"))
        public = b"".join(bytes(r[0]) for r in conn.execute("SELECT data FROM translog_entries"))
    assert b"nobody-at-all" not in opened and b"nobody-at-all" not in public
    assert b"login_failed" not in public


async def test_the_log_relay_refuses_anonymous_callers(run):
    server, info = run
    relay = f"{server.url}{CLIENT_PREFIX}/federation/a.test{LOG}/checkpoint"
    async with aiohttp.ClientSession() as s:
        status, body = await _get(s, relay)
        assert status == 401 and msgpack.unpackb(body)["error"]["code"] == "unauthorized"
        status, body = await _get(s, relay, {"Authorization": f"Bearer {'A' * 43}"})
        assert status == 401
        # a signed-in user reaches the relay (which refuses what is not a configured peer)
        token = info["tokens"][info["users"][0]]
        status, body = await _get(s, relay, {"Authorization": f"Bearer {token}"})
        assert status != 401 and msgpack.unpackb(body)["error"]["code"] in ("peer_unreachable", "not_found")
