"""Finding 3 (issue 10): the trust anchor comes out of band, checkpoints only move forward,
a practice's witness quorum holds, and a peer's log key is the anchored one.

Real ``confide serve`` processes on loopback; the client-side attacks go through a
malicious proxy in front of the server (:class:`Proxy`), which can rewrite any answer:

1. a proxy that serves another trust document (another log key) than the invite's anchor:
   ``register`` and a new device's ``login`` are refused before the code or the password is
   sent, nothing is written to the profile and the invite stays usable;
2. a server that rolls its log back (an older checkpoint, replayed) or forks it (a
   checkpoint signed with its real log key over another history): the client refuses the
   checkpoint, the room stays as it was, and the checkpoint it accepted before is kept;
3. a practice that requires a witness cosignature (``[log] witnesses``, ``witness_quorum``):
   a checkpoint without it, or cosigned by an unlisted witness, is refused; with it, accepted
   (the cosignature made by the test through the proxy, and by a real federated witness:
   b.test's, which a.test submits its grown log to; while b.test is down, an entry under
   the last cosigned checkpoint is still proven and a newer one is refused);
4. a peer's log, relayed by our own (malicious) server under another key than the one the
   trust document lists for that peer: refused; the honest relay is accepted. For a peer
   the document does not list, a key statement not signed by our server's anchored log
   key is refused, and the one it signs is pinned.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import aiohttp
import msgpack
import pytest
from aiohttp import web

from client.profile import MINIMUM, Profile
from client.sdk import Client, LogInconsistent, TrustAnchorMismatch, VerificationFailed
from crypto.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from crypto.note import SIG_COSIGNATURE_V1, Signer, parse_note, sign_note
from protocol.trust import TrustDocument, TrustDocumentInvalid, peer_log_key_text
from tests.harness import PASSWORD, PeerProcess, eventually, free_port, register_client
from tests.harness.processes import CONFIDE, REPO
from tests.security.conftest import get, quoted

pytestmark = [pytest.mark.net, pytest.mark.timeout(120)]

FED = "retry_initial_ms = 50\nretry_max_ms = 500\nkey_refetch_interval = 0\n"


class Proxy:
    """A malicious HTTP proxy in front of ``upstream``: ``rewrite(path_qs, body)`` may return
    other bytes for any answer (None keeps them); ``seen`` records checkpoint notes served."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rewrite = None
        self.checkpoints: list[bytes] = []

    async def __aenter__(self) -> Proxy:
        self.session = aiohttp.ClientSession(auto_decompress=True)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()
        await self.session.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "authorization", "accept")}
        async with self.session.request(request.method, self.upstream + request.path_qs,
                                        data=body or None, headers=headers) as r:
            data, status, ctype = await r.read(), r.status, r.headers.get("Content-Type")
        if request.path.endswith("/_confide/log/v1/checkpoint") and status == 200:
            self.checkpoints.append(data)
        if self.rewrite is not None:
            changed = self.rewrite(request.path_qs, data)
            data = data if changed is None else changed
        return web.Response(status=status, body=data, headers={"Content-Type": ctype} if ctype else {})


def _seed_key(data: Path, name: str) -> bytes:
    """A key file made before the server's first start (so the test knows the public key)."""
    (data / "keys").mkdir(mode=0o700, parents=True, exist_ok=True)
    seed = os.urandom(32)
    fd = os.open(data / "keys" / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(seed)
    return seed


def _log_seed(proc: PeerProcess) -> bytes:
    return (proc.data / "keys" / "log.key").read_bytes()


def _rows(proc: PeerProcess, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{proc.data / 'confide.sqlite'}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONFIDE_PASSPHRASE": "pp", "CONFIDE_PASSWORD": PASSWORD,
           "CONFIDE_PROFILE_KDF": "minimum"}
    return await asyncio.to_thread(subprocess.run, [*CONFIDE, *args], cwd=REPO, env=env,
                                   capture_output=True, text=True, timeout=60)


def _members(client: Client, room: str) -> tuple[str, ...]:
    return client.room(room).members


async def _start(*procs: PeerProcess) -> None:
    for p in procs:
        p.start()


def _stop(*procs: PeerProcess) -> None:
    for p in procs:
        if p.proc is not None:
            p.stop()


# -- 1. the anchor ------------------------------------------------------------------------


async def test_register_and_login_refuse_a_server_whose_trust_document_is_not_anchored(tmp_path):
    a = PeerProcess(tmp_path, "a.test", free_port(), {}, FED)
    await _start(a)
    try:
        invite = a.invite("client")
        code, _, anchor = invite.partition("#")
        assert len(anchor) == 43
        impostor_key = Signer("a.test", os.urandom(32)).verifier.vkey()
        forged = TrustDocument.of("a.test", impostor_key).encode()
        async with Proxy(a.url) as proxy:
            proxy.rewrite = lambda path, body: forged if path.endswith("/_confide/client/v1/trust") else None
            profile = Profile.create(tmp_path / "p-bob", "pp", MINIMUM)
            with pytest.raises(TrustAnchorMismatch, match="does not match the invite's anchor"):
                await Client.register(profile, proxy.url, invite, "bob", PASSWORD)
            assert profile.names("") == []  # nothing written to the profile
            with pytest.raises(TrustAnchorMismatch, match="no trust anchor"):
                await Client.register(profile, a.url, code, "bob", PASSWORD)
            assert profile.names("") == []
            # nothing reached the server: no account, the invite is still unused
            assert _rows(a, "SELECT COUNT(*) FROM accounts")[0][0] == 0
            bob = await register_client(None, a.url, tmp_path / "p-bob2", "bob", invite=invite)
            try:
                assert bob.anchor == anchor
                # a new device: the anchor is required, and checked against the server
                laptop = Profile.create(tmp_path / "p-bob-laptop", "pp", MINIMUM)
                with pytest.raises(TrustAnchorMismatch, match="needs the server's trust anchor"):
                    await Client.login(laptop, a.url, "bob", PASSWORD)
                with pytest.raises(TrustAnchorMismatch):
                    await Client.login(laptop, proxy.url, "bob", PASSWORD, anchor=anchor)
                assert laptop.names("") == []
                assert _rows(a, "SELECT COUNT(*) FROM devices")[0][0] == 1  # no login happened
            finally:
                await bob.close()
        # the CLI: one sentence, exit 5, no profile left behind
        env = {**os.environ, "CONFIDE_PASSPHRASE": "pp", "CONFIDE_PASSWORD": PASSWORD,
               "CONFIDE_PROFILE_KDF": "minimum"}
        other = Signer("a.test", os.urandom(32)).verifier.vkey()
        wrong = TrustDocument.of("a.test", other).anchor
        out = subprocess.run([*CONFIDE, "register", "--server", a.url, "--invite",
                              f"{a.invite('client').partition('#')[0]}#{wrong}", "--user", "carl",
                              "--profile", str(tmp_path / "p-carl")], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 5, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "does not match" in out.stderr
        assert not (tmp_path / "p-carl").exists()
    finally:
        _stop(a)


# -- 2. rollback and fork -------------------------------------------------------------------


async def test_a_rolled_back_or_forked_log_is_refused_and_the_old_checkpoint_kept(tmp_path):
    a = PeerProcess(tmp_path, "a.test", free_port(), {}, FED)
    await _start(a)
    clients: list[Client] = []
    try:
        async with Proxy(a.url) as proxy:
            alice = await register_client(None, proxy.url, tmp_path / "p-alice", "alice",
                                          invite=a.invite("clinician"), auto_add_own_devices=False)
            clients.append(alice)
            bob, carol = (await a.user("bob"), await a.user("carol"))
            clients += [bob, carol]
            room = await alice.create_room()
            await alice.invite(room, bob.user_id)  # accepted: the first checkpoint is stored
            first = alice.store.checkpoint("a.test")
            assert first is not None and first.size > 0
            dave = await a.user("dave")
            clients.append(dave)
            await alice.invite(room, dave.user_id)  # a later checkpoint, consistent with the first
            stored = alice.store.checkpoint("a.test")
            assert stored.size > first.size
            members = _members(alice, room)

            # rollback: the server answers with the older checkpoint it served before
            old_note = first.note
            proxy.rewrite = lambda path, body: old_note if path.endswith("/log/v1/checkpoint") else None
            with pytest.raises(LogInconsistent, match="ROLLBACK"):
                await alice.invite(room, carol.user_id)
            assert alice.store.checkpoint("a.test") == stored and _members(alice, room) == members

            # fork: a checkpoint signed with the server's real log key over another history
            signer = Signer("a.test", _log_seed(a))
            real = parse_checkpoint(parse_note(proxy.checkpoints[-1]).text)
            forged = sign_checkpoint(Checkpoint("a.test", real.size + 1, os.urandom(32)), signer)
            proxy.rewrite = lambda path, body: forged if path.endswith("/log/v1/checkpoint") else None
            with pytest.raises(LogInconsistent, match="FORK"):
                await alice.invite(room, carol.user_id)
            same_size = sign_checkpoint(Checkpoint("a.test", stored.size, os.urandom(32)), signer)
            proxy.rewrite = lambda path, body: same_size if path.endswith("/log/v1/checkpoint") else None
            with pytest.raises(LogInconsistent, match="FORK"):
                await alice.invite(room, carol.user_id)
            assert alice.store.checkpoint("a.test") == stored and _members(alice, room) == members
            kinds = [x["kind"] for x in alice.log_alerts()]
            assert kinds == ["rollback", "fork", "fork"]

            # the honest log again: accepted, and the stored checkpoint moves forward
            proxy.rewrite = None
            await alice.invite(room, carol.user_id)
            assert alice.store.checkpoint("a.test").size > stored.size
            assert any(m.startswith(carol.user_id) for m in _members(alice, room))

            # the CLI says it in one sentence (exit 5)
            profile = str(tmp_path / "p-erin")
            assert (await _cli("register", "--server", proxy.url, "--invite", a.invite("staff"),
                               "--user", "erin", "--profile", profile)).returncode == 0
            room2 = (await _cli("room", "create", "--profile", profile)).stdout.strip()
            assert (await _cli("room", "invite", "--profile", profile, room2, bob.user_id)).returncode == 0
            proxy.rewrite = lambda path, body: old_note if path.endswith("/log/v1/checkpoint") else None
            out = await _cli("room", "invite", "--profile", profile, room2, carol.user_id)
            assert out.returncode == 5 and len(out.stderr.strip().splitlines()) == 1, out.stderr
            assert "ROLLBACK" in out.stderr
    finally:
        for c in clients:
            await c.close()
        _stop(a)


# -- 3. the witness quorum ---------------------------------------------------------------------


def _cosign(note: bytes, witness: Signer) -> bytes:
    text = parse_note(note).text
    return note + witness.sign(text, int(time.time())).line().encode()


async def test_a_checkpoint_without_the_required_cosignatures_is_refused(tmp_path):
    witness = Signer("w.test/witness", os.urandom(32), SIG_COSIGNATURE_V1)
    stranger = Signer("x.test/witness", os.urandom(32), SIG_COSIGNATURE_V1)
    a = PeerProcess(tmp_path, "a.test", free_port(), {}, FED)
    a.cfg.write_text(a.cfg.read_text() + f'[log]\nwitnesses = ["{witness.verifier.vkey()}"]\n'
                     "witness_quorum = 1\n")
    await _start(a)
    clients: list[Client] = []
    try:
        async with Proxy(a.url) as proxy:
            alice = await register_client(None, proxy.url, tmp_path / "p-alice", "alice",
                                          invite=a.invite("clinician"), auto_add_own_devices=False)
            clients.append(alice)
            assert TrustDocument.of("a.test", alice.store.account().log_vkey, 1,
                                    [witness.verifier.vkey()]).anchor == alice.anchor
            bob = await a.user("bob")
            clients.append(bob)
            room = await alice.create_room()
            with pytest.raises(LogInconsistent, match="0 of the 1 witness cosignatures"):
                await alice.invite(room, bob.user_id)
            proxy.rewrite = lambda path, body: (_cosign(body, stranger)
                                                if path.endswith("/log/v1/checkpoint") else None)
            with pytest.raises(LogInconsistent, match="0 of the 1"):
                await alice.invite(room, bob.user_id)
            assert alice.store.checkpoint("a.test") is None
            assert _members(alice, room) == (f"{alice.user_id}/{alice.device_id}",)
            proxy.rewrite = lambda path, body: (_cosign(body, witness)
                                                if path.endswith("/log/v1/checkpoint") else None)
            await alice.invite(room, bob.user_id)
            assert alice.store.checkpoint("a.test") is not None
            assert any(m.startswith(bob.user_id) for m in _members(alice, room))
    finally:
        for c in clients:
            await c.close()
        _stop(a)


# -- 4. a peer's log key ---------------------------------------------------------------------------


async def test_a_relayed_peer_log_under_another_key_than_the_anchored_one_is_refused(tmp_path):
    pa, pb, pc = free_port(), free_port(), free_port()
    table = {"a.test": pa, "b.test": pb, "c.test": pc}

    def peers(name: str) -> dict[str, str]:
        return {k: f"http://127.0.0.1:{p}" for k, p in table.items() if k != name}

    a, b, c = (PeerProcess(tmp_path, n, table[n], peers(n), FED) for n in ("a.test", "b.test", "c.test"))
    b_key = Signer("b.test", _seed_key(b.data, "log.key")).verifier.vkey()
    c_key = Signer("c.test", _seed_key(c.data, "log.key")).verifier.vkey()
    a.cfg.write_text(a.cfg.read_text() + f'[log.peer_log_keys]\n"b.test" = "{b_key}"\n')
    await _start(a, b, c)
    clients: list[Client] = []
    try:
        async with Proxy(a.url) as proxy:
            alice = await register_client(None, proxy.url, tmp_path / "p-alice", "alice",
                                          invite=a.invite("clinician"), auto_add_own_devices=False)
            clients.append(alice)
            bob = await b.user("bob")
            clients.append(bob)
            room = await alice.create_room()
            # our server relays b.test's log under a key of its own making
            fake = Signer("b.test", os.urandom(32))

            def relay(path: str, body: bytes) -> bytes | None:
                if "/federation/b.test/_confide/log/v1/" not in path:
                    return None
                if path.endswith("/vkey"):
                    return (fake.verifier.vkey() + "\n").encode()
                if path.endswith("/checkpoint"):
                    cp = parse_checkpoint(parse_note(body).text)
                    return sign_checkpoint(cp, fake)
                return None

            proxy.rewrite = relay
            with pytest.raises(VerificationFailed, match="not signed by the log key"):
                await alice.invite(room, bob.user_id)
            assert _members(alice, room) == (f"{alice.user_id}/{alice.device_id}",)
            assert alice.store.checkpoint("b.test") is None
            assert "log-vkey:b.test" not in alice.store.verified()  # the relayed key is never pinned
            proxy.rewrite = None
            await alice.invite(room, bob.user_id)
            assert any(m.startswith(bob.user_id) for m in _members(alice, room))
            assert alice.store.checkpoint("b.test") is not None

            # c.test is not in the trust document: its key is the one a.test attests, signed
            # by a.test's anchored log key; a statement signed otherwise is refused
            carol = await c.user("carol")
            clients.append(carol)
            fake_a = Signer("a.test", os.urandom(32))
            fake = Signer("c.test", os.urandom(32))

            def attest(path: str, body: bytes) -> bytes | None:
                if path.endswith("/federation/c.test/log_key"):
                    text = peer_log_key_text("a.test", "c.test", fake.verifier.vkey())
                    return msgpack.packb({"note": sign_note(text, [fake_a])})
                return None

            proxy.rewrite = attest
            with pytest.raises(VerificationFailed, match="not attested by a.test"):
                await alice.invite(room, carol.user_id)
            assert not any(m.startswith(carol.user_id) for m in _members(alice, room))
            proxy.rewrite = None
            await alice.invite(room, carol.user_id)
            assert alice.store.verified()["log-vkey:c.test"] == c_key.encode()
            assert any(m.startswith(carol.user_id) for m in _members(alice, room))

            # the statement endpoint's edges: a token is needed, the own name is not_found,
            # a server that is no peer and a bad name are refused without a fetch
            token = alice.store.account().access_token
            base = a.url + "/_confide/client/v1/federation"
            assert get(f"{base}/c.test/log_key")[0] == 401
            status, body = get(f"{base}/a.test/log_key", token)
            assert (status, body["error"]["code"]) == (404, "not_found")
            status, body = get(f"{base}/nobody.test/log_key", token)
            assert (status, body["error"]["code"]) == (502, "peer_unreachable")
            status, body = get(f"{base}/{quoted('..')}/log_key", token)
            assert (status, body["error"]["code"]) == (400, "invalid_server_name")
    finally:
        for cl in clients:
            await cl.close()
        _stop(a, b, c)


def test_trust_document_anchor_is_base64url_sha256():
    doc = TrustDocument.of("a.test", Signer("a.test", bytes(32)).verifier.vkey())
    import hashlib

    want = base64.urlsafe_b64encode(hashlib.sha256(doc.encode()).digest()).decode().rstrip("=")
    assert doc.anchor == want


async def _witnessed(proc: PeerProcess, doc: TrustDocument) -> bool:
    from protocol.trust import check_witnesses

    async with aiohttp.ClientSession() as s, s.get(proc.url + "/_confide/log/v1/checkpoint") as r:
        note = await r.read()
    try:
        return check_witnesses(note, doc) >= 1
    except TrustDocumentInvalid:
        return False


async def test_the_quorum_is_met_by_a_real_federated_witness_and_missed_without_it(tmp_path):
    """The same policy with a real witness: b.test's, cosigning a.test's grown log."""
    pa, pb = free_port(), free_port()
    a = PeerProcess(tmp_path, "a.test", pa, {"b.test": f"http://127.0.0.1:{pb}"}, FED)
    b = PeerProcess(tmp_path, "b.test", pb, {"a.test": f"http://127.0.0.1:{pa}"}, FED)
    w = Signer("b.test/witness", _seed_key(b.data, "witness.key"), SIG_COSIGNATURE_V1).verifier.vkey()
    a.cfg.write_text(a.cfg.read_text() + f'[log]\nwitnesses = ["{w}"]\nwitness_quorum = 1\n')
    await _start(a, b)
    clients: list[Client] = []
    try:
        alice = await a.user("alice")
        bob, carol = await a.user("bob"), await a.user("carol")
        clients += [alice, bob, carol]
        doc = alice.keys.trust()
        assert doc.witnesses == (w,) and doc.witness_quorum == 1
        room = await alice.create_room()
        await eventually(lambda: _witnessed(a, doc), timeout=30, interval=0.2)
        await alice.invite(room, bob.user_id)  # b.test cosigned: accepted
        b.stop()  # the witness is gone; the log grows without cosignatures
        dave = await a.user("dave")
        clients.append(dave)
        # carol's registration is under the last cosigned checkpoint: still provable
        await alice.invite(room, carol.user_id)
        accepted = alice.store.checkpoint("a.test")
        # dave's is only under checkpoints no witness cosigned: refused until one does
        with pytest.raises(VerificationFailed, match="not yet in a checkpoint .* the witnesses cosigned"):
            await alice.invite(room, dave.user_id)
        assert not any(m.startswith(dave.user_id) for m in _members(alice, room))
        assert alice.store.checkpoint("a.test") == accepted
        b.start()
        await eventually(lambda: _witnessed(a, doc), timeout=30, interval=0.2)
        await alice.invite(room, dave.user_id)
        assert any(m.startswith(dave.user_id) for m in _members(alice, room))
        assert alice.store.checkpoint("a.test").size > accepted.size
    finally:
        for c in clients:
            await c.close()
        _stop(a, b)
