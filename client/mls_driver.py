"""``confide mls-driver``: Confide's MLS group engine behind the driver protocol of
``spec/mls-driver.md`` (JSON lines on stdin/stdout), for ``confide interop``.

One request per line in, one response per line out, in order, each line flushed;
nothing else is written to stdout (diagnostics go to stderr); the process exits at
end of input. Bytes travel as lowercase hex; messages as serialized ``MLSMessage``.

Every operation of the protocol is implemented, optional ones included (reinit,
branch, new-member and external-signer proposals), for cipher suites 1 and 3.
Error codes: ``bad_request`` (missing field, bad hex, a message of the wrong kind),
``unknown_state`` (no such id), ``unsupported`` (another suite, an unknown op or
by-value proposal type), ``mls_error`` (the engine refused: the message starts
with the typed error's stable ``code``), ``internal`` (a bug here or in the engine).

State: a *member* is a :class:`~crypto.mls.group.Group` plus what the protocol
needs beside it: its handshake wire format (``encrypt_handshake``), the Commit it
staged but has not merged (``commit`` then ``handle_pending_commit``) and, for the
current epoch, the ProposalRef of every proposal message it sent or processed (so a
proposal named again in ``commit`` or ``handle_commit`` is not processed twice).
A signature key is kept per identity and suite for the whole process, as the
ts-mls driver does, so that an external join with ``remove_prior`` comes back with
the same key.

Request fields are read by :mod:`client.mls_driver_fields`; the records kept per state
id are in :mod:`client.mls_driver_state`.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO

from crypto.errors import CryptoError, InternalError
from crypto.mls.ciphersuite import CipherSuite, get_suite
from crypto.mls.credential import Credential
from crypto.mls.extensions import Extension, ExtensionType
from crypto.mls.framing import PrivateMessage
from crypto.mls.group import Group, MessageKind, StagedCommit
from crypto.mls.group_context import PROTOCOL_VERSION_MLS10
from crypto.mls.group_external import (
    ExternalSender,
    external_proposal,
    external_senders,
    external_senders_extension,
    new_member_add_proposal,
)
from crypto.mls.group_welcome import verify_group_info
from crypto.mls.key_package import KeyPackage
from crypto.mls.key_package_gen import KeyPackagePrivate, generate_key_package
from crypto.mls.message import MLSMessage
from crypto.mls.proposals import (
    Add,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    PSKType,
    ReInit,
    Remove,
    ResumptionPSKUsage,
)
from crypto.mls.welcome import GroupInfo, Welcome
from crypto.rng import Rng, system_rng

from .mls_driver_fields import (
    DRIVER_SUITES,
    HANDSHAKE,
    DriverFailure,
    bad_request,
    bytes_field,
    extensions_of,
    hex_value,
    leaf_of,
    list_field,
    message_of,
    need,
    optional_bytes,
    staged_tree,
    suite_of,
    tree_of,
    tree_of_group_info,
    uint_field,
    wire,
)
from .mls_driver_state import DriverMember, ExternalSigner, PendingJoin, SuspendedGroup

__all__ = ["MlsDriver", "DriverFailure", "OPS", "serve", "register"]

VERSION = "1"

OPS = (
    "supported", "create_group", "create_key_package", "join_group", "external_join",
    "group_info", "state_auth", "export", "protect", "unprotect", "store_psk",
    "add_proposal", "update_proposal", "remove_proposal", "external_psk_proposal",
    "resumption_psk_proposal", "group_context_extensions_proposal", "commit",
    "handle_commit", "handle_pending_commit", "free", "new_member_add_proposal",
    "create_external_signer", "add_external_signer", "external_signer_proposal",
    "reinit_proposal", "reinit_commit", "handle_pending_reinit_commit", "handle_reinit_commit",
    "reinit_welcome", "handle_reinit_welcome", "create_branch", "handle_branch",
)


class MlsDriver:
    """The driver's state and one method per operation (``op_<name>``).

    :meth:`handle` turns one request object into one response object and never
    raises: every failure becomes ``ok: false`` with a protocol error code.
    """

    def __init__(self, rng: Rng = system_rng) -> None:
        self.rng = rng
        self.members: dict[int, DriverMember] = {}
        self.transactions: dict[int, PendingJoin] = {}
        self.reinits: dict[int, SuspendedGroup] = {}
        self.signers: dict[int, ExternalSigner] = {}
        self._signature_keys: dict[tuple[int, bytes], bytes] = {}
        self._next_id = 1

    # -- plumbing

    def handle(self, req: Any) -> dict:
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            if not isinstance(req, dict):
                raise bad_request("a request is a JSON object")
            op = req.get("op")
            method: Callable[[dict], dict] | None = (
                getattr(self, f"op_{op}", None) if isinstance(op, str) and op in OPS else None)
            if method is None:
                raise DriverFailure("unsupported", f"unknown op {op!r}")
            return {"id": rid, "ok": True, **method(req)}
        except DriverFailure as exc:
            error = {"code": exc.code, "message": exc.message}
        except CryptoError as exc:
            error = {"code": "mls_error", "message": f"{exc.code}: {exc}"}
        except InternalError as exc:
            traceback.print_exc(file=sys.stderr)
            error = {"code": "internal", "message": f"engine InternalError: {exc}"}
        except Exception as exc:  # noqa: BLE001 - a driver bug must still get an answer
            traceback.print_exc(file=sys.stderr)
            error = {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}
        return {"id": rid, "ok": False, "error": error}

    def _new_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def _add_member(self, member: DriverMember) -> int:
        i = self._new_id()
        self.members[i] = member
        return i

    def _member(self, req: dict) -> DriverMember:
        sid = need(req, "state_id")
        m = self.members.get(sid) if isinstance(sid, int) else None
        if m is None:
            raise DriverFailure("unknown_state", f"no state {sid!r}")
        return m

    def _lookup(self, table: dict, req: dict, name: str):
        key = need(req, name)
        value = table.get(key) if isinstance(key, int) else None
        if value is None:
            raise DriverFailure("unknown_state", f"no {name} {key!r}")
        return value

    def _key_package(self, suite: CipherSuite, identity: bytes) -> tuple[KeyPackage, KeyPackagePrivate]:
        """A fresh KeyPackage with this process's signature key for (suite, identity)."""
        sig = self._signature_keys.get((suite.id, identity))
        if sig is None:
            sig, _ = suite.generate_signature_key_pair(self.rng)
            self._signature_keys[(suite.id, identity)] = sig
        return generate_key_package(suite, identity, self.rng, signature_priv=sig)

    @staticmethod
    def _identity_of(group: Group) -> bytes:
        own = next((m for m in group.members if m.leaf_index == group.own_leaf_index), None)
        if own is None or own.identity is None:  # pragma: no cover - an active member has a leaf
            raise InternalError("own leaf has no basic identity")
        return own.identity

    def _refs(self, m: DriverMember, proposals: list) -> list[bytes]:
        """ProposalRefs of proposal messages: our own and those already processed from the
        cache, the others processed now (as the protocol asks of committers and receivers)."""
        if m.known_epoch != m.group.epoch:
            m.known, m.known_epoch = {}, m.group.epoch
        refs = []
        for item in proposals:
            data = hex_value(item, "proposal")
            ref = m.known.get(data)
            if ref is None:
                msg = message_of(data, "proposal", *HANDSHAKE)
                before = set(m.group.pending_proposals)
                processed = m.group.process_message(msg)
                if processed.kind != MessageKind.PROPOSAL:
                    raise bad_request(f"a by-reference item is a {processed.kind.value}, not a proposal")
                new = [r for r in m.group.pending_proposals if r not in before]
                if len(new) != 1:
                    raise InternalError("processing a proposal did not record exactly one ProposalRef")
                ref = m.known[data] = new[0]
            refs.append(ref)
        return refs

    def _remember(self, m: DriverMember, msg: MLSMessage, ref: bytes) -> dict:
        if m.known_epoch != m.group.epoch:
            m.known, m.known_epoch = {}, m.group.epoch
        data = msg.to_bytes()
        m.known[data] = ref
        return {"proposal": data.hex()}

    def _propose(self, m: DriverMember, proposal: Proposal) -> dict:
        msg, ref = m.group.propose(proposal, public=m.public, rng=self.rng)
        return self._remember(m, msg, ref)

    def _merge(self, m: DriverMember, staged: StagedCommit) -> None:
        m.group.merge_staged_commit(staged)
        m.pending = None
        m.known, m.known_epoch = {}, m.group.epoch

    def _process_commit(self, m: DriverMember, req: dict) -> None:
        self._refs(m, list_field(req, "proposals"))
        msg = message_of(bytes_field(req, "commit"), "commit", *HANDSHAKE)
        processed = m.group.process_message(msg)
        if processed.kind != MessageKind.COMMIT or processed.staged_commit is None:
            raise bad_request(f"commit is a {processed.kind.value}, not a commit")
        self._merge(m, processed.staged_commit)

    def _proposal_of(self, m: DriverMember, d: Any) -> Proposal:
        """A by-value proposal description (``commit.by_value``) for member ``m``."""
        if not isinstance(d, dict):
            raise bad_request("a by-value proposal is an object")
        kind = d.get("proposal_type")
        g = m.group
        if kind == "add":
            kp = message_of(bytes_field(d, "key_package"), "key_package", KeyPackage).body
            return Proposal(Add(kp))  # type: ignore[arg-type]
        if kind == "remove":
            return Proposal(Remove(leaf_of(g.ratchet_tree, bytes_field(d, "removed_identity"))))
        if kind == "external_psk":
            return g.psk_proposal(bytes_field(d, "psk_id"), rng=self.rng)
        if kind == "resumption_psk":
            return g.resumption_psk_proposal(uint_field(d, "epoch_id"), rng=self.rng)
        if kind == "group_context_extensions":
            return Proposal(GroupContextExtensions(extensions_of(need(d, "extensions"))))
        raise DriverFailure("unsupported", f"by-value proposal_type {kind!r} not supported")

    # -- operations: setup

    def op_supported(self, req: dict) -> dict:
        return {"cipher_suites": list(DRIVER_SUITES), "ops": list(OPS), "name": "confide",
                "version": VERSION}

    def op_create_group(self, req: dict) -> dict:
        suite = suite_of(need(req, "cipher_suite"))
        identity = bytes_field(req, "identity")
        kp, priv = self._key_package(suite, identity)
        group = Group.create(suite, bytes_field(req, "group_id"), kp, priv, rng=self.rng)
        return {"state_id": self._add_member(DriverMember(group, bool(req.get("encrypt_handshake")), identity))}

    def op_create_key_package(self, req: dict) -> dict:
        suite = suite_of(need(req, "cipher_suite"))
        kp, priv = self._key_package(suite, bytes_field(req, "identity"))
        tid = self._new_id()
        self.transactions[tid] = PendingJoin(kp, priv)
        return {"transaction_id": tid, "key_package": wire(MLSMessage(kp))}

    def op_join_group(self, req: dict) -> dict:
        tx: PendingJoin = self._lookup(self.transactions, req, "transaction_id")
        welcome = message_of(bytes_field(req, "welcome"), "welcome", Welcome)
        suite = get_suite(tx.key_package.cipher_suite)
        group = Group.join(welcome, tx.key_package, tx.private, tree_of(suite, optional_bytes(req, "ratchet_tree")),
                           external_psks=tx.psks)
        del self.transactions[req["transaction_id"]]
        identity = tx.key_package.leaf_node.credential.identity or b""
        sid = self._add_member(DriverMember(group, bool(req.get("encrypt_handshake")), identity))
        return {"state_id": sid, "epoch_authenticator": group.epoch_authenticator.hex()}

    def op_external_join(self, req: dict) -> dict:
        msg = message_of(bytes_field(req, "group_info"), "group_info", GroupInfo)
        info: GroupInfo = msg.body  # type: ignore[assignment]
        suite = suite_of(info.group_context.cipher_suite)
        identity = bytes_field(req, "identity")
        given = optional_bytes(req, "ratchet_tree")
        tree = tree_of_group_info(suite, info, given)
        remove_prior = leaf_of(tree, identity) if req.get("remove_prior") else None
        psks = {}
        for p in list_field(req, "psks"):
            if not isinstance(p, dict):
                raise bad_request("a psk is an object")
            psks[bytes_field(p, "psk_id")] = bytes_field(p, "psk_secret")
        kp, priv = self._key_package(suite, identity)
        group, commit = Group.external_join(msg, kp, priv, tree_of(suite, given), remove_prior=remove_prior,
                                            external_psks=psks, rng=self.rng)
        sid = self._add_member(DriverMember(group, bool(req.get("encrypt_handshake")), identity))
        return {"state_id": sid, "commit": wire(commit),
                "epoch_authenticator": group.epoch_authenticator.hex()}

    def op_group_info(self, req: dict) -> dict:
        m = self._member(req)
        info = m.group.group_info(with_ratchet_tree=not req.get("external_tree"))
        return {"group_info": wire(MLSMessage(info)), "ratchet_tree": m.group.ratchet_tree.to_bytes().hex()}

    def op_state_auth(self, req: dict) -> dict:
        m = self._member(req)
        return {"epoch_authenticator": m.group.epoch_authenticator.hex(), "epoch": m.group.epoch}

    def op_export(self, req: dict) -> dict:
        m = self._member(req)
        length = uint_field(req, "key_length")
        if length > 0xFFFF:
            raise bad_request("key_length is a uint16")
        secret = m.group.exporter(bytes_field(req, "label"), optional_bytes(req, "context") or b"", length)
        return {"exported_secret": secret.hex()}

    def op_protect(self, req: dict) -> dict:
        m = self._member(req)
        msg = m.group.protect(optional_bytes(req, "plaintext") or b"",
                              authenticated_data=optional_bytes(req, "authenticated_data") or b"", rng=self.rng)
        return {"ciphertext": wire(msg)}

    def op_unprotect(self, req: dict) -> dict:
        m = self._member(req)
        msg = message_of(bytes_field(req, "ciphertext"), "ciphertext", PrivateMessage)
        processed = m.group.process_message(msg)
        if processed.kind != MessageKind.APPLICATION or processed.application_data is None:
            raise bad_request(f"ciphertext is a {processed.kind.value}, not an application message")
        return {"authenticated_data": processed.authenticated_data.hex(),
                "plaintext": processed.application_data.hex()}

    def op_store_psk(self, req: dict) -> dict:
        psk_id, secret = bytes_field(req, "psk_id"), bytes_field(req, "psk_secret")
        if req.get("state_id") is not None:
            self._member(req).group.add_external_psk(psk_id, secret)
        else:
            tx: PendingJoin = self._lookup(self.transactions, req, "transaction_id")
            tx.psks[psk_id] = secret
        return {}

    def op_free(self, req: dict) -> dict:
        for name, table in (("state_id", self.members), ("transaction_id", self.transactions),
                            ("reinit_id", self.reinits), ("signer_id", self.signers)):
            key = req.get(name)
            if isinstance(key, int):
                table.pop(key, None)
        return {}

    # -- operations: proposals

    def op_add_proposal(self, req: dict) -> dict:
        m = self._member(req)
        return self._propose(m, self._proposal_of(m, {"proposal_type": "add", "key_package": req.get("key_package")}))

    def op_update_proposal(self, req: dict) -> dict:
        m = self._member(req)
        msg, ref = m.group.propose_update(public=m.public, rng=self.rng)
        return self._remember(m, msg, ref)

    def op_remove_proposal(self, req: dict) -> dict:
        m = self._member(req)
        return self._propose(m, self._proposal_of(
            m, {"proposal_type": "remove", "removed_identity": req.get("removed_identity")}))

    def op_external_psk_proposal(self, req: dict) -> dict:
        m = self._member(req)
        return self._propose(m, m.group.psk_proposal(bytes_field(req, "psk_id"), rng=self.rng))

    def op_resumption_psk_proposal(self, req: dict) -> dict:
        m = self._member(req)
        return self._propose(m, m.group.resumption_psk_proposal(uint_field(req, "epoch_id"), rng=self.rng))

    def op_group_context_extensions_proposal(self, req: dict) -> dict:
        m = self._member(req)
        return self._propose(m, Proposal(GroupContextExtensions(extensions_of(list_field(req, "extensions")))))

    # -- operations: commits

    def op_commit(self, req: dict) -> dict:
        m = self._member(req)
        refs = self._refs(m, list_field(req, "by_reference"))
        by_value = [self._proposal_of(m, d) for d in list_field(req, "by_value")]
        external_tree = bool(req.get("external_tree"))
        staged = m.group.stage_commit(by_value, proposal_refs=refs, force_path=bool(req.get("force_path")),
                                      public=m.public, ratchet_tree_in_welcome=not external_tree, rng=self.rng)
        m.pending = staged
        return {"commit": wire(staged.commit),  # type: ignore[arg-type]
                "welcome": wire(staged.welcome) if staged.welcome is not None else None,
                "ratchet_tree": staged_tree(staged).hex()}

    def op_handle_pending_commit(self, req: dict) -> dict:
        m = self._member(req)
        if m.pending is None:
            raise bad_request("no pending commit")
        self._merge(m, m.pending)
        return {"state_id": req["state_id"], "epoch_authenticator": m.group.epoch_authenticator.hex()}

    def op_handle_commit(self, req: dict) -> dict:
        m = self._member(req)
        self._process_commit(m, req)
        return {"state_id": req["state_id"], "epoch_authenticator": m.group.epoch_authenticator.hex()}

    # -- operations: external senders and new members

    def op_new_member_add_proposal(self, req: dict) -> dict:
        msg = message_of(bytes_field(req, "group_info"), "group_info", GroupInfo)
        info: GroupInfo = msg.body  # type: ignore[assignment]
        suite = suite_of(info.group_context.cipher_suite)
        tree = tree_of_group_info(suite, info, optional_bytes(req, "ratchet_tree"))
        verify_group_info(suite, tree, info)
        kp, priv = self._key_package(suite, bytes_field(req, "identity"))
        proposal = new_member_add_proposal(info, kp, priv)
        tid = self._new_id()
        self.transactions[tid] = PendingJoin(kp, priv)
        return {"proposal": wire(proposal), "transaction_id": tid}

    def op_create_external_signer(self, req: dict) -> dict:
        suite = suite_of(need(req, "cipher_suite"))
        priv, pub = suite.generate_signature_key_pair(self.rng)
        sender = ExternalSender(pub, Credential.basic(bytes_field(req, "identity")))
        sid = self._new_id()
        self.signers[sid] = ExternalSigner(suite, priv, sender)
        return {"signer_id": sid, "external_sender": sender.to_bytes().hex()}

    def op_add_external_signer(self, req: dict) -> dict:
        m = self._member(req)
        try:
            sender = ExternalSender.from_bytes(bytes_field(req, "external_sender"))
        except CryptoError as exc:
            raise bad_request(f"external_sender does not decode ({exc.code})") from None
        current = m.group.group_context.extensions
        senders = [*external_senders(current), sender]
        data = external_senders_extension(senders).extension_data
        exts, replaced = [], False
        for e in current:
            if e.extension_type == ExtensionType.EXTERNAL_SENDERS:
                exts.append(Extension(e.extension_type, data))
                replaced = True
            else:
                exts.append(e)
        if not replaced:
            exts.append(Extension(ExtensionType.EXTERNAL_SENDERS, data))
        return self._propose(m, Proposal(GroupContextExtensions(tuple(exts))))

    def op_external_signer_proposal(self, req: dict) -> dict:
        signer: ExternalSigner = self._lookup(self.signers, req, "signer_id")
        info: GroupInfo = message_of(bytes_field(req, "group_info"), "group_info", GroupInfo).body  # type: ignore[assignment]
        ctx = info.group_context
        suite = suite_of(ctx.cipher_suite)
        tree = tree_of_group_info(suite, info, optional_bytes(req, "ratchet_tree"))
        verify_group_info(suite, tree, info)
        index = next((i for i, s in enumerate(external_senders(ctx.extensions))
                      if s.signature_key == signer.external_sender.signature_key), None)
        if index is None:
            raise DriverFailure("mls_error", "this signer is not in the group's external_senders")
        d = need(req, "description")
        if not isinstance(d, dict):
            raise bad_request("description is an object")
        kind = d.get("proposal_type")
        nonce = self.rng(suite.hash_len)
        if kind == "add":
            proposal = Proposal(Add(message_of(bytes_field(d, "key_package"), "key_package", KeyPackage).body))  # type: ignore[arg-type]
        elif kind == "remove":
            proposal = Proposal(Remove(leaf_of(tree, bytes_field(d, "removed_identity"))))
        elif kind == "external_psk":
            proposal = Proposal(PreSharedKey(PreSharedKeyID(PSKType.EXTERNAL, nonce, psk_id=bytes_field(d, "psk_id"))))
        elif kind == "resumption_psk":
            proposal = Proposal(PreSharedKey(PreSharedKeyID(
                PSKType.RESUMPTION, nonce, usage=ResumptionPSKUsage.APPLICATION, psk_group_id=ctx.group_id,
                psk_epoch=uint_field(d, "epoch_id"))))
        elif kind == "group_context_extensions":
            proposal = Proposal(GroupContextExtensions(extensions_of(need(d, "extensions"))))
        elif kind == "reinit":
            suite_of(need(d, "cipher_suite"))
            proposal = Proposal(ReInit(bytes_field(d, "group_id"), PROTOCOL_VERSION_MLS10, d["cipher_suite"],
                                       extensions_of(list_field(d, "extensions"))))
        else:
            raise DriverFailure("unsupported", f"external proposal_type {kind!r} not supported")
        return {"proposal": wire(external_proposal(ctx, index, signer.signature_priv, proposal))}

    # -- operations: reinit

    def op_reinit_proposal(self, req: dict) -> dict:
        m = self._member(req)
        suite = suite_of(need(req, "cipher_suite"))
        return self._propose(m, Proposal(ReInit(bytes_field(req, "group_id"), PROTOCOL_VERSION_MLS10, suite.id,
                                                extensions_of(list_field(req, "extensions")))))

    def op_reinit_commit(self, req: dict) -> dict:
        m = self._member(req)
        refs = self._refs(m, [need(req, "proposal")])
        staged = m.group.stage_commit(proposal_refs=refs, public=m.public, rng=self.rng)
        m.pending = staged
        return {"commit": wire(staged.commit)}  # type: ignore[arg-type]

    def _suspended(self, m: DriverMember) -> dict:
        r = m.group.pending_reinit
        if r is None:
            raise DriverFailure("mls_error", "the commit carried no ReInit")
        kp, priv = self._key_package(suite_of(r.cipher_suite), m.identity)
        rid = self._new_id()
        self.reinits[rid] = SuspendedGroup(m, kp, priv)
        return {"reinit_id": rid, "key_package": wire(MLSMessage(kp)),
                "epoch_authenticator": m.group.epoch_authenticator.hex()}

    def op_handle_pending_reinit_commit(self, req: dict) -> dict:
        m = self._member(req)
        if m.pending is None:
            raise bad_request("no pending commit")
        self._merge(m, m.pending)
        return self._suspended(m)

    def op_handle_reinit_commit(self, req: dict) -> dict:
        m = self._member(req)
        self._process_commit(m, req)
        return self._suspended(m)

    def op_reinit_welcome(self, req: dict) -> dict:
        r: SuspendedGroup = self._lookup(self.reinits, req, "reinit_id")
        kps = [message_of(hex_value(k, "key_package"), "key_package", KeyPackage).body
               for k in list_field(req, "key_packages")]
        external_tree = bool(req.get("external_tree"))
        new, staged = r.member.group.reinit(r.key_package, r.private, kps,  # type: ignore[arg-type]
                                            force_path=bool(req.get("force_path")),
                                            ratchet_tree_in_welcome=not external_tree, rng=self.rng)
        return self._resumed(r.member, new, staged)

    def _resumed(self, old: DriverMember, new: Group, staged: StagedCommit) -> dict:
        sid = self._add_member(DriverMember(new, old.encrypt, old.identity))
        return {"state_id": sid, "welcome": wire(staged.welcome) if staged.welcome is not None else None,
                "ratchet_tree": new.ratchet_tree.to_bytes().hex(),
                "epoch_authenticator": new.epoch_authenticator.hex()}

    def op_handle_reinit_welcome(self, req: dict) -> dict:
        r: SuspendedGroup = self._lookup(self.reinits, req, "reinit_id")
        return self._join_prior(r.member, r.key_package, r.private, req)

    def _join_prior(self, old: DriverMember, kp: KeyPackage, priv: KeyPackagePrivate, req: dict) -> dict:
        welcome = message_of(bytes_field(req, "welcome"), "welcome", Welcome)
        suite = get_suite(kp.cipher_suite)
        group = Group.join(welcome, kp, priv, tree_of(suite, optional_bytes(req, "ratchet_tree")), prior=old.group)
        sid = self._add_member(DriverMember(group, old.encrypt, old.identity))
        return {"state_id": sid, "epoch_authenticator": group.epoch_authenticator.hex()}

    # -- operations: branch

    def op_create_branch(self, req: dict) -> dict:
        m = self._member(req)
        kps = [message_of(hex_value(k, "key_package"), "key_package", KeyPackage).body
               for k in list_field(req, "key_packages")]
        kp, priv = self._key_package(m.group.cipher_suite, m.identity)
        external_tree = bool(req.get("external_tree"))
        new, staged = m.group.branch(bytes_field(req, "group_id"), kp, priv, kps,  # type: ignore[arg-type]
                                     extensions=extensions_of(list_field(req, "extensions")),
                                     force_path=bool(req.get("force_path")),
                                     ratchet_tree_in_welcome=not external_tree, rng=self.rng)
        return self._resumed(m, new, staged)

    def op_handle_branch(self, req: dict) -> dict:
        m = self._member(req)
        tx: PendingJoin = self._lookup(self.transactions, req, "transaction_id")
        out = self._join_prior(m, tx.key_package, tx.private, req)
        del self.transactions[req["transaction_id"]]
        return out


# ---------------------------------------------------------------- loop and command


def serve(stdin: TextIO, stdout: TextIO, driver: MlsDriver | None = None) -> int:
    """Answer requests line by line until end of input; returns the exit status (0)."""
    driver = driver or MlsDriver()
    for line in iter(stdin.readline, ""):
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except ValueError as exc:
            resp: dict = {"id": None, "ok": False, "error": {"code": "bad_request", "message": f"invalid JSON: {exc}"}}
        else:
            resp = driver.handle(req)
        stdout.write(json.dumps(resp, separators=(",", ":")) + "\n")
        stdout.flush()
    return 0


def _run(args) -> int:
    return serve(sys.stdin, sys.stdout)


def register(subparsers) -> None:
    """Add ``confide mls-driver``."""
    p = subparsers.add_parser("mls-driver", help="Confide's MLS driver for `confide interop` (JSON lines on stdio)",
                              description="Speak spec/mls-driver.md on stdin/stdout with Confide's MLS engine.")
    p.set_defaults(func=_run)
