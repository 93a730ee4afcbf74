"""Message framing (RFC 9420 section 6): content, its authentication, and the two message forms.

Decoding only checks syntax: closed enums (WireFormat, ContentType, SenderType)
must hold known values (:class:`UnknownWireFormat`, :class:`UnknownEnumValue`),
the presence of ``confirmation_tag`` follows the content type and that of
``membership_tag`` the sender type, and PrivateMessageContent padding must be
all zero (:class:`InvalidPadding`). Signatures, tags and sender semantics are
checked by message protection, not here. MACs are bounded to 64 bytes (the
largest KDF.Nh); other fields use the codec's default bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..codec import Reader, Struct, Writer
from ..errors import InternalError
from .commit import Commit
from .group_context import PROTOCOL_VERSION_MLS10, GroupContext
from .key_package import decode_protocol_version
from .proposals import Proposal
from .wire_errors import InvalidPadding, UnknownWireFormat, enum_value

__all__ = [
    "WireFormat",
    "read_wire_format",
    "ContentType",
    "SenderType",
    "Sender",
    "Content",
    "FramedContent",
    "FramedContentAuthData",
    "FramedContentTBS",
    "AuthenticatedContent",
    "AuthenticatedContentTBM",
    "PublicMessage",
    "PrivateMessage",
    "PrivateMessageContent",
    "encode_private_message_content",
    "decode_private_message_content",
    "SenderData",
    "SenderDataAAD",
    "PrivateContentAAD",
    "MAX_MAC",
    "REUSE_GUARD_LEN",
]

#: A MAC is KDF.Nh bytes; 64 covers every registered suite.
MAX_MAC = 64
REUSE_GUARD_LEN = 4


class WireFormat(IntEnum):
    MLS_PUBLIC_MESSAGE = 1
    MLS_PRIVATE_MESSAGE = 2
    MLS_WELCOME = 3
    MLS_GROUP_INFO = 4
    MLS_KEY_PACKAGE = 5


class ContentType(IntEnum):
    APPLICATION = 1
    PROPOSAL = 2
    COMMIT = 3


class SenderType(IntEnum):
    MEMBER = 1
    EXTERNAL = 2
    NEW_MEMBER_PROPOSAL = 3
    NEW_MEMBER_COMMIT = 4


def read_wire_format(r: Reader) -> WireFormat:
    return enum_value(WireFormat, r.u16(), UnknownWireFormat)


@dataclass(frozen=True, slots=True)
class Sender(Struct):
    """``member`` carries ``leaf_index``, ``external`` carries ``sender_index``, new members nothing."""

    sender_type: SenderType
    leaf_index: int | None = None
    sender_index: int | None = None

    def __post_init__(self) -> None:
        if (self.leaf_index is not None) != (self.sender_type == SenderType.MEMBER) or (
            self.sender_index is not None
        ) != (self.sender_type == SenderType.EXTERNAL):
            raise InternalError("Sender fields do not match its sender_type")

    @classmethod
    def member(cls, leaf_index: int) -> Sender:
        return cls(SenderType.MEMBER, leaf_index=leaf_index)

    @classmethod
    def external(cls, sender_index: int) -> Sender:
        return cls(SenderType.EXTERNAL, sender_index=sender_index)

    def encode(self, w: Writer) -> None:
        w.u8(self.sender_type)
        if self.leaf_index is not None:
            w.u32(self.leaf_index)
        if self.sender_index is not None:
            w.u32(self.sender_index)

    @classmethod
    def decode(cls, r: Reader) -> Sender:
        stype = enum_value(SenderType, r.u8())
        if stype == SenderType.MEMBER:
            return cls(stype, leaf_index=r.u32())
        if stype == SenderType.EXTERNAL:
            return cls(stype, sender_index=r.u32())
        return cls(stype)


Content = bytes | Proposal | Commit
_CONTENT_CLASS = {ContentType.APPLICATION: bytes, ContentType.PROPOSAL: Proposal,
                  ContentType.COMMIT: Commit}


def _check_content(content_type: ContentType, content: Content) -> None:
    if not isinstance(content, _CONTENT_CLASS[content_type]):
        raise InternalError(f"{type(content).__name__} content with content_type {content_type.name}")


def _encode_content(w: Writer, content_type: ContentType, content: Content) -> None:
    if isinstance(content, bytes):
        w.opaque(content)
    else:
        content.encode(w)


def _decode_content(r: Reader, content_type: ContentType) -> Content:
    if content_type == ContentType.APPLICATION:
        return r.opaque()
    if content_type == ContentType.PROPOSAL:
        return Proposal.decode(r)
    return Commit.decode(r)


@dataclass(frozen=True, slots=True)
class FramedContent(Struct):
    group_id: bytes
    epoch: int
    sender: Sender
    authenticated_data: bytes
    content_type: ContentType
    content: Content

    def __post_init__(self) -> None:
        _check_content(self.content_type, self.content)

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        self.sender.encode(w)
        w.opaque(self.authenticated_data)
        w.u8(self.content_type)
        _encode_content(w, self.content_type, self.content)

    @classmethod
    def decode(cls, r: Reader) -> FramedContent:
        group_id = r.opaque()
        epoch = r.u64()
        sender = Sender.decode(r)
        authenticated_data = r.opaque()
        content_type = enum_value(ContentType, r.u8())
        content = _decode_content(r, content_type)
        return cls(group_id, epoch, sender, authenticated_data, content_type, content)


@dataclass(frozen=True, slots=True)
class FramedContentAuthData(Struct):
    """``confirmation_tag`` is present iff the content type is commit; decoding needs that type."""

    signature: bytes
    confirmation_tag: bytes | None = None

    def encode(self, w: Writer) -> None:
        w.opaque(self.signature)
        if self.confirmation_tag is not None:
            w.opaque(self.confirmation_tag)

    def check_for(self, content_type: ContentType) -> None:
        if (self.confirmation_tag is not None) != (content_type == ContentType.COMMIT):
            raise InternalError("confirmation_tag is present iff content_type is commit")

    @classmethod
    def decode(cls, r: Reader, content_type: ContentType) -> FramedContentAuthData:  # type: ignore[override]
        signature = r.opaque()
        tag = r.opaque(MAX_MAC) if content_type == ContentType.COMMIT else None
        return cls(signature, tag)

    @classmethod
    def from_bytes(cls, data: bytes, content_type: ContentType) -> FramedContentAuthData:  # type: ignore[override]
        r = Reader(data)
        value = cls.decode(r, content_type)
        r.finish()
        return value


def _has_context(sender: Sender) -> bool:
    return sender.sender_type in (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT)


@dataclass(frozen=True, slots=True)
class FramedContentTBS(Struct):
    """What a FramedContent signature covers; ``context`` is set iff the sender is
    member or new_member_commit."""

    wire_format: WireFormat
    content: FramedContent
    context: GroupContext | None = None
    version: int = PROTOCOL_VERSION_MLS10

    def __post_init__(self) -> None:
        if (self.context is not None) != _has_context(self.content.sender):
            raise InternalError("FramedContentTBS.context is set iff sender is member/new_member_commit")

    def encode(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.wire_format)
        self.content.encode(w)
        if self.context is not None:
            self.context.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> FramedContentTBS:
        version = decode_protocol_version(r)
        wire_format = read_wire_format(r)
        content = FramedContent.decode(r)
        context = GroupContext.decode(r) if _has_context(content.sender) else None
        return cls(wire_format, content, context, version)


@dataclass(frozen=True, slots=True)
class AuthenticatedContent(Struct):
    """The input to ProposalRef and the transcript hashes."""

    wire_format: WireFormat
    content: FramedContent
    auth: FramedContentAuthData

    def __post_init__(self) -> None:
        self.auth.check_for(self.content.content_type)

    def encode(self, w: Writer) -> None:
        w.u16(self.wire_format)
        self.content.encode(w)
        self.auth.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> AuthenticatedContent:
        wire_format = read_wire_format(r)
        content = FramedContent.decode(r)
        return cls(wire_format, content, FramedContentAuthData.decode(r, content.content_type))


@dataclass(frozen=True, slots=True)
class AuthenticatedContentTBM(Struct):
    """The input to the membership tag MAC."""

    content_tbs: FramedContentTBS
    auth: FramedContentAuthData

    def __post_init__(self) -> None:
        self.auth.check_for(self.content_tbs.content.content_type)

    def encode(self, w: Writer) -> None:
        self.content_tbs.encode(w)
        self.auth.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> AuthenticatedContentTBM:
        tbs = FramedContentTBS.decode(r)
        return cls(tbs, FramedContentAuthData.decode(r, tbs.content.content_type))


@dataclass(frozen=True, slots=True)
class PublicMessage(Struct):
    """``membership_tag`` is present iff the sender is a member."""

    content: FramedContent
    auth: FramedContentAuthData
    membership_tag: bytes | None = None

    def __post_init__(self) -> None:
        self.auth.check_for(self.content.content_type)
        if (self.membership_tag is not None) != (self.content.sender.sender_type == SenderType.MEMBER):
            raise InternalError("membership_tag is present iff sender_type is member")

    def encode(self, w: Writer) -> None:
        self.content.encode(w)
        self.auth.encode(w)
        if self.membership_tag is not None:
            w.opaque(self.membership_tag)

    @classmethod
    def decode(cls, r: Reader) -> PublicMessage:
        content = FramedContent.decode(r)
        auth = FramedContentAuthData.decode(r, content.content_type)
        member = content.sender.sender_type == SenderType.MEMBER
        return cls(content, auth, r.opaque(MAX_MAC) if member else None)


@dataclass(frozen=True, slots=True)
class PrivateMessage(Struct):
    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes
    encrypted_sender_data: bytes
    ciphertext: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)
        w.opaque(self.authenticated_data)
        w.opaque(self.encrypted_sender_data)
        w.opaque(self.ciphertext)

    @classmethod
    def decode(cls, r: Reader) -> PrivateMessage:
        group_id = r.opaque()
        epoch = r.u64()
        content_type = enum_value(ContentType, r.u8())
        return cls(group_id, epoch, content_type, r.opaque(), r.opaque(), r.opaque())


@dataclass(frozen=True, slots=True)
class PrivateMessageContent:
    """The plaintext of PrivateMessage.ciphertext: content, auth, then ``padding`` zero bytes."""

    content_type: ContentType
    content: Content
    auth: FramedContentAuthData
    padding: int = 0

    def __post_init__(self) -> None:
        _check_content(self.content_type, self.content)
        self.auth.check_for(self.content_type)
        if self.padding < 0:
            raise InternalError("negative padding")

    def to_bytes(self) -> bytes:
        w = Writer()
        _encode_content(w, self.content_type, self.content)
        self.auth.encode(w)
        w.write(bytes(self.padding))
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, content_type: ContentType) -> PrivateMessageContent:
        """Decode a plaintext for ``content_type`` (from the PrivateMessage header).

        Raises :class:`InvalidPadding` when the bytes after ``auth`` are not all zero.
        """
        r = Reader(data)
        content = _decode_content(r, content_type)
        auth = FramedContentAuthData.decode(r, content_type)
        padding = r.read(r.remaining)
        if padding.count(0) != len(padding):
            raise InvalidPadding("non-zero byte in PrivateMessageContent padding")
        return cls(content_type, content, auth, len(padding))


def encode_private_message_content(content_type: ContentType, content: Content,
                                   auth: FramedContentAuthData, padding: int = 0) -> bytes:
    return PrivateMessageContent(content_type, content, auth, padding).to_bytes()


def decode_private_message_content(data: bytes, content_type: ContentType
                                   ) -> PrivateMessageContent:
    return PrivateMessageContent.from_bytes(data, content_type)


@dataclass(frozen=True, slots=True)
class SenderData(Struct):
    leaf_index: int
    generation: int
    reuse_guard: bytes

    def __post_init__(self) -> None:
        if len(self.reuse_guard) != REUSE_GUARD_LEN:
            raise InternalError("reuse_guard is 4 bytes")

    def encode(self, w: Writer) -> None:
        w.u32(self.leaf_index)
        w.u32(self.generation)
        w.write(self.reuse_guard)

    @classmethod
    def decode(cls, r: Reader) -> SenderData:
        return cls(r.u32(), r.u32(), r.read(REUSE_GUARD_LEN))


@dataclass(frozen=True, slots=True)
class SenderDataAAD(Struct):
    group_id: bytes
    epoch: int
    content_type: ContentType

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)

    @classmethod
    def decode(cls, r: Reader) -> SenderDataAAD:
        return cls(r.opaque(), r.u64(), enum_value(ContentType, r.u8()))


@dataclass(frozen=True, slots=True)
class PrivateContentAAD(Struct):
    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes = b""

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.u8(self.content_type)
        w.opaque(self.authenticated_data)

    @classmethod
    def decode(cls, r: Reader) -> PrivateContentAAD:
        return cls(r.opaque(), r.u64(), enum_value(ContentType, r.u8()), r.opaque())
