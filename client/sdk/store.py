"""The SDK's records in the encrypted profile (:class:`client.profile.Profile`).

Records and what they hold (all sealed at rest):

* ``account``: :class:`Account` (server URL, ids, access token, the device's
  Ed25519 seed, the pinned transparency-log key, the registration's log index);
* ``key_packages``: KeyPackage privates by KeyPackageRef (hex), with the KeyPackage;
* ``room/<room_id>``: :class:`RoomState` (MLS group state, last processed seq,
  status, a commit awaiting the hub's answer, the refused events after it);
* ``messages/<room_id>``: the decrypted messages of the room, in seq order
  (:class:`~client.sdk.messages.RoomMessage` records);
* ``sync``: the since-token of the last sync;
* ``invite/<room_id>``: :class:`Invitation`, a Welcome this device can open, waiting for
  the person to accept or decline it (finding 8);
* ``declined``: the (room, epoch) of Welcomes declined, so a redelivery is not shown again;
* ``settings``: profile options (``auto_join``: join every Welcome at once, default off);
* ``verified``: peer devices whose registration and approval were proven in the log (and,
  as ``log-vkey:<server>``, the log keys of other servers this device uses), and each
  user's pinned root device key (``root:@user:server``);
* ``notices``: the last 50 sentences about inbox items the SDK received and did not use;
* ``checkpoints``: per log origin, the last checkpoint this device accepted (size, root,
  the signed note), which every later checkpoint of that log must extend
  (:mod:`.logview`);
* ``log_alerts``: the rollbacks, forks and unwitnessed checkpoints refused (newest last);
* ``device_alerts``: alerts about this account's devices (pending, or active without a
  valid approval chain, or registered in the log and listed by the server as neither);
* ``own_log``: the first of this account's log entries not yet watched, and the devices
  the watched ones registered and did not remove.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from client.profile import Profile

from .errors import NotSignedIn, UnknownRoom
from .messages import RoomMessage, message_from_record

__all__ = ["Account", "RoomState", "RoomStatus", "PendingCommit", "StoredKeyPackage", "Invitation",
           "Store", "StoredCheckpoint", "MAX_DECLINED"]

#: Declined Welcomes remembered (the oldest are forgotten first).
MAX_DECLINED = 1000

#: Refused checkpoints remembered in ``log_alerts``.
MAX_LOG_ALERTS = 100


@dataclass(frozen=True)
class StoredCheckpoint:
    """The last checkpoint of one log that this device accepted."""

    origin: str
    size: int
    root: bytes
    note: bytes


@dataclass
class Account:
    server: str
    user_id: str
    device_id: str
    access_token: str
    signature_seed: bytes
    log_vkey: str | None = None
    log_index: int | None = None
    keys_registered: bool = False
    trust_document: bytes | None = None  # protocol.trust, checked against the invite's anchor
    #: The name the person gave this device: kept here only, never sent to the server.
    device_name: str = ""


@dataclass
class PendingCommit:
    """A commit sent (or about to be) whose answer is not known yet; see rooms.py."""

    txn_id: str
    message: bytes
    welcome: bytes | None
    group_info: bytes
    new_group: bytes


class RoomStatus(Enum):
    """This device's standing in a room."""

    JOINED = "joined"
    INVITED = "invited"  # a Welcome waits for accept or decline (an Invitation, no RoomState)
    LEFT = "left"  # it sent its Remove proposal and forgot the room's keys
    REMOVED = "removed"  # a commit removed it


@dataclass
class RoomState:
    room_id: str
    group: bytes | None  # Group.to_bytes(); None once left or removed
    last_seq: int = -1  # every event up to here has been processed, in order
    last_event_id: bytes | None = None  # id of event last_seq (for the prev chain)
    joined_epoch: int = 0  # events of earlier epochs cannot be read by this device
    status: RoomStatus = RoomStatus.JOINED
    name: str | None = None
    pending: PendingCommit | None = None
    warnings: list[str] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)  # Refusal records (envelopes.py)

    def to_record(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> RoomState:
        d = dict(d)
        p = d.pop("pending", None)
        d["status"] = RoomStatus(d.get("status", RoomStatus.JOINED.value))
        return cls(**d, pending=PendingCommit(**p) if p else None)


@dataclass
class StoredKeyPackage:
    key_package: bytes  # KeyPackage (not MLSMessage) encoding
    init_priv: bytes
    encryption_priv: bytes
    last_resort: bool


@dataclass
class Invitation:
    """A Welcome this device opened and verified but has not acted on. ``inviter`` is the
    MLS credential identity (``@user:server/DEVICE``) of the member whose signature on the
    Welcome's GroupInfo verified, never a field the server wrote; ``members`` the
    identities of the group the Welcome shows."""

    room_id: str
    welcome: bytes  # the MLSMessage as delivered
    key_package_ref: str
    inviter: str
    epoch: int
    members: list[str] = field(default_factory=list)

    @property
    def inviter_user(self) -> str:
        return self.inviter.split("/", 1)[0]


class Store:
    """Typed access to the profile's records."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    # -- account -----------------------------------------------------------------------
    def account(self) -> Account:
        d = self.profile.get("account")
        if d is None:
            raise NotSignedIn("this profile has no account: register or log in first")
        return Account(**d)

    def has_account(self) -> bool:
        return self.profile.get("account") is not None

    def save_account(self, account: Account) -> None:
        self.profile.put("account", asdict(account))

    # -- key packages ----------------------------------------------------------------
    def key_packages(self) -> dict[str, StoredKeyPackage]:
        return {ref: StoredKeyPackage(**v) for ref, v in self.profile.get("key_packages", {}).items()}

    def save_key_packages(self, kps: dict[str, StoredKeyPackage]) -> None:
        self.profile.put("key_packages", {ref: asdict(v) for ref, v in kps.items()})

    # -- rooms ---------------------------------------------------------------------------
    def room(self, room_id: str) -> RoomState:
        d = self.profile.get(f"room/{room_id}")
        if d is None:
            raise UnknownRoom(f"this device has no state for room {room_id}")
        return RoomState.from_record(d)

    def has_room(self, room_id: str) -> bool:
        return self.profile.get(f"room/{room_id}") is not None

    def save_room(self, room: RoomState) -> None:
        self.profile.put(f"room/{room.room_id}", room.to_record())

    def room_ids(self) -> list[str]:
        return [n.removeprefix("room/") for n in self.profile.names("room/")]

    # -- messages ----------------------------------------------------------------------
    def messages(self, room_id: str) -> list[RoomMessage]:
        return [message_from_record(d) for d in self.profile.get(f"messages/{room_id}", [])]

    def add_messages(self, room_id: str, new: list[RoomMessage]) -> None:
        if not new:
            return
        have: list[dict[str, Any]] = self.profile.get(f"messages/{room_id}", [])
        seen = {d["seq"] for d in have}
        have.extend(m.to_record() for m in new if m.seq not in seen)
        have.sort(key=lambda d: d["seq"])
        self.profile.put(f"messages/{room_id}", have)

    # -- invitations and settings ----------------------------------------------------------
    def invitations(self) -> list[Invitation]:
        return [Invitation(**self.profile.get(n)) for n in self.profile.names("invite/")
                if self.profile.get(n) is not None]

    def invitation(self, room_id: str) -> Invitation | None:
        d = self.profile.get(f"invite/{room_id}")
        return Invitation(**d) if d is not None else None

    def save_invitation(self, inv: Invitation) -> None:
        self.profile.put(f"invite/{inv.room_id}", asdict(inv))

    def drop_invitation(self, room_id: str, *, declined_epoch: int | None = None) -> None:
        self.profile.delete(f"invite/{room_id}")
        if declined_epoch is not None:
            seen = [k for k in self.profile.get("declined", []) if k != f"{room_id} {declined_epoch}"]
            seen.append(f"{room_id} {declined_epoch}")
            self.profile.put("declined", seen[-MAX_DECLINED:])

    def was_declined(self, room_id: str, epoch: int) -> bool:
        return f"{room_id} {epoch}" in self.profile.get("declined", [])

    def auto_join(self) -> bool:
        return bool(self.profile.get("settings", {}).get("auto_join", False))

    def set_auto_join(self, on: bool) -> None:
        settings = dict(self.profile.get("settings", {}))
        settings["auto_join"] = bool(on)
        self.profile.put("settings", settings)

    # -- sync and verification -----------------------------------------------------------
    def sync_token(self) -> str | None:
        return self.profile.get("sync", {}).get("token")

    def save_sync_token(self, token: str | None) -> None:
        self.profile.put("sync", {"token": token})

    def verified(self) -> dict[str, bytes]:
        """``"@user:server/DEVICE"`` -> signature key proven in the log."""
        return self.profile.get("verified", {})

    def checkpoint(self, origin: str) -> StoredCheckpoint | None:
        d = self.profile.get("checkpoints", {}).get(origin)
        return None if d is None else StoredCheckpoint(origin, d["size"], d["root"], d["note"])

    def save_checkpoint(self, cp: StoredCheckpoint) -> None:
        all_ = self.profile.get("checkpoints", {})
        all_[cp.origin] = {"size": cp.size, "root": cp.root, "note": cp.note}
        self.profile.put("checkpoints", all_)

    def log_alerts(self) -> list[dict[str, Any]]:
        return self.profile.get("log_alerts", [])

    def add_log_alert(self, alert: dict[str, Any]) -> None:
        alerts = self.log_alerts()
        alerts.append(alert)
        self.profile.put("log_alerts", alerts[-MAX_LOG_ALERTS:])

    def add_verified(self, identity: str, key: bytes) -> None:
        v = self.verified()
        v[identity] = key
        self.profile.put("verified", v)

    # -- notices -----------------------------------------------------------------------
    def notices(self) -> list[str]:
        """Sentences about inbox items received and not used (oldest first, at most 50)."""
        return list(self.profile.get("notices", []))

    def add_notice(self, sentence: str) -> None:
        self.profile.put("notices", [*self.notices(), sentence][-50:])

    def forget_verified(self, prefix: str) -> None:
        """Drop every verified entry whose name starts with ``prefix``."""
        self.profile.put("verified", {k: v for k, v in self.verified().items()
                                      if not k.startswith(prefix)})

    # -- alerts about this account's devices (client/sdk/device_trust.py) -------------------
    def own_log(self) -> tuple[int, dict[str, int]]:
        """(the first index of this account's log entries not yet looked at, the devices they
        registered and did not remove: device id -> index), for own_devices.py."""
        rec = self.profile.get("own_log", {"mark": 0, "devices": {}})
        return int(rec["mark"]), dict(rec["devices"])

    def set_own_log(self, mark: int, devices: dict[str, int]) -> None:
        self.profile.put("own_log", {"mark": mark, "devices": devices})

    def alerts(self) -> list[str]:
        return list(self.profile.get("device_alerts", []))

    def add_alert(self, text: str, keep: int = 50) -> bool:
        """Record ``text`` unless it is already recorded; returns whether it is new."""
        alerts = self.alerts()
        if text in alerts:
            return False
        self.profile.put("device_alerts", (alerts + [text])[-keep:])
        return True

    def clear_alerts(self, containing: str) -> None:
        self.profile.put("device_alerts", [a for a in self.alerts() if containing not in a])
