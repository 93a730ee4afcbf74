"""Conversations through a real server process, each client a CLI process.

(a) a clinician and a client converse both ways (text and an attachment); (b) a member
added later reads only what was sent after joining; (c) a removed member reads nothing
sent after the removal and can no longer send; (d) a user's second device, added by the
first, and a third device, joining by itself, read the new messages.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_clinician_and_client_converse_both_ways(practice, carl, pat, tmp_path):
    room = carl.create_room(practice.unique("Intake with Pat"))
    carl.invite(room, pat)
    hello = practice.unique("Hello Pat, this is your secure channel with Dr. Carl")
    answer = practice.unique("Thanks, I have been sleeping badly since March")
    follow = practice.unique("Let us talk about that on Thursday at ten")
    s1 = carl.send(room, hello)
    assert pat.texts(room) == [hello]
    s2 = pat.send(room, answer)
    s3 = carl.send(room, follow)
    assert s1 < s2 < s3
    form = tmp_path / "intake-form.txt"
    form.write_bytes(practice.unique("Intake form: medication sertraline 50mg daily").encode())
    s4 = pat.send_file(room, form)

    got = pat.read(room)
    assert [(m["seq"], m.get("body")) for m in got if m["type"] == "text"] == [
        (s1, hello), (s2, answer), (s3, follow)]
    shown = carl.read(room)
    assert [m["body"] for m in shown if m["type"] == "text"] == [hello, answer, follow]
    [att] = [m for m in shown if m["type"] == "attachment"]
    assert (att["seq"], att["name"], att["sender_user"]) == (s4, "intake-form.txt", pat.user_id)
    out = tmp_path / "received.txt"
    carl.run("attachment", "get", room, str(s4), "--out", str(out))
    assert out.read_bytes() == form.read_bytes()


def test_member_added_later_reads_only_what_follows(practice, carl, pat):
    tess = practice.register("tess", "staff")
    room = carl.create_room(practice.unique("Care team for Pat"))
    carl.invite(room, pat)
    before = [carl.send(room, t) for t in (practice.unique("Before Tess joined: history one"),)]
    before.append(pat.send(room, practice.unique("Before Tess joined: history two")))
    carl.invite(room, tess)
    after = [practice.unique("After Tess joined: welcome Tess"),
             practice.unique("After Tess joined: hello from Pat")]
    s_after = [carl.send(room, after[0]), pat.send(room, after[1])]
    assert max(before) < min(s_after)

    seen = tess.read(room)
    assert [m["body"] for m in seen if m["type"] == "text"] == after
    assert min(m["seq"] for m in seen) > max(before)
    assert len(pat.texts(room)) == 4
    reply = practice.unique("Tess here, glad to help")
    tess.send(room, reply)
    assert carl.texts(room)[-1] == reply


def test_removed_member_reads_nothing_after_removal(practice, carl, pat):
    rob = practice.register("rob", "client")
    room = carl.create_room(practice.unique("Group session Tuesday"))
    carl.invite(room, pat)
    carl.invite(room, rob)
    early = practice.unique("Group: everyone welcome, Rob included")
    carl.send(room, early)
    assert rob.texts(room) == [early]

    out = carl.run("room", "remove", room, rob.user_id).stdout
    assert out.startswith("removed 1 device(s)"), out
    late = [practice.unique("Group: Rob has left, private follow-up"),
            practice.unique("Pat: something I did not want Rob to read")]
    carl.send(room, late[0])
    pat.send(room, late[1])

    assert rob.texts(room) == [early]
    assert pat.texts(room) == [early, *late]
    attempt = practice.unique("Rob trying to post after removal")
    practice.sent(attempt)
    refused = rob.run("send", room, attempt, check=False)
    assert refused.returncode == 6 and "not_a_member" in refused.stderr, refused.stderr
    assert rob.texts(room) == [early]


def test_second_and_third_device_join_and_read_new_messages(practice, carl):
    phone = practice.register("dana", "client", device="phone")
    room = carl.create_room(practice.unique("Dana weekly check-in"))
    carl.invite(room, phone)
    old = practice.unique("Before the laptop: only the phone reads this")
    carl.send(room, old)
    assert phone.texts(room) == [old]

    pending = practice.login("dana", "spare")  # logged in with the password, not approved
    laptop = practice.login("dana", "laptop", approver=phone)
    assert f"{room}: added @dana:" in laptop.approval, laptop.approval  # approving adds it
    assert "nothing to add" in phone.run("device", "add").stdout  # never the pending one
    listed = phone.run("device", "list")
    assert "pending" in listed.stdout and "pending device" in listed.stderr, listed
    new = practice.unique("After the laptop joined: both devices read this")
    carl.send(room, new)
    assert laptop.texts(room) == [new]
    from_laptop = practice.unique("Typed on Dana's laptop")
    laptop.send(room, from_laptop)

    tablet = practice.login("dana", "tablet", approver=laptop)
    out = tablet.run("room", "join", room).stdout
    assert out.startswith(f"joined {room} at epoch "), out
    newest = practice.unique("After the tablet joined by itself")
    carl.send(room, newest)
    assert tablet.texts(room) == [newest]
    assert phone.texts(room) == [old, new, from_laptop, newest]
    assert carl.texts(room) == [old, new, from_laptop, newest]
    members = carl.rooms()[room]["members"]
    assert sum(m.startswith("@dana:") for m in members) == 3, members
    assert pending.run("room", "join", room, check=False).returncode == 1  # device_not_approved
