"""Generate Confide's room acceptance vectors (event sequences and outcomes), deterministically.

Run from the repository root: ``.venv/bin/python spec/vectors/rooms/generate.py``.
Writes ``sequences.json`` next to this file; its format is ``spec/client-server.md``
section 8.7. Every MLS message is made by real members (``crypto.mls.Group``) with
seeded randomness, so a fresh run gives the same bytes.

- ``hub``: the Ed25519 seed, public key and key id that sign the events, and the hub's name;
- ``hub_cases``: submissions in order, each with what the hub answers: accepted (the event's
  seq, kind, epoch, id, the room's epoch after it, its members, the devices it removed and the
  Welcome's targets) or refused (the code);
- ``follower_cases``: signed envelopes in order, each with what a follower does after its
  signature verified: applied (seq, room epoch, members), duplicate, gap, or refused (code).

``tests/server/test_room_rules_vectors.py`` checks that the committed file equals a fresh run
and runs the pure room core (:mod:`protocol.room_rules`) against every case.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from crypto.mls import Group, MLSMessage, generate_key_package, get_suite, key_package_ref  # noqa: E402
from crypto.primitives import ed25519_public_key  # noqa: E402
from protocol.padding import application_padding  # noqa: E402
from protocol.room_channels import derive_group_id  # noqa: E402
from crypto.rng import SeededRng  # noqa: E402
from protocol.events import EventContent, EventKind, SignedEvent, sign_event  # noqa: E402
from protocol.federation import key_id_for  # noqa: E402
from protocol.federation_rooms import encode_room_event  # noqa: E402
from protocol.room_rules import (  # noqa: E402
    Submission,
    accept,
    accept_create,
    apply,
    follow,
    next_content,
)

HUB = "hub.example"
HUB_SEED = bytes(range(40, 72))
KEY_ID = key_id_for(ed25519_public_key(HUB_SEED))
ROOM = "!vectorsroom0000000001:hub.example"
SUITE = 3
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, seconds

ANN = ("@ann:hub.example", "ANNPHONE")
BOB = ("@bob:follower.example", "BOBPHONE")
CAT = ("@cat:hub.example", "CATPHONE")


class _Device:
    def __init__(self, member: tuple[str, str], rng: SeededRng) -> None:
        self.member = member
        self.rng = rng
        self.suite = get_suite(SUITE)
        self.seed = rng(32)
        self.group: Group | None = None
        self.privates: dict[bytes, object] = {}

    def key_package(self):
        kp, priv = generate_key_package(self.suite, f"{self.member[0]}/{self.member[1]}".encode(),
                                        self.rng, signature_priv=self.seed)
        self.privates[key_package_ref(self.suite, kp)] = (kp, priv)
        return kp, priv

    def process(self, commit: MLSMessage) -> None:
        assert self.group is not None
        self.group.merge_staged_commit(self.group.process_message(commit).staged_commit)

    def join(self, welcome: MLSMessage) -> None:
        for secrets in welcome.body.secrets:
            if secrets.new_member in self.privates:
                kp, priv = self.privates[secrets.new_member]
                self.group = Group.join(welcome, kp, priv)
                return
        raise AssertionError("the Welcome names none of this device's KeyPackages")


class _Hub:
    """Runs submissions through the pure core exactly as the hub does, recording each outcome."""

    def __init__(self) -> None:
        self.head = None
        self.view_bytes: bytes | None = None
        self.events: list[SignedEvent] = []
        self.steps: list[dict] = []
        self.ts = T0 * 1000

    def submit(self, sender, message: bytes, *, welcome: bytes | None = None,
               group_info: bytes | None = None, create: bool = False, note: str = "") -> SignedEvent | None:
        self.ts += 1000
        now = self.ts // 1000
        sub = Submission(sender, message, welcome, group_info)
        step = {"note": note, "sender": list(sender), "now": now, "ts": self.ts, "create": create,
                "message": message.hex(), "welcome": None if welcome is None else welcome.hex(),
                "group_info": None if group_info is None else group_info.hex()}
        from crypto.mls.public_group import PublicGroup
        try:
            if create:
                view = accept_create(sub, now)
                content = EventContent(ROOM, 0, b"\0" * 32, view.epoch, EventKind.CREATE, sender[0],
                                       sender[1], self.ts, message)
                event = sign_event(HUB_SEED, content, KEY_ID)
                applied = apply(None, view, event)
                welcome_to: tuple = ()
            else:
                assert self.view_bytes is not None
                view = PublicGroup.from_bytes(self.view_bytes)
                accepted = accept(self.head, view, sub, now)
                event = sign_event(HUB_SEED, next_content(self.head, accepted, sub, self.ts), KEY_ID)
                changed = accepted.kind != EventKind.APPLICATION
                applied = apply(self.head, view if changed else None, event, accepted.group_info)
                welcome_to = accepted.welcome_to
        except Exception as exc:  # the refusal's code is the vector
            step["expect"] = {"refused": exc.code}  # type: ignore[attr-defined]
            self.steps.append(step)
            return None
        self.head = applied.head
        if applied.view is not None:
            self.view_bytes = applied.view
        self.events.append(event)
        step["expect"] = {"accepted": {
            "seq": event.content.seq, "kind": event.content.kind.value, "epoch": event.content.epoch,
            "event_id": event.event_id.hex(), "room_epoch": applied.head.epoch,
            "members": sorted(list(m) for m in applied.head.members),
            "removed": sorted(list(m) for m in applied.removed),
            "welcome_to": [list(m) for m in welcome_to]}}
        self.steps.append(step)
        return event


def _protect(group: Group, data: bytes, rng) -> bytes:
    """An application message as the SDK sends it: padded to a bucket."""
    return group.protect(data, padding=application_padding(data), rng=rng).to_bytes()


def _one_room() -> tuple[list[dict], list[SignedEvent]]:
    rng = SeededRng(b"confide room vectors")
    ann, bob, cat = _Device(ANN, rng), _Device(BOB, rng), _Device(CAT, rng)
    hub = _Hub()
    kp, priv = ann.key_package()
    chosen = Group.create(SUITE, b"Quimby, bipolar II".ljust(32, b"."), kp, priv, rng=rng)
    ann.group = Group.create(SUITE, derive_group_id(kp.leaf_node.encryption_key), kp, priv, rng=rng)
    info = MLSMessage(ann.group.group_info()).to_bytes()
    hub.submit(ANN, b"\x00\x01garbage", create=True, note="a GroupInfo that is not one MLSMessage")
    hub.submit(ANN, MLSMessage(chosen.group_info()).to_bytes(), create=True,
               note="a group id of the creator's choosing")
    hub.submit(BOB, info, create=True, note="a group whose only member is another device")
    hub.submit(ANN, info, create=True, note="ann creates the room")
    hub.submit(ANN, _protect(ann.group, b"hello", rng), note="ann talks")
    hub.submit(ANN, ann.group.protect(b"x", authenticated_data=b"Quimby",
                                      padding=application_padding(b"x"), rng=rng).to_bytes(),
               note="authenticated_data in an application message")
    hub.submit(ANN, ann.group.protect(b"unpadded", rng=rng).to_bytes(),
               note="an application message not padded to a bucket")
    hub.submit(ANN, b"\x00\x01garbage", note="not an MLSMessage")
    hub.submit(ANN, MLSMessage(bob.key_package()[0]).to_bytes(), note="a KeyPackage is no room message")
    hub.submit(BOB, _protect(ann.group, b"not mine", rng), note="a device that is no member")
    hub.submit(ANN, _protect(ann.group, b"with extras", rng), welcome=info,
               note="welcome goes with a commit only")
    # ann adds bob, with a Welcome and the new epoch's GroupInfo
    staged = ann.group.add_members([bob.key_package()[0]], rng=rng)
    before_add = _protect(ann.group, b"sent at epoch 0", rng)
    ann.group.merge_staged_commit(staged)
    new_info = MLSMessage(ann.group.group_info()).to_bytes()
    hub.submit(BOB, staged.commit.to_bytes(), welcome=staged.welcome.to_bytes(), group_info=new_info,
               note="a commit submitted by a device that is no member")
    hub.submit(ANN, staged.commit.to_bytes(), welcome=info, group_info=new_info,
               note="a welcome that is no Welcome")
    hub.submit(ANN, staged.commit.to_bytes(), welcome=staged.welcome.to_bytes(), group_info=info,
               note="a GroupInfo of the old epoch")
    hub.submit(ANN, staged.commit.to_bytes(), welcome=staged.welcome.to_bytes(), group_info=new_info,
               note="ann adds bob")
    bob.join(staged.welcome)
    hub.submit(ANN, before_add, note="an application message of the epoch before")
    hub.submit(BOB, _protect(bob.group, b"hi ann", rng), note="bob talks")
    # two commits for the same epoch: the first wins
    first = ann.group.stage_commit(force_path=True, rng=rng)
    second = ann.group.stage_commit(force_path=True, rng=rng)
    hub.submit(BOB, first.commit.to_bytes(), note="ann's commit submitted by bob's device")
    hub.submit(ANN, first.commit.to_bytes(), note="ann's update commit")
    ann.group.merge_staged_commit(first)
    bob.process(first.commit)
    hub.submit(ANN, second.commit.to_bytes(), note="a second commit for the same epoch")
    update, _ = bob.group.propose_update(rng=rng)
    hub.submit(BOB, update.to_bytes(), note="bob proposes an update")
    ann.group.process_message(update)
    commit = ann.group.stage_commit(proposal_refs=list(ann.group.pending_proposals), rng=rng)
    hub.submit(ANN, commit.commit.to_bytes(), note="ann commits bob's proposal")
    ann.group.merge_staged_commit(commit)
    bob.process(commit.commit)
    # cat joins with ann's Welcome; then ann removes bob
    add_cat = ann.group.add_members([cat.key_package()[0]], rng=rng)
    ann.group.merge_staged_commit(add_cat)
    hub.submit(ANN, add_cat.commit.to_bytes(), welcome=add_cat.welcome.to_bytes(), note="ann adds cat")
    bob.process(add_cat.commit)
    bob_leaf = ann.group.find_member(f"{BOB[0]}/{BOB[1]}".encode())
    removal = ann.group.remove_members([bob_leaf], rng=rng)
    ann.group.merge_staged_commit(removal)
    hub.submit(ANN, removal.commit.to_bytes(), note="ann removes bob")
    hub.submit(BOB, _protect(bob.group, b"still here?", rng), note="bob after his removal")
    for _ in range(4):  # three epochs later, an epoch-1 message is too old
        c = ann.group.stage_commit(force_path=True, rng=rng)
        ann.group.merge_staged_commit(c)
        hub.submit(ANN, c.commit.to_bytes(), note="ann moves the epoch on")
    hub.submit(ANN, before_add, note="an application message of an epoch long past")
    return hub.steps, hub.events


def _resign(event: SignedEvent, **changes) -> SignedEvent:
    return sign_event(HUB_SEED, replace(event.content, **changes), KEY_ID)


def _follower_cases(events: list[SignedEvent]) -> list[dict]:
    bad_prev = _resign(events[2], prev=b"\x07" * 32)
    other_at_1 = _resign(events[1], ts=events[1].content.ts + 1)
    not_create = _resign(events[1], seq=0, prev=b"\0" * 32)
    commits = [e for e in events if e.content.kind == EventKind.COMMIT]
    wrong_handshake = _resign(events[2], message=commits[-1].content.message)
    cases = [
        ("the hub's whole history, in order", events),
        ("a duplicate and a gap", [events[0], events[1], events[1], events[3], events[2]]),
        ("an event past an unknown room's start", [events[4], events[0]]),
        ("a prev that is not the stored last event", [events[0], events[1], bad_prev, events[2]]),
        ("another event at a stored seq", [events[0], events[1], other_at_1]),
        ("a room that does not start with a create", [not_create, events[0]]),
        ("a handshake the view does not take", [events[0], events[1], wrong_handshake]),
    ]
    return [{"note": note, "events": [encode_room_event(e).hex() for e in seq],
             "expect": _follow_all(seq)} for note, seq in cases]


def _follow_all(seq: list[SignedEvent]) -> list[dict]:
    head, view, ids, out = None, None, {}, []
    for e in seq:
        try:
            f = follow(head, view, e, ids.get(e.content.seq))
        except Exception as exc:
            out.append({"refused": exc.code})  # type: ignore[attr-defined]
            continue
        if f.applied is None:
            out.append({"outcome": f.outcome.value})
            continue
        head = f.applied.head
        view = f.applied.view or view
        ids[e.content.seq] = e.event_id
        out.append({"outcome": f.outcome.value, "seq": head.last_seq, "room_epoch": head.epoch,
                    "members": sorted(list(m) for m in head.members)})
    return out


def build() -> dict[str, object]:
    steps, events = _one_room()
    return {
        "hub": {"seed": HUB_SEED.hex(), "public_key": ed25519_public_key(HUB_SEED).hex(),
                "key_id": KEY_ID, "server_name": HUB, "room_id": ROOM},
        "hub_cases": [{"note": "one room from creation to removal, with refusals on the way",
                       "steps": steps}],
        "follower_cases": _follower_cases(events),
    }


def render(obj: object) -> str:
    return json.dumps(obj, indent=1, sort_keys=False) + "\n"


if __name__ == "__main__":
    (HERE / "sequences.json").write_text(render(build()))
