"""Typed decoding errors of the MLS wire structures (RFC 9420), each with a stable code.

All derive from :class:`crypto.errors.DecodeError`, so a caller that only wants
"these bytes are not a valid MLS structure" catches that one class.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TypeVar

from ..errors import DecodeError, InvalidValue

__all__ = [
    "UnknownEnumValue",
    "UnknownWireFormat",
    "UnsupportedProtocolVersion",
    "UnknownProposalType",
    "UnknownCredentialType",
    "InvalidPadding",
    "InvalidRatchetTree",
    "BlankLastNode",
    "NodeTypeMismatch",
    "enum_value",
]

E = TypeVar("E", bound=IntEnum)


class UnknownEnumValue(InvalidValue):
    """A closed enum (ContentType, SenderType, NodeType, ...) holds a value outside its range."""

    code = "mls_unknown_enum_value"


class UnknownWireFormat(UnknownEnumValue):
    """MLSMessage.wire_format is not one of the five RFC 9420 wire formats."""

    code = "mls_unknown_wire_format"


class UnsupportedProtocolVersion(InvalidValue):
    """A ProtocolVersion field that must be mls10 holds another value."""

    code = "mls_unsupported_version"


class UnknownProposalType(UnknownEnumValue):
    """A Proposal's type is not one whose body Confide can parse (no length prefix to skip it)."""

    code = "mls_unknown_proposal_type"


class UnknownCredentialType(UnknownEnumValue):
    """A Credential's type is neither basic nor x509 (no length prefix to skip it)."""

    code = "mls_unknown_credential_type"


class InvalidPadding(DecodeError):
    """PrivateMessageContent padding holds a non-zero byte (RFC 9420 section 6.3.1)."""

    code = "mls_invalid_padding"


class InvalidRatchetTree(DecodeError):
    """A ratchet_tree vector is structurally invalid (RFC 9420 section 12.4.3.3)."""

    code = "mls_invalid_ratchet_tree"


class BlankLastNode(InvalidRatchetTree):
    """The last entry of a ratchet_tree vector is blank (or the vector is empty)."""

    code = "mls_blank_last_node"


class NodeTypeMismatch(InvalidRatchetTree):
    """A parent node sits at a leaf position (even index) or a leaf node at a parent position."""

    code = "mls_node_type_mismatch"


def enum_value(enum: type[E], value: int, error: type[UnknownEnumValue] = UnknownEnumValue) -> E:
    """``enum(value)``, raising ``error`` (a typed decode error) for values outside the enum."""
    try:
        return enum(value)
    except ValueError:
        raise error(f"{enum.__name__} value {value}") from None
