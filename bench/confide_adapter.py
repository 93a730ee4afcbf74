"""``ConfideAdapter``: the scenario of ``../shared/bench/matrix_load.py`` against Confide.

Run by ``bench.homeserver`` as ``matrix_load.py --adapter bench.confide_adapter:ConfideAdapter``
(with the repository root on ``PYTHONPATH``). Everything is real MLS:

- setup: each user is registered from a single-use invite made with
  ``confide admin invite --data DIR`` against the server's data directory (or
  logs in again from its profile on a later run), which registers the device's
  keys and uploads KeyPackages (the SDK, :class:`client.sdk.Client`); alice
  creates the room as a one-member MLS group, invites bob with a real commit
  and Welcome (bob's KeyPackage claimed and checked in the log), and bob joins
  from the Welcome in his inbox;
- messages: real MLS PrivateMessages of alice's group (suite 3), each carrying
  a text payload sized (plus padding) so that the PrivateMessage's
  ``ciphertext`` field is exactly ``--ciphertext-len`` bytes (400). They are
  **protected before the timed phases** (in ``create_private_room``, once bob
  has joined: the epoch does not move afterwards), so the load generator's
  CPU, which shares the machine's two cores with the server, is not spent on
  MLS during the measurement. If the pool runs dry a message is protected on
  the spot (counted in ``stats()``);
- ``send_event`` is ``POST /rooms/{room_id}/send`` (msgpack ``txn_id``,
  ``message``) and returns the event id; ``sync`` is the long-poll
  ``GET /sync``: a sync without a token first pages to the end of the stream,
  as a Matrix initial sync starts at "now";
- ``close_session(bob)`` has bob's SDK decrypt everything the hub delivered
  and reports how many messages it read (``stats()``), so the run shows that
  the server relayed real, decryptable MLS messages.

Configuration comes from the environment (``matrix_load`` owns the command
line): ``CONFIDE_BENCH_DATA`` (the server's data directory, for invites),
``CONFIDE_BENCH_PROFILES`` (where the clients keep their profiles; default a
temporary directory), ``CONFIDE_BENCH_STATS`` (a file to write ``stats()`` to
as JSON at the end), ``CONFIDE_BENCH_VERIFY`` (``0`` skips bob's decryption).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

from client.profile import MINIMUM, Profile
from client.sdk import Client, TextMessage
from client.sdk.errors import TransportError
from client.sdk.payload import encode_text
from client.sdk.store import RoomStatus
from crypto.mls import Group
from crypto.primitives import sha256
from protocol.padding import bucket
from protocol.txn_ids import new_client_txn_id

_main = sys.modules.get("__main__")
if hasattr(_main, "ChatAdapter"):  # matrix_load.py is running and loads this adapter
    ChatAdapter, HTTPError = _main.ChatAdapter, _main.HTTPError
    Session, SyncResult = _main.Session, _main.SyncResult
else:  # imported on its own: the scenario's module must be importable
    from matrix_load import ChatAdapter, HTTPError, Session, SyncResult

__all__ = ["ConfideAdapter", "EVENT_TYPE", "PREFIX"]

PREFIX = "/_confide/client/v1"
EVENT_TYPE = "mls.private_message"
_MSGPACK = "application/msgpack"
_PASSPHRASE = "bench-profile"
_POOL_MARGIN = 64
_PAGE = 1000
#: Events per SDK sync page when bob reads: small answers, see :func:`sdk_sync_page`.
SDK_PAGE = 25
_SDK_TRIES = 5


def _room_path(room_id: str) -> str:
    return urllib.parse.quote(room_id, safe="")


async def sdk_sync_page(client: Client, timeout_ms: int = 0) -> int:
    """One SDK sync of at most :data:`SDK_PAGE` events, retried on a transport error; returns
    how many events and inbox items the server sent.

    The SDK's ``Http.call`` reads a body with one ``StreamReader.read(n)``, which returns what
    has arrived so far: an answer larger than one read (tens of KB) can come back cut and fail
    as "not msgpack" (reported to the SDK's owners). Small pages and retries (a sync is
    idempotent: the token moves only after the answer was applied) keep the bench clear of it.
    """
    for attempt in range(_SDK_TRIES):
        try:
            async with client._exclusive():  # noqa: SLF001 - as Client.sync does
                for room_id in client.store.room_ids():
                    await client.rooms_engine.resolve_pending(room_id)
            body = await client.sync_engine.fetch(timeout_ms, limit=SDK_PAGE)
            async with client._exclusive():  # noqa: SLF001
                result = await client.sync_engine.apply(body)
            return result.raw_count
        except TransportError:
            if attempt == _SDK_TRIES - 1:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


def _client_txn_id(label: str) -> str:
    """The driver's transaction id in the one form the server takes (``protocol.txn_ids``):
    the same label gives the same id, so the driver's retries stay idempotent."""
    return new_client_txn_id(lambda n: sha256(label.encode())[:n])


class ConfideAdapter(ChatAdapter):
    name = "confide"

    def __init__(self, base_url: str, args: Any) -> None:
        super().__init__(base_url, args)
        self.data_dir = os.environ.get("CONFIDE_BENCH_DATA") or (
            str(Path(args.db_path[0]).parent) if args.db_path else None)
        profiles = os.environ.get("CONFIDE_BENCH_PROFILES")
        self.profiles = Path(profiles or tempfile.mkdtemp(prefix="confide-bench-"))
        self.clients: dict[str, Client] = {}
        self.pool: list[bytes] = []
        self.pool_room: str | None = None
        self.counters = {"precomputed": 0, "protected_on_demand": 0, "ciphertext_len": None,
                         "message_bytes": None, "decrypted_by_bob": None, "bob_sync_s": None}

    # -- plumbing -------------------------------------------------------------------------------

    def _h(self, s: Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {s.token}", "Accept": _MSGPACK}

    async def _call(self, http: aiohttp.ClientSession, method: str, path: str, what: str,
                    s: Session | None = None, body: dict | None = None,
                    params: dict | None = None) -> dict:
        headers = self._h(s) if s is not None else {"Accept": _MSGPACK}
        data = None
        if body is not None:
            headers["Content-Type"] = _MSGPACK
            data = msgpack.packb(body, use_bin_type=True)
        async with http.request(method, f"{self.base_url}{PREFIX}{path}", data=data,
                                headers=headers, params=params) as r:
            raw = await r.read()
            status = r.status
        try:
            out = msgpack.unpackb(raw, raw=False) if raw else {}
        except Exception:  # noqa: BLE001 - msgpack raises several types
            out = raw[:300]
        if status != 200:
            raise HTTPError(status, out, what)
        return out

    async def wait_ready(self, http: aiohttp.ClientSession, timeout_s: float) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() < t0 + timeout_s:
            try:
                async with http.get(f"{self.base_url}{PREFIX}/hub_key") as r:
                    await r.read()
                    if r.status == 200:
                        return time.perf_counter() - t0
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        raise TimeoutError(f"server not ready after {timeout_s}s")

    async def server_info(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.base_url}{PREFIX}/hub_key") as r:
            return {"server_header": r.headers.get("Server"), "hub_key_status": r.status}

    # -- accounts -------------------------------------------------------------------------------

    def _invite(self) -> str:
        if not self.data_dir:
            raise RuntimeError("set CONFIDE_BENCH_DATA (or --db-path) to the server's data dir")
        exe = Path(sys.executable).with_name("confide")
        cmd = [str(exe)] if exe.exists() else [shutil.which("confide") or "confide"]
        out = subprocess.run([*cmd, "admin", "invite", "--data", self.data_dir, "--role", "client"],
                             check=True, capture_output=True, text=True, timeout=60)
        return out.stdout.strip().splitlines()[-1]

    async def login_or_register(self, http, username, password, device_id):
        directory = self.profiles / username
        if Profile.exists(directory):
            profile = Profile.open(directory, _PASSPHRASE)
            client = await Client.login(profile, self.base_url, username, password,
                                        session=http, auto_add_own_devices=False)
            how = "login (SDK: keys and KeyPackages topped up)"
        else:
            profile = Profile.create(directory, _PASSPHRASE, MINIMUM)
            invite = await asyncio.to_thread(self._invite)
            client = await Client.register(profile, self.base_url, invite, username, password,
                                           session=http, auto_add_own_devices=False)
            how = "invite + register (SDK: device keys and KeyPackages uploaded)"
        acct = client.store.account()
        self.clients[acct.user_id] = client
        s = Session(username=username, user_id=acct.user_id, device_id=acct.device_id,
                    token=acct.access_token, http=http)
        s.extra["how"] = how
        return s

    # -- the room -------------------------------------------------------------------------------

    async def create_private_room(self, s, invite, name):
        alice = self.clients[s.user_id]
        room_id = await alice.create_room(name)
        for user in invite:
            await alice.invite(room_id, user)
        self.pool_room = room_id
        return room_id

    async def join_room(self, s, room_id):
        bob = self.clients[s.user_id]
        deadline = time.perf_counter() + 30
        while room_id not in bob.store.room_ids() or bob.store.room(room_id).status is not RoomStatus.JOINED:
            if time.perf_counter() > deadline:
                raise TimeoutError("bob did not join from the Welcome within 30 s")
            await sdk_sync_page(bob, timeout_ms=2000)
        # The epoch is settled: protect the whole run's messages now, outside the timed phases.
        sender = next(c for uid, c in self.clients.items() if uid != s.user_id)
        a = self.args
        self._precompute(sender, room_id, a.n_seq + a.n_conc + a.n_e2e + _POOL_MARGIN,
                         a.ciphertext_len)

    def _precompute(self, client: Client, room_id: str, n: int, ciphertext_len: int) -> None:
        with client.profile.locked():
            room = client.store.room(room_id)
            group = Group.from_bytes(room.group)
            text_len, padding = self._calibrate(group, ciphertext_len)
            out = []
            for i in range(n):
                out.append(self._protect(group, i, text_len, padding))
            room.group = group.to_bytes()  # the used generations are gone for good
            client.store.save_room(room)
        self.pool = out[::-1]
        self.counters["precomputed"] = n
        self._group, self._shape = None, (text_len, padding)

    @staticmethod
    def _text(i: int, n: int) -> str:
        head = f"bench message {i:08d} "
        return (head + "x" * n)[:n] if n >= len(head) else head[:n]

    def _protect(self, group: Group, i: int, text_len: int, padding: int) -> bytes:
        return group.protect(encode_text(self._text(i, text_len)), padding=padding).to_bytes()

    def _calibrate(self, group: Group, target: int) -> tuple[int, int]:
        """(text length, padding) giving a PrivateMessage ciphertext of exactly ``target`` bytes
        (or the smallest text when the overhead alone exceeds it). Uses (and discards) one
        generation of the sender's ratchet. ``target`` is rounded up to a padding bucket: the
        hub takes no other length (``protocol.padding``, spec/security.md finding 9)."""
        target = bucket(target)
        probe = group.protect(encode_text(self._text(0, 1)))
        overhead = len(probe.body.ciphertext) - 1
        text_len = max(1, target - overhead)
        while True:  # the payload's own length prefix grows with the text
            msg = group.protect(encode_text(self._text(0, text_len)))
            if len(msg.body.ciphertext) <= target or text_len == 1:
                break
            text_len -= 1
        padding = max(0, target - len(msg.body.ciphertext))
        check = group.protect(encode_text(self._text(0, text_len)), padding=padding)
        self.counters["ciphertext_len"] = len(check.body.ciphertext)
        self.counters["message_bytes"] = len(check.to_bytes())
        self.counters["payload_text_bytes"] = text_len
        self.counters["padding"] = padding
        return text_len, padding

    # -- the measured calls ----------------------------------------------------------------------

    def make_encrypted_payload(self, sender, ciphertext_len):
        if self.pool:
            return EVENT_TYPE, {"message": self.pool.pop()}
        client = self.clients[sender.user_id]
        with client.profile.locked():
            room = client.store.room(self.pool_room)
            group = Group.from_bytes(room.group)
            text_len, padding = self._shape
            msg = self._protect(group, self.counters["protected_on_demand"], text_len, padding)
            room.group = group.to_bytes()
            client.store.save_room(room)
        self.counters["protected_on_demand"] += 1
        return EVENT_TYPE, {"message": msg}

    async def send_event(self, s, room_id, event_type, content, txn_id):
        out = await self._call(s.http, "POST", f"/rooms/{_room_path(room_id)}/send", "send", s,
                               {"txn_id": _client_txn_id(txn_id), "message": content["message"]})
        return out["event_id"]

    async def sync(self, s, since, timeout_ms, room_id):
        if since is None:  # start at the end of the stream, as a Matrix initial sync does
            since = "0"
            while True:
                out = await self._call(s.http, "GET", "/sync", "sync", s,
                                       params={"since": since, "timeout": "0",
                                               "limit": str(_PAGE)})
                since = out["next"]
                if len(out["events"]) + len(out["inbox"]) < _PAGE:
                    return SyncResult(next_since=since, events=[])
        out = await self._call(s.http, "GET", "/sync", "sync", s,
                               params={"since": since, "timeout": str(timeout_ms)})
        return SyncResult(next_since=out["next"],
                          events=[(e["room_id"], e["event_id"]) for e in out["events"]])

    async def close_session(self, s):
        client = self.clients.get(s.user_id)
        if client is None:
            return
        if self.pool_room and s.user_id != self._sender_id() and \
                os.environ.get("CONFIDE_BENCH_VERIFY", "1") != "0":
            await self._verify(client)
        self._write_stats()

    def _sender_id(self) -> str | None:
        return next(iter(self.clients), None)

    async def _verify(self, bob: Client) -> None:
        """Bob's SDK reads the room: every delivered message decrypted and checked."""
        t0 = time.perf_counter()
        before = len(bob.messages(self.pool_room))
        while await sdk_sync_page(bob):
            pass
        read = [m for m in bob.messages(self.pool_room)[before:]
                if isinstance(m, TextMessage) and m.body.startswith("bench message")]
        self.counters["decrypted_by_bob"] = len(read)
        self.counters["bob_sync_s"] = round(time.perf_counter() - t0, 2)

    def stats(self) -> dict[str, Any]:
        return dict(self.counters)

    def _write_stats(self) -> None:
        path = os.environ.get("CONFIDE_BENCH_STATS")
        if path:
            Path(path).write_text(json.dumps(self.stats()))
