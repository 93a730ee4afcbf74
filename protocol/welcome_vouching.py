"""Which devices a commit's Welcome may go to, from the commit's own bytes (pure).

A follower server receives a hub's ``welcome`` item (``spec/server-server.md`` 11.2) after it
stored the hub-signed commit that added the targets. :func:`welcome_targets` opens the
stored commit (and the stored proposal messages of its epoch, for Adds by reference),
collects the KeyPackages it adds, and maps each EncryptedGroupSecrets of the Welcome to the
device whose KeyPackage it names (by KeyPackageRef). The result is the set of devices the
Welcome can be opened by; a target outside it is not vouched for by the signed commit.

Raises :class:`~protocol.room_errors.WelcomeInvalid` for a Welcome of another cipher suite
or one that names a KeyPackage the commit does not add.
"""

from __future__ import annotations

from collections.abc import Iterable

from crypto.errors import CryptoError
from crypto.mls.ciphersuite import get_suite
from crypto.mls.commit import Commit
from crypto.mls.framing import AuthenticatedContent, PublicMessage
from crypto.mls.key_package import KeyPackage
from crypto.mls.key_package_gen import key_package_ref
from crypto.mls.message import MLSMessage, WireFormat
from crypto.mls.proposals import Add, Proposal
from crypto.mls.welcome import Welcome

from .room_errors import WelcomeInvalid
from .room_messages import parse_device_identity

__all__ = ["welcome_targets"]

_PROPOSAL_REF_LABEL = "MLS 1.0 Proposal Reference"


def _public(data: bytes) -> PublicMessage | None:
    try:
        body = MLSMessage.from_bytes(data).body
    except CryptoError:  # stored events were checked as MLS; anything else adds nothing
        return None
    return body if isinstance(body, PublicMessage) else None


def _added(commit_message: bytes, proposal_messages: Iterable[bytes], suite) -> list[KeyPackage]:
    commit_pm = _public(commit_message)
    if commit_pm is None or not isinstance(commit_pm.content.content, Commit):
        return []
    by_ref: dict[bytes, Proposal] = {}
    for data in proposal_messages:
        pm = _public(data)
        if pm is not None and isinstance(pm.content.content, Proposal):
            ac = AuthenticatedContent(WireFormat.MLS_PUBLIC_MESSAGE, pm.content, pm.auth)
            by_ref[suite.ref_hash(_PROPOSAL_REF_LABEL, ac.to_bytes())] = pm.content.content
    out = []
    for p in commit_pm.content.content.proposals:
        proposal = p.value if isinstance(p.value, Proposal) else by_ref.get(p.value)
        if proposal is not None and isinstance(proposal.body, Add):
            out.append(proposal.body.key_package)
    return out


def welcome_targets(welcome: Welcome, cipher_suite: int, commit_message: bytes,
                    proposal_messages: Iterable[bytes] = ()) -> set[tuple[str, str]]:
    """(user, device) of each device whose KeyPackage, added by the commit, the Welcome's
    secrets name (see the module docstring)."""
    if welcome.cipher_suite != cipher_suite:
        raise WelcomeInvalid("the Welcome's cipher suite is not the room's")
    suite = get_suite(cipher_suite)
    named = {}
    for kp in _added(commit_message, proposal_messages, suite):
        user, device = parse_device_identity(kp.leaf_node.credential)
        named[key_package_ref(suite, kp)] = (str(user), str(device))
    out = set()
    for secrets in welcome.secrets:
        member = named.get(secrets.new_member)
        if member is None:
            raise WelcomeInvalid("the Welcome names a KeyPackage the commit does not add")
        out.add(member)
    return out
