"""Real MLS members against the in-process server of :func:`tests.harness.inprocess.start`.

A :class:`Member` is a registered device with its keys registered, its own
:class:`crypto.mls.Group` per room, and the private halves of the KeyPackages it
uploaded (by KeyPackageRef), so it can join from a Welcome routed to its inbox.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from crypto.mls import Group, MLSMessage, generate_key_package, get_suite, key_package_ref
from crypto.mls.key_package import KeyPackage
from crypto.mls.key_package_gen import KeyPackagePrivate
from crypto.primitives import sha256, x25519_public_key
from crypto.rng import system_rng
from protocol.channel_errors import InvalidTxnId
from protocol.padding import application_padding
from protocol.room_channels import derive_group_id
from protocol.sealed import seal_to_device
from protocol.txn_ids import new_client_txn_id, parse_client_txn_id

from .inprocess import DeviceKit, Harness

__all__ = ["Member", "new_member", "create_room", "send", "send_text", "invite", "accept_welcome",
           "sync", "joined_pair", "SUITE", "txn", "protect", "new_group",
           "box", "BOX_KEY"]

SUITE = 3


def txn(label: str) -> str:
    """A client transaction id (the one fixed format, ``protocol.txn_ids``) named by ``label``:
    the same label gives the same id."""
    return new_client_txn_id(lambda n: sha256(label.encode())[:n])


def txn_id(label: str) -> str:
    """``label`` if it is a transaction id already, else :func:`txn` of it."""
    try:
        return parse_client_txn_id(label)
    except InvalidTxnId:
        return txn(label)


#: A throwaway recipient X25519 key pair of the sealed to-device boxes tests send.
BOX_KEY = (bytes(range(1, 33)), x25519_public_key(bytes(range(1, 33))))


@functools.cache
def box(data: bytes) -> bytes:
    """A sealed to-device box of ``data`` (``protocol.sealed``) for :data:`BOX_KEY`: the same
    bytes for the same ``data``, so a test can compare what arrives with what it sent."""
    return seal_to_device(BOX_KEY[1], data, system_rng)


def protect(group: Group, data: bytes) -> bytes:
    """An application message as the SDK makes it: padded to a bucket (``protocol.padding``)."""
    return group.protect(data, padding=application_padding(data)).to_bytes()


def new_group(kp: KeyPackage, priv: KeyPackagePrivate) -> Group:
    """A new room's group with the SDK's group id (``protocol.room_channels.derive_group_id``)."""
    return Group.create(SUITE, derive_group_id(kp.leaf_node.encryption_key), kp, priv)


@dataclass
class Member:
    hs: Harness
    kit: DeviceKit
    token: str
    groups: dict[str, Group] = field(default_factory=dict)
    privates: dict[bytes, tuple[KeyPackage, KeyPackagePrivate]] = field(default_factory=dict)
    since: str | None = None

    @property
    def user(self) -> str:
        return self.kit.user

    @property
    def device(self) -> str:
        return self.kit.device

    @property
    def identity(self) -> bytes:
        return f"{self.user}/{self.device}".encode()

    def key_package(self, last_resort: bool = False) -> tuple[KeyPackage, KeyPackagePrivate]:
        suite = get_suite(SUITE)
        kp, priv = generate_key_package(suite, self.identity, system_rng, last_resort=last_resort,
                                        signature_priv=self.kit.seed)
        self.privates[key_package_ref(suite, kp)] = (kp, priv)
        return kp, priv

    async def upload_key_packages(self, n: int = 2) -> None:
        one_time = [MLSMessage(self.key_package()[0]).to_bytes() for _ in range(n)]
        last = MLSMessage(self.key_package(last_resort=True)[0]).to_bytes()
        status, body = await self.hs.call("POST", "/keys/packages",
                                          {"one_time": one_time, "last_resort": last}, token=self.token)
        assert status == 200, body

    async def call(self, method: str, path: str, body: Any = None, **kw) -> tuple[int, Any]:
        return await self.hs.call(method, path, body, token=self.token, **kw)


async def new_member(hs: Harness, name: str, *, device_of: Member | None = None,
                     approve: bool = True) -> Member:
    """A registered user (or, with ``device_of``, a second device of that user, approved by
    ``device_of`` unless ``approve`` is False) with keys."""
    if device_of is None:
        reg = await hs.register(name)
        user, device, token = reg["user_id"], reg["device_id"], reg["access_token"]
    else:
        status, reg = await hs.login(device_of.user.split(":")[0][1:])
        assert status == 200, reg
        user, device, token = reg["user_id"], reg["device_id"], reg["access_token"]
    kit = DeviceKit(user, device)
    status, body = await hs.call("PUT", "/keys/device", kit.registration(), token=token)
    assert status == 200, body
    if device_of is not None and approve:
        approval = device_of.kit.approval(device, kit.signature_key, int(hs.clock() * 1000))
        status, body = await device_of.call("POST", f"/devices/{device}/approve", approval)
        assert status == 200, body
    return Member(hs, kit, token)


async def create_room(m: Member, txn: str = "create-1") -> str:
    kp, priv = m.key_package()
    group = new_group(kp, priv)
    status, body = await m.call("POST", "/rooms", {
        "txn_id": txn_id(txn), "group_info": MLSMessage(group.group_info()).to_bytes()})
    assert status == 200, body
    m.groups[body["room_id"]] = group
    return body["room_id"]


async def send(m: Member, room: str, message: bytes, txn: str, **extra) -> tuple[int, Any]:
    return await m.call("POST", f"/rooms/{room}/send", {"txn_id": txn_id(txn), "message": message,
                                                        **extra})


async def send_text(m: Member, room: str, text: str, txn: str) -> dict:
    status, body = await send(m, room, protect(m.groups[room], text.encode()), txn)
    assert status == 200, body
    return body


async def invite(inviter: Member, room: str, invitee_user: str, txn: str) -> dict:
    """Claim a KeyPackage per device of ``invitee_user``, commit the Adds, route the Welcome."""
    status, claim = await inviter.call("POST", "/keys/claim", {"user": invitee_user})
    assert status == 200, claim
    kps = [MLSMessage.from_bytes(k["key_package"]).body for k in claim["key_packages"]]
    group = inviter.groups[room]
    staged = group.add_members(kps)
    # The staged GroupInfo has no external_pub; the merged group's has (for external joins).
    group.merge_staged_commit(staged)
    status, body = await send(inviter, room, staged.commit.to_bytes(), txn,
                              welcome=staged.welcome.to_bytes(),
                              group_info=MLSMessage(group.group_info()).to_bytes())
    assert status == 200, body
    return body


async def sync(m: Member, timeout: int = 0, **params) -> dict:
    query = {"timeout": str(timeout), **{k: str(v) for k, v in params.items()}}
    if m.since is not None:
        query.setdefault("since", m.since)
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    status, body = await m.call("GET", f"/sync?{qs}")
    assert status == 200, body
    m.since = body["next"]
    return body


def accept_welcome(m: Member, item: dict) -> str:
    """Join the room of a Welcome inbox item with the KeyPackage it names."""
    assert item["kind"] == "welcome"
    welcome = MLSMessage.from_bytes(item["payload"])
    for secrets in welcome.body.secrets:
        if secrets.new_member in m.privates:
            kp, priv = m.privates[secrets.new_member]
            m.groups[item["room_id"]] = Group.join(welcome, kp, priv)
            return item["room_id"]
    raise AssertionError("the Welcome names none of this device's KeyPackages")


async def joined_pair(hs: Harness, *, alice_synced: bool = False) -> tuple[Member, Member, str]:
    """Alice's room with Bob joined from the Welcome (both at epoch 1); ``alice_synced``: Alice
    has also synced once after the invite."""
    alice = await new_member(hs, "alice")
    bob = await new_member(hs, "bob")
    await bob.upload_key_packages()
    room = await create_room(alice)
    await invite(alice, room, bob.user, "inv")
    accept_welcome(bob, (await sync(bob))["inbox"][0])
    if alice_synced:
        await sync(alice)
    return alice, bob, room
