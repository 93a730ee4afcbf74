"""The request fields and response values of the MLS driver protocol (``spec/mls-driver.md``).

Each ``*_field``/``*_of`` helper reads one field of a request object and raises
:class:`DriverFailure` (``bad_request``, or ``unsupported`` for a cipher suite the driver
does not run) when it is missing or malformed; :func:`wire` and :func:`staged_tree`
encode response values as lowercase hex.
"""

from __future__ import annotations

import re
from typing import Any

from crypto.errors import CryptoError
from crypto.mls.ciphersuite import SUPPORTED_SUITES, CipherSuite, get_suite
from crypto.mls.extensions import Extension, ExtensionType, find_extension
from crypto.mls.framing import PrivateMessage, PublicMessage
from crypto.mls.group import StagedCommit
from crypto.mls.message import MLSMessage
from crypto.mls.ratchet_tree import RatchetTree
from crypto.mls.welcome import GroupInfo

__all__ = ["DRIVER_SUITES", "HANDSHAKE", "DriverFailure", "bad_request", "need", "hex_value",
           "bytes_field", "optional_bytes", "uint_field", "list_field", "suite_of", "message_of",
           "extensions_of", "tree_of", "tree_of_group_info", "leaf_of", "wire", "staged_tree"]

DRIVER_SUITES = (1, 3)

_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")
HANDSHAKE = (PublicMessage, PrivateMessage)


class DriverFailure(Exception):
    """A request the driver answers with ``ok: false`` and the protocol error ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def bad_request(message: str) -> DriverFailure:
    return DriverFailure("bad_request", message)


# ---------------------------------------------------------------- request fields


def need(req: dict, name: str) -> Any:
    value = req.get(name)
    if value is None:
        raise bad_request(f"missing field {name}")
    return value


def hex_value(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not _HEX.match(value):
        raise bad_request(f"{name} must be lowercase hex")
    return bytes.fromhex(value)


def bytes_field(req: dict, name: str) -> bytes:
    return hex_value(need(req, name), name)


def optional_bytes(req: dict, name: str) -> bytes | None:
    value = req.get(name)
    return None if value is None or value == "" else hex_value(value, name)


def uint_field(req: dict, name: str) -> int:
    value = need(req, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_request(f"{name} must be a non-negative integer")
    return value


def list_field(req: dict, name: str) -> list:
    value = req.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{name} must be a list")
    return value


def suite_of(number: Any) -> CipherSuite:
    if not isinstance(number, int) or number not in DRIVER_SUITES or number not in SUPPORTED_SUITES:
        raise DriverFailure("unsupported", f"cipher suite {number} not supported")
    return get_suite(number)


def message_of(data: bytes, name: str, *kinds: type) -> MLSMessage:
    """Decode an MLSMessage whose body is one of ``kinds``; bad_request otherwise."""
    try:
        msg = MLSMessage.from_bytes(data)
    except CryptoError as exc:
        raise bad_request(f"{name}: not an MLSMessage ({exc.code}: {exc})") from None
    if kinds and not isinstance(msg.body, kinds):
        want = " or ".join(k.__name__ for k in kinds)
        raise bad_request(f"{name}: expected {want}, got {type(msg.body).__name__}")
    return msg


def extensions_of(items: Any) -> tuple[Extension, ...]:
    if not isinstance(items, list):
        raise bad_request("extensions must be a list")
    out = []
    for e in items:
        if not isinstance(e, dict):
            raise bad_request("an extension must be an object")
        t = uint_field(e, "extension_type")
        if t > 0xFFFF:
            raise bad_request("extension_type is a uint16")
        out.append(Extension(t, hex_value(e.get("extension_data", ""), "extension_data")))
    return tuple(out)


def tree_of(suite: CipherSuite, data: bytes | None) -> RatchetTree | None:
    if data is None:
        return None
    try:
        return RatchetTree.from_bytes(suite, data)
    except CryptoError as exc:
        raise bad_request(f"ratchet_tree does not decode ({exc.code}: {exc})") from None


def tree_of_group_info(suite: CipherSuite, info: GroupInfo, given: bytes | None) -> RatchetTree:
    ext = find_extension(info.extensions, ExtensionType.RATCHET_TREE)
    tree = tree_of(suite, ext.extension_data if ext is not None else given)
    if tree is None:
        raise bad_request("the GroupInfo embeds no ratchet tree and none was given")
    return tree


def leaf_of(tree: RatchetTree, identity: bytes) -> int:
    leaf = tree.find_leaf(lambda node: node.credential.identity == identity)
    if leaf is None:
        raise bad_request(f"no member with identity {identity.hex()}")
    return int(leaf)


def wire(msg: MLSMessage) -> str:
    return msg.to_bytes().hex()


def staged_tree(staged: StagedCommit) -> bytes:
    """The new epoch's ratchet tree of a staged Commit: given apart, or from its GroupInfo."""
    if staged.ratchet_tree is not None:
        return staged.ratchet_tree.to_bytes()
    info = staged.group_info
    ext = find_extension(info.extensions, ExtensionType.RATCHET_TREE) if info is not None else None
    return ext.extension_data if ext is not None else b""
