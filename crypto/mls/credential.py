"""Credentials (RFC 9420 section 5.3).

A Credential's body has no outer length prefix, so a receiver cannot skip a
body it does not understand: an unknown ``credential_type`` makes the rest of
the enclosing structure unparseable. Confide therefore rejects it with
:class:`UnknownCredentialType` rather than carrying it. (Unknown values in
``Capabilities.credentials`` are plain u16 and are carried.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ..codec import Reader, Struct, Writer
from ..errors import InternalError
from .wire_errors import UnknownCredentialType, enum_value

__all__ = ["CredentialType", "Certificate", "Credential"]


class CredentialType(IntEnum):
    BASIC = 1
    X509 = 2


@dataclass(frozen=True, slots=True)
class Certificate(Struct):
    """One DER-encoded X.509 certificate (``opaque cert_data<V>``)."""

    cert_data: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.cert_data)

    @classmethod
    def decode(cls, r: Reader) -> Certificate:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class Credential(Struct):
    """``basic`` carries ``identity``; ``x509`` carries ``certificates`` (end-entity first).

    Decoding raises :class:`UnknownCredentialType` for any other type.
    """

    credential_type: CredentialType
    identity: bytes | None = None
    certificates: tuple[Certificate, ...] | None = None

    def __post_init__(self) -> None:
        basic = self.credential_type == CredentialType.BASIC
        if basic != (self.identity is not None) or basic == (self.certificates is not None):
            raise InternalError("Credential fields do not match its credential_type")

    @classmethod
    def basic(cls, identity: bytes) -> Credential:
        return cls(CredentialType.BASIC, identity=identity)

    @classmethod
    def x509(cls, certificates: list[bytes] | tuple[bytes, ...]) -> Credential:
        return cls(CredentialType.X509, certificates=tuple(Certificate(c) for c in certificates))

    def encode(self, w: Writer) -> None:
        w.u16(self.credential_type)
        if self.credential_type == CredentialType.BASIC:
            w.opaque(self.identity or b"")
        else:
            w.vector(self.certificates or (), Struct.write_item)

    @classmethod
    def decode(cls, r: Reader) -> Credential:
        ctype = enum_value(CredentialType, r.u16(), UnknownCredentialType)
        if ctype == CredentialType.BASIC:
            return cls(ctype, identity=r.opaque())
        return cls(ctype, certificates=tuple(r.vector(Certificate.decode)))
