"""Verifying room envelopes against the hub's published keys.

Every event a device applies is first verified here (``spec/client-server.md``
section 7, "A client verifies an envelope like this"):

1. the map decodes strictly (:meth:`protocol.events.SignedEvent.from_wire`) and its
   ``event_id`` is SHA-256 of the signed bytes;
2. ``hub_key_id`` names a key of the hub's key document that was valid at the
   event's ``ts``: the document comes from ``GET /hub_key?server=HUB`` (its
   self-signature is checked), is cached per hub and key id, and is fetched
   again when an event names a key id it does not list;
3. the hub's Ed25519 signature verifies with that key.

The chain (``seq`` one past the previous event's, ``prev`` its id) is checked
by :mod:`.sync`, which knows the room's last event.

An event that fails is *refused*: :func:`verify_envelope` raises
:class:`EventRefused` carrying a :class:`Refusal` (what failed, as a
:class:`Failure`, and one plain sentence). Failing to obtain a usable key
document at all (the server cannot be reached, or serves an invalid document)
is not a verdict on the event: :class:`HubKeys` raises
:class:`~client.sdk.errors.TransportError`, :class:`~client.sdk.errors.ServerError`
or :class:`~client.sdk.errors.VerificationFailed`, and nothing is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from protocol.events import EventIdMismatch, InvalidEventSignature, MalformedEvent, SignedEvent
from protocol.federation import ServerKeys, ServerKeysInvalid
from protocol.rooms_api import HubKeyResponse

from .errors import VerificationFailed
from .http import Http

__all__ = ["Failure", "ROOM_STOPPING", "Refusal", "EventRefused", "HubKeys", "verify_envelope"]


class Failure(Enum):
    """What made an event fail its checks."""

    MALFORMED = "malformed"
    EVENT_ID = "event_id"
    KEY_ID = "key_id"
    SIGNATURE = "signature"
    CHAIN = "chain"
    # The envelope is the hub's, but what it carries is refused (event_checks.py); these
    # do not stop the room: the event is consumed and later ones are applied.
    KIND = "kind"
    CONTENT = "content"
    WELCOME = "welcome"


#: The failures after which the room waits for the hub to serve a valid event at that seq.
ROOM_STOPPING = frozenset({Failure.MALFORMED, Failure.EVENT_ID, Failure.KEY_ID, Failure.SIGNATURE,
                           Failure.CHAIN})

_WHAT = {
    Failure.MALFORMED: "it is not a well-formed event",
    Failure.EVENT_ID: "its event id is not the hash of its content",
    Failure.KEY_ID: "it names a hub key id that the hub does not publish for its time",
    Failure.SIGNATURE: "the hub's signature does not verify",
    Failure.CHAIN: "it does not follow the room's previous event",
    Failure.KIND: "its MLS message is not a room message of the kind the envelope names",
    Failure.CONTENT: "its MLS message does not decrypt or does not authenticate its sender",
    Failure.WELCOME: "this device is already in that room, and a Welcome cannot replace its keys",
}


@dataclass(frozen=True)
class Refusal:
    """One refused event: its room and seq (None when the envelope did not say), what failed
    and a detail (the key id, the expected seq...)."""

    room_id: str | None
    seq: int | None
    failure: Failure
    detail: str = ""

    def sentence(self) -> str:
        """One plain sentence, e.g. ``Event 3 of room !r:hub was refused: the hub's signature
        does not verify.``"""
        event = ("A Welcome" if self.failure is Failure.WELCOME
                 else "An event" if self.seq is None else f"Event {self.seq}")
        room = "" if self.room_id is None else f" of room {self.room_id}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{event}{room} was refused: {_WHAT[self.failure]}{detail}."

    @property
    def stops_room(self) -> bool:
        """Whether the room's later events wait for a valid event at :attr:`seq`."""
        return self.failure in ROOM_STOPPING

    def to_record(self) -> dict[str, Any]:
        return {"room_id": self.room_id, "seq": self.seq, "failure": self.failure.value,
                "detail": self.detail}

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Refusal:
        return cls(d["room_id"], d["seq"], Failure(d["failure"]), d["detail"])


class EventRefused(VerificationFailed):
    """An event failed its checks (:attr:`refusal` says which)."""

    code = "event_refused"

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.sentence())
        self.refusal = refusal


class HubKeys:
    """The hubs' key documents as this device's homeserver serves them, cached per hub.

    :meth:`key_for` fetches a hub's document on first use and again when an event
    names a key id the cached one lacks (a rotation since); a key id still absent
    after that fetch is remembered, so a hub that keeps naming it costs one fetch.
    """

    def __init__(self, http: Http) -> None:
        self.http = http
        self._docs: dict[str, ServerKeys] = {}
        self._absent: dict[str, set[str]] = {}

    async def key_for(self, ev: SignedEvent) -> bytes:
        """The public key that must have signed ``ev``; raises :class:`EventRefused`
        (:attr:`Failure.KEY_ID`) if the hub publishes no such key valid at the event's time."""
        hub = ev.content.room_id.split(":", 1)[1]
        doc = self._docs.get(hub)
        if doc is None or (ev.key_id not in doc.keys and ev.key_id not in self._absent.get(hub, ())):
            doc = await self.fetch(hub)
        key = doc.keys.get(ev.key_id)
        if key is None:
            self._absent.setdefault(hub, set()).add(ev.key_id)
            raise EventRefused(_refusal(ev, Failure.KEY_ID, f"{ev.key_id} is not a key of {hub}"))
        if not key.valid_at(ev.content.ts):
            raise EventRefused(_refusal(ev, Failure.KEY_ID, f"{ev.key_id} was not valid at the "
                                                            "event's time"))
        return key.public_key

    async def fetch(self, hub: str) -> ServerKeys:
        """``GET /hub_key?server=HUB``: the document, self-signature checked, now cached."""
        answer = await self.http.request("GET", "/hub_key", None, HubKeyResponse,
                                         params={"server": hub})
        try:
            doc = ServerKeys.decode(answer.key_document)
            doc.verify(hub)
        except ServerKeysInvalid as exc:
            raise VerificationFailed(f"the key document of hub {hub} is not valid: {exc}") from None
        if answer.server_name != hub or answer.key_id not in doc.keys:
            raise VerificationFailed(f"the key answer for hub {hub} does not match its document")
        self._docs[hub] = doc
        return doc


def _refusal(ev: SignedEvent, failure: Failure, detail: str = "") -> Refusal:
    return Refusal(ev.content.room_id, ev.content.seq, failure, detail)


def _where(obj: Any) -> tuple[str | None, int | None]:
    """The room and seq an envelope claims, when it claims them in the right types."""
    if type(obj) is not dict:
        return None, None
    room, seq = obj.get("room_id"), obj.get("seq")
    return (room if type(room) is str else None), (seq if type(seq) is int else None)


async def verify_envelope(obj: Any, keys: HubKeys) -> SignedEvent:
    """The verified event of envelope ``obj`` (steps 1 to 3 of the module docstring);
    raises :class:`EventRefused`, or what :meth:`HubKeys.fetch` raises."""
    try:
        ev = SignedEvent.from_wire(obj)
    except EventIdMismatch:
        raise EventRefused(Refusal(*_where(obj), Failure.EVENT_ID)) from None
    except MalformedEvent as exc:
        raise EventRefused(Refusal(*_where(obj), Failure.MALFORMED, str(exc))) from None
    if ":" not in ev.content.room_id:
        raise EventRefused(_refusal(ev, Failure.MALFORMED, "the room id names no hub"))
    key = await keys.key_for(ev)
    try:
        ev.verify(key)
    except InvalidEventSignature:
        raise EventRefused(_refusal(ev, Failure.SIGNATURE, f"key {ev.key_id}")) from None
    return ev
