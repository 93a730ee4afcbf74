"""Validation of an uploaded KeyPackage against the device that uploads it.

Pure apart from the clock value passed in. :func:`check_key_package` decodes
the ``MLSMessage`` strictly (exact length, wire format ``mls_key_package``),
then requires: cipher suite 1 or 3; RFC 9420 section 10.1 validity (version,
leaf source, capabilities, both signatures) with ``now`` inside the leaf's
lifetime; the leaf's signature key and credential equal to the device's
registered ones; and the last-resort extension (0x000A) present exactly when
the package is uploaded as the last-resort one; and its extensions and capabilities
on the allow-list of :func:`protocol.room_channels.check_key_package` (finding 9).
Every failure raises
:class:`~protocol.errors.KeyPackageInvalid` with the reason.
"""

from __future__ import annotations

from crypto.errors import CryptoError, InternalError
from crypto.mls.ciphersuite import get_suite
from crypto.mls.key_package import KeyPackage
from crypto.mls.key_package_gen import is_last_resort, key_package_ref, validate_key_package
from crypto.mls.message import MLSMessage
from protocol import room_channels
from protocol.errors import ApiError, KeyPackageInvalid
from server.storage.key_packages import NewKeyPackage

__all__ = ["SUPPORTED_SUITES", "check_key_package"]

SUPPORTED_SUITES = frozenset({1, 3})
_MAX_SQLITE_INT = (1 << 63) - 1


def check_key_package(
    data: bytes, *, signature_key: bytes, credential: bytes, last_resort: bool, now_s: int
) -> NewKeyPackage:
    """The storable form of ``data``; raises :class:`KeyPackageInvalid`."""
    try:
        msg = MLSMessage.from_bytes(data)
    except (CryptoError, InternalError) as exc:
        raise KeyPackageInvalid(f"not an MLSMessage ({getattr(exc, 'code', 'decode_error')})") from None
    kp = msg.body
    if not isinstance(kp, KeyPackage):
        raise KeyPackageInvalid(f"wire format {msg.wire_format.name}, expected mls_key_package")
    if kp.cipher_suite not in SUPPORTED_SUITES:
        raise KeyPackageInvalid(f"cipher suite {kp.cipher_suite} is not supported (1 or 3)")
    suite = get_suite(kp.cipher_suite)
    try:
        validate_key_package(suite, kp, now=now_s)
    except CryptoError as exc:
        raise KeyPackageInvalid(f"{exc.code}: {exc}") from None
    leaf = kp.leaf_node
    if leaf.signature_key != signature_key:
        raise KeyPackageInvalid("the leaf's signature key is not the device's registered key")
    if leaf.credential.to_bytes() != credential:
        raise KeyPackageInvalid("the leaf's credential is not the device's registered credential")
    try:
        room_channels.check_key_package(kp)  # spec/security.md finding 9
    except ApiError as exc:
        raise KeyPackageInvalid(f"{exc.code}: {exc.message}") from None
    if is_last_resort(kp) != last_resort:
        raise KeyPackageInvalid(
            "a last-resort KeyPackage needs the last_resort extension; one-time ones must not have it")
    lifetime = leaf.lifetime
    not_before = min(lifetime.not_before, _MAX_SQLITE_INT) if lifetime else 0
    not_after = min(lifetime.not_after, _MAX_SQLITE_INT) if lifetime else _MAX_SQLITE_INT
    return NewKeyPackage(key_package_ref(suite, kp), bytes(data), last_resort, not_before, not_after)
