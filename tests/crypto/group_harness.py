"""An in-memory harness of N members of one MLS group, for the Group tests
(tests/crypto/test_group_*.py): the delivery service is a loop over the members."""

from __future__ import annotations

import pytest

from crypto.mls.ciphersuite import get_suite
from crypto.mls.framing import ContentType, FramedContent
from crypto.mls.group import Group, MessageKind, StagedCommit
from crypto.mls.key_package_gen import generate_key_package
from crypto.mls.message import MLSMessage
from crypto.mls.protection import protect_public
from crypto.rng import SeededRng

__all__ = ["SUITES", "Harness", "snapshot", "broadcast_proposal", "forge", "assert_refused_by"]

SUITES = [1, 3]


class Harness:
    """N members of one group, in memory; the delivery service is a loop over the members."""

    #: The identity of the n-th member's KeyPackage, and the group id's prefix (before the seed).
    IDENTITY = b"member-%d"
    GROUP_PREFIX = b"group-"

    def __init__(self, suite_id: int, seed: str = "h", *, extensions=()) -> None:
        self.suite = get_suite(suite_id)
        self.rng = SeededRng(f"{seed}-{suite_id}")
        self.members: dict[int, Group] = {}
        self.names: dict[int, bytes] = {}
        self._n = 0
        kp, priv = self.key_package()
        g = Group.create(self.suite, self.GROUP_PREFIX + seed.encode(), kp, priv, extensions=extensions,
                         rng=self.rng)
        self.members[0] = g
        self.names[0] = kp.leaf_node.credential.identity or b""

    def key_package(self, **kwargs):
        self._n += 1
        return generate_key_package(self.suite, self.IDENTITY % self._n, self.rng, **kwargs)

    def deliver_commit(self, committer: int, staged: StagedCommit, *, check: bool = False) -> None:
        """Every other member processes and merges the Commit, then its committer; the members
        it removed leave (``check``: then :meth:`assert_agree`)."""
        for i, g in list(self.members.items()):
            if i == committer:
                continue
            processed = g.process_message(staged.commit)
            assert processed.kind == MessageKind.COMMIT
            g.merge_staged_commit(processed.staged_commit)
        self.members[committer].merge_staged_commit(staged)
        removed = [int(i) for i, _ in staged.removed]
        for i in removed:
            assert not self.members[i].is_active
            del self.members[i]
        if check:
            self.assert_agree()

    def add(self, committer: int, count: int = 1, **kwargs) -> list[int]:
        """``count`` new members, added by ``committer`` and joined with the ratchet tree;
        returns their leaves."""
        kps = [self.key_package() for _ in range(count)]
        staged = self.members[committer].add_members([k for k, _ in kps], rng=self.rng, **kwargs)
        self.deliver_commit(committer, staged, check=False)
        return [int(self.join(staged, kp, priv, staged.ratchet_tree).own_leaf_index) for kp, priv in kps]

    def join(self, staged: StagedCommit, key_package, private, ratchet_tree=None) -> Group:
        """The member of ``key_package`` joins from ``staged``'s Welcome; returns its Group."""
        g = Group.join(staged.welcome, key_package, private, ratchet_tree)
        self.members[int(g.own_leaf_index)] = g
        return g

    def remove(self, committer: int, leaves: list[int], **kwargs) -> None:
        staged = self.members[committer].remove_members(leaves, rng=self.rng, **kwargs)
        self.deliver_commit(committer, staged)

    def empty_commit(self, committer: int, **kwargs) -> None:
        staged = self.members[committer].stage_commit(rng=self.rng, **kwargs)
        self.deliver_commit(committer, staged)

    def assert_agree(self) -> None:
        groups = list(self.members.values())
        assert len({g.epoch for g in groups}) == 1
        assert len({g.epoch_authenticator for g in groups}) == 1
        assert len({g.exporter("test", b"ctx", 32) for g in groups}) == 1
        assert len({g.group_context.to_bytes() for g in groups}) == 1
        assert len({g.ratchet_tree.to_bytes() for g in groups}) == 1
        leaves = sorted(self.members)
        for g in groups:
            assert [int(m.leaf_index) for m in g.members] == leaves
            # one copy of the public state: the Group's PublicGroup holds its epoch's record
            assert g.public_group.public_epoch is g.state.epoch.public

    def assert_messages(self) -> None:
        for i, sender in self.members.items():
            msg = sender.protect(b"from %d at %d" % (i, sender.epoch), rng=self.rng)
            for j, g in self.members.items():
                if j != i:
                    out = g.process_message(msg)
                    assert out.kind == MessageKind.APPLICATION
                    assert out.application_data == b"from %d at %d" % (i, sender.epoch)
                    assert out.sender == i


def snapshot(g: Group) -> tuple:
    return (g.epoch, g.epoch_authenticator, g.group_context.to_bytes(), g.ratchet_tree.to_bytes(),
            g.exporter("snap", b"", 16), g.is_active)


def broadcast_proposal(h: Harness, sender: int, msg: MLSMessage, ref: bytes) -> None:
    """Deliver ``sender``'s proposal ``msg`` to every other member; each must keep ``ref``."""
    for i, g in h.members.items():
        if i != sender:
            out = g.process_message(msg)
            assert out.kind == MessageKind.PROPOSAL and out.sender == sender
            assert ref in g.pending_proposals


def forge(g: Group, content: FramedContent, *, tag: bytes | None = None) -> MLSMessage:
    """``content`` signed by ``g``'s member, with a valid membership tag (what an insider can
    send), whatever sender it names; a Commit gets an all-zero confirmation tag unless ``tag``."""
    s = g.state.epoch
    if content.content_type == ContentType.COMMIT and tag is None:
        tag = bytes(s.suite.hash_len)
    return MLSMessage(protect_public(s.suite, s.context, s.secrets.membership_key, s.signature_priv,
                                     content, tag))


def assert_refused_by(g: Group, message: MLSMessage, error: type[Exception]) -> None:
    """``g`` refuses ``message`` with ``error`` and is left exactly as it was."""
    before = snapshot(g)
    with pytest.raises(error):
        g.process_message(message)
    assert snapshot(g) == before
