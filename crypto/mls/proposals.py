"""Proposals (RFC 9420 sections 8.4 and 12.1).

A Proposal's body has no outer length prefix, so a receiver cannot skip a
type it does not know: decoding raises :class:`UnknownProposalType`. Unknown
values of other closed enums (PSKType, ResumptionPSKUsage, ProposalOrRefType)
raise :class:`UnknownEnumValue`. ReInit.version is carried as is (a ReInit may
name a later version).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..codec import Reader, Struct, Writer
from ..errors import InternalError
from .extensions import Extension
from .key_package import KeyPackage
from .leaf_node import LeafNode
from .wire_errors import UnknownProposalType, enum_value

__all__ = [
    "ProposalType",
    "PSKType",
    "ResumptionPSKUsage",
    "PreSharedKeyID",
    "Add",
    "Update",
    "Remove",
    "PreSharedKey",
    "ReInit",
    "ExternalInit",
    "GroupContextExtensions",
    "ProposalBody",
    "Proposal",
    "ProposalOrRefType",
    "ProposalOrRef",
    "MAX_HASH_REFERENCE",
]

#: Bound on a HashReference (ProposalRef, KeyPackageRef): RefHash output, at most 64 bytes (SHA-512).
MAX_HASH_REFERENCE = 64


class ProposalType(IntEnum):
    ADD = 1
    UPDATE = 2
    REMOVE = 3
    PSK = 4
    REINIT = 5
    EXTERNAL_INIT = 6
    GROUP_CONTEXT_EXTENSIONS = 7


class PSKType(IntEnum):
    EXTERNAL = 1
    RESUMPTION = 2


class ResumptionPSKUsage(IntEnum):
    APPLICATION = 1
    REINIT = 2
    BRANCH = 3


@dataclass(frozen=True, slots=True)
class PreSharedKeyID(Struct):
    """External PSKs set ``psk_id``; resumption PSKs set ``usage``, ``psk_group_id``, ``psk_epoch``."""

    psktype: PSKType
    psk_nonce: bytes
    psk_id: bytes | None = None
    usage: ResumptionPSKUsage | None = None
    psk_group_id: bytes | None = None
    psk_epoch: int | None = None

    def __post_init__(self) -> None:
        external = self.psktype == PSKType.EXTERNAL
        resumption = (self.usage, self.psk_group_id, self.psk_epoch)
        if external != (self.psk_id is not None) or any(
            (v is None) == (not external) for v in resumption
        ):
            raise InternalError("PreSharedKeyID fields do not match its psktype")

    def encode(self, w: Writer) -> None:
        w.u8(self.psktype)
        if self.psk_id is not None:
            w.opaque(self.psk_id)
        else:
            w.u8(self.usage or 0)
            w.opaque(self.psk_group_id or b"")
            w.u64(self.psk_epoch or 0)
        w.opaque(self.psk_nonce)

    @classmethod
    def decode(cls, r: Reader) -> PreSharedKeyID:
        psktype = enum_value(PSKType, r.u8())
        if psktype == PSKType.EXTERNAL:
            psk_id = r.opaque()
            return cls(psktype, psk_id=psk_id, psk_nonce=r.opaque())
        usage = enum_value(ResumptionPSKUsage, r.u8())
        group_id = r.opaque()
        epoch = r.u64()
        return cls(psktype, usage=usage, psk_group_id=group_id, psk_epoch=epoch,
                   psk_nonce=r.opaque())


@dataclass(frozen=True, slots=True)
class Add(Struct):
    key_package: KeyPackage

    def encode(self, w: Writer) -> None:
        self.key_package.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Add:
        return cls(KeyPackage.decode(r))


@dataclass(frozen=True, slots=True)
class Update(Struct):
    leaf_node: LeafNode

    def encode(self, w: Writer) -> None:
        self.leaf_node.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Update:
        return cls(LeafNode.decode(r))


@dataclass(frozen=True, slots=True)
class Remove(Struct):
    removed: int

    def encode(self, w: Writer) -> None:
        w.u32(self.removed)

    @classmethod
    def decode(cls, r: Reader) -> Remove:
        return cls(r.u32())


@dataclass(frozen=True, slots=True)
class PreSharedKey(Struct):
    psk: PreSharedKeyID

    def encode(self, w: Writer) -> None:
        self.psk.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> PreSharedKey:
        return cls(PreSharedKeyID.decode(r))


@dataclass(frozen=True, slots=True)
class ReInit(Struct):
    group_id: bytes
    version: int
    cipher_suite: int
    extensions: tuple[Extension, ...] = ()

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.vector(self.extensions, Struct.write_item)

    @classmethod
    def decode(cls, r: Reader) -> ReInit:
        return cls(r.opaque(), r.u16(), r.u16(), tuple(r.vector(Extension.decode)))


@dataclass(frozen=True, slots=True)
class ExternalInit(Struct):
    kem_output: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.kem_output)

    @classmethod
    def decode(cls, r: Reader) -> ExternalInit:
        return cls(r.opaque(MAX_HASH_REFERENCE))


@dataclass(frozen=True, slots=True)
class GroupContextExtensions(Struct):
    extensions: tuple[Extension, ...] = ()

    def encode(self, w: Writer) -> None:
        w.vector(self.extensions, Struct.write_item)

    @classmethod
    def decode(cls, r: Reader) -> GroupContextExtensions:
        return cls(tuple(r.vector(Extension.decode)))


ProposalBody = Add | Update | Remove | PreSharedKey | ReInit | ExternalInit | GroupContextExtensions

_BODY_BY_TYPE: dict[ProposalType, type[Struct]] = {
    ProposalType.ADD: Add,
    ProposalType.UPDATE: Update,
    ProposalType.REMOVE: Remove,
    ProposalType.PSK: PreSharedKey,
    ProposalType.REINIT: ReInit,
    ProposalType.EXTERNAL_INIT: ExternalInit,
    ProposalType.GROUP_CONTEXT_EXTENSIONS: GroupContextExtensions,
}
_TYPE_BY_BODY = {body: ptype for ptype, body in _BODY_BY_TYPE.items()}


@dataclass(frozen=True, slots=True)
class Proposal(Struct):
    """A tagged proposal; ``proposal_type`` follows from the class of ``body``."""

    body: ProposalBody

    @property
    def proposal_type(self) -> ProposalType:
        return _TYPE_BY_BODY[type(self.body)]

    def encode(self, w: Writer) -> None:
        w.u16(self.proposal_type)
        self.body.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> Proposal:
        ptype = enum_value(ProposalType, r.u16(), UnknownProposalType)
        return cls(_BODY_BY_TYPE[ptype].decode(r))  # type: ignore[arg-type]


class ProposalOrRefType(IntEnum):
    PROPOSAL = 1
    REFERENCE = 2


@dataclass(frozen=True, slots=True)
class ProposalOrRef(Struct):
    """A proposal by value (:class:`Proposal`) or by reference (ProposalRef bytes)."""

    value: Proposal | bytes

    @property
    def type(self) -> ProposalOrRefType:
        return ProposalOrRefType.PROPOSAL if isinstance(self.value, Proposal) else ProposalOrRefType.REFERENCE

    def encode(self, w: Writer) -> None:
        w.u8(self.type)
        if isinstance(self.value, Proposal):
            self.value.encode(w)
        else:
            w.opaque(self.value)

    @classmethod
    def decode(cls, r: Reader) -> ProposalOrRef:
        if enum_value(ProposalOrRefType, r.u8()) == ProposalOrRefType.PROPOSAL:
            return cls(Proposal.decode(r))
        return cls(r.opaque(MAX_HASH_REFERENCE))
