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
* ``verified``: peer devices whose registration and approval were proven in the log (and,
  as ``log-vkey:<server>``, the log keys of other servers this device uses), and each
  user's pinned root device key (``root:@user:server``);
* ``notices``: the last 50 sentences about inbox items the SDK received and did not use;
* ``checkpoints``: per log origin, the last checkpoint this device accepted (size, root,
  the signed note), which every later checkpoint of that log must extend
  (:mod:`.logview`);
* ``log_alerts``: the rollbacks, forks and unwitnessed checkpoints refused (newest last);
* ``device_alerts``: alerts about this account's devices (pending, or active without a
  valid approval chain).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from client.profile import Profile

from .errors import NotSignedIn, UnknownRoom
from .messages import RoomMessage, message_from_record

__all__ = ["Account", "RoomState", "RoomStatus", "PendingCommit", "StoredKeyPackage", "Store",
           "StoredCheckpoint"]

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
