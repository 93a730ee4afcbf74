"""GroupInfo and Welcome (RFC 9420 section 12.4.3).

Decoding checks syntax only; signatures and decryption are the joiner's job.
KeyPackageRef and MAC fields are bounded to 64 bytes (the largest KDF.Nh).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codec import Reader, Struct, Writer
from .extensions import Extension
from .framing import MAX_MAC
from .group_context import GroupContext
from .proposals import MAX_HASH_REFERENCE, PreSharedKeyID
from .tree_nodes import HPKECiphertext

__all__ = [
    "GroupInfoTBS",
    "GroupInfo",
    "PathSecret",
    "PreSharedKeyID",
    "GroupSecrets",
    "EncryptedGroupSecrets",
    "Welcome",
]


@dataclass(frozen=True, slots=True)
class GroupInfoTBS(Struct):
    group_context: GroupContext
    extensions: tuple[Extension, ...]
    confirmation_tag: bytes
    signer: int

    def encode(self, w: Writer) -> None:
        self.group_context.encode(w)
        w.vector(self.extensions, Struct.write_item)
        w.opaque(self.confirmation_tag)
        w.u32(self.signer)

    @classmethod
    def decode(cls, r: Reader) -> GroupInfoTBS:
        return cls(GroupContext.decode(r), tuple(r.vector(Extension.decode)), r.opaque(MAX_MAC),
                   r.u32())


@dataclass(frozen=True, slots=True)
class GroupInfo(Struct):
    group_context: GroupContext
    extensions: tuple[Extension, ...]
    confirmation_tag: bytes
    signer: int
    signature: bytes = b""

    def tbs(self) -> GroupInfoTBS:
        return GroupInfoTBS(self.group_context, self.extensions, self.confirmation_tag, self.signer)

    def tbs_bytes(self) -> bytes:
        """The encoded GroupInfoTBS, the content of SignWithLabel(., "GroupInfoTBS", .)."""
        return self.tbs().to_bytes()

    def encode(self, w: Writer) -> None:
        self.tbs().encode(w)
        w.opaque(self.signature)

    @classmethod
    def decode(cls, r: Reader) -> GroupInfo:
        t = GroupInfoTBS.decode(r)
        return cls(t.group_context, t.extensions, t.confirmation_tag, t.signer, r.opaque())


@dataclass(frozen=True, slots=True)
class PathSecret(Struct):
    path_secret: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.path_secret)

    @classmethod
    def decode(cls, r: Reader) -> PathSecret:
        return cls(r.opaque())


@dataclass(frozen=True, slots=True)
class GroupSecrets(Struct):
    joiner_secret: bytes
    path_secret: PathSecret | None = None
    psks: tuple[PreSharedKeyID, ...] = ()

    def encode(self, w: Writer) -> None:
        w.opaque(self.joiner_secret)
        w.optional(self.path_secret, Struct.write_item)
        w.vector(self.psks, Struct.write_item)

    @classmethod
    def decode(cls, r: Reader) -> GroupSecrets:
        return cls(r.opaque(), r.optional(PathSecret.decode), tuple(r.vector(PreSharedKeyID.decode)))


@dataclass(frozen=True, slots=True)
class EncryptedGroupSecrets(Struct):
    new_member: bytes  # KeyPackageRef
    encrypted_group_secrets: HPKECiphertext

    def encode(self, w: Writer) -> None:
        w.opaque(self.new_member)
        self.encrypted_group_secrets.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> EncryptedGroupSecrets:
        return cls(r.opaque(MAX_HASH_REFERENCE), HPKECiphertext.decode(r))


@dataclass(frozen=True, slots=True)
class Welcome(Struct):
    cipher_suite: int
    secrets: tuple[EncryptedGroupSecrets, ...]
    encrypted_group_info: bytes

    def secrets_for(self, key_package_ref: bytes) -> EncryptedGroupSecrets | None:
        """The entry addressed to ``key_package_ref``, or None."""
        for entry in self.secrets:
            if entry.new_member == key_package_ref:
                return entry
        return None

    def encode(self, w: Writer) -> None:
        w.u16(self.cipher_suite)
        w.vector(self.secrets, Struct.write_item)
        w.opaque(self.encrypted_group_info)

    @classmethod
    def decode(cls, r: Reader) -> Welcome:
        return cls(r.u16(), tuple(r.vector(EncryptedGroupSecrets.decode)), r.opaque())
