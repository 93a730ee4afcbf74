"""MLSMessage (RFC 9420 section 6): the envelope of everything MLS sends.

Decoding raises :class:`UnsupportedProtocolVersion` unless the version is mls10
and :class:`UnknownWireFormat` for a wire format outside the five of RFC 9420.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codec import Reader, Struct, Writer
from ..errors import InternalError
from .framing import PrivateMessage, PublicMessage, WireFormat, read_wire_format
from .group_context import PROTOCOL_VERSION_MLS10
from .key_package import KeyPackage, decode_protocol_version
from .welcome import GroupInfo, Welcome

__all__ = ["MLSMessage", "MessageBody"]

MessageBody = PublicMessage | PrivateMessage | Welcome | GroupInfo | KeyPackage

_BODY_BY_FORMAT: dict[WireFormat, type[Struct]] = {
    WireFormat.MLS_PUBLIC_MESSAGE: PublicMessage,
    WireFormat.MLS_PRIVATE_MESSAGE: PrivateMessage,
    WireFormat.MLS_WELCOME: Welcome,
    WireFormat.MLS_GROUP_INFO: GroupInfo,
    WireFormat.MLS_KEY_PACKAGE: KeyPackage,
}


@dataclass(frozen=True, slots=True)
class MLSMessage(Struct):
    """An MLS message; ``wire_format`` follows from the class of ``body``."""

    body: MessageBody
    version: int = PROTOCOL_VERSION_MLS10

    def __post_init__(self) -> None:
        if type(self.body) not in _BODY_BY_FORMAT.values():
            raise InternalError(f"{type(self.body).__name__} is not an MLSMessage body")

    @property
    def wire_format(self) -> WireFormat:
        for wire_format, cls in _BODY_BY_FORMAT.items():
            if type(self.body) is cls:
                return wire_format
        raise InternalError("unreachable")  # pragma: no cover

    def encode(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.wire_format)
        self.body.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> MLSMessage:
        version = decode_protocol_version(r)
        wire_format = read_wire_format(r)
        return cls(_BODY_BY_FORMAT[wire_format].decode(r), version)  # type: ignore[arg-type]
