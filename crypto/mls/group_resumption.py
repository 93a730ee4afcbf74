"""Resumption of a group: subgroup branching and reinitialization (RFC 9420 sections 11.2,
11.3, 8.6), the parts outside :class:`~crypto.mls.group.Group`'s own methods.

:func:`start_resumed_group` builds the new group for :meth:`Group.branch` and
:meth:`Group.reinit`: a one-member group whose initial Commit adds the other
members and injects the old group's resumption PSK (usage branch or reinit).
:func:`check_resumption` is the joiner's side: a Welcome with such a PSK must start
at epoch 1 and match the prior group (raises
:class:`~crypto.mls.group_errors.InvalidResumption`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..rng import Rng
from .extensions import Extension
from .group_committing import stage_commit
from .group_context import GroupContext
from .group_errors import InvalidResumption
from .group_results import StagedCommit
from .key_package import KeyPackage
from .key_package_gen import KeyPackagePrivate
from .proposals import Add, PreSharedKey, PreSharedKeyID, Proposal, PSKType, ResumptionPSKUsage
from .ratchet_tree import RatchetTree

if TYPE_CHECKING:
    from .group import Group

__all__ = ["start_resumed_group", "check_resumption"]


def start_resumed_group(
    old: Group,
    usage: ResumptionPSKUsage,
    group_id: bytes,
    suite_id: int,
    extensions: Sequence[Extension],
    key_package: KeyPackage,
    private: KeyPackagePrivate,
    key_packages: Sequence[KeyPackage],
    force_path: bool,
    ratchet_tree_in_welcome: bool,
    rng: Rng,
) -> tuple[Group, StagedCommit]:
    """The new group (epoch 1, merged) and its initial Commit (whose ``welcome`` the others
    join with ``prior=``): ``old``'s current resumption PSK with ``usage`` is injected."""
    before = old.state
    new = type(old).create(suite_id, group_id, key_package, private, extensions=extensions, rng=rng,
                           max_past_epochs=before.max_past_epochs)
    after = new.state
    after.external_psks = dict(before.external_psks)
    after.prior_resumption_psks[(old.group_id, old.epoch)] = before.epoch.secrets.resumption_psk
    psk_id = PreSharedKeyID(PSKType.RESUMPTION, rng(new.cipher_suite.hash_len), usage=usage,
                            psk_group_id=old.group_id, psk_epoch=old.epoch)
    proposals = [Proposal(PreSharedKey(psk_id))] + [Proposal(Add(kp)) for kp in key_packages]
    staged = stage_commit(after, proposals, (), force_path=force_path, public=True,
                          ratchet_tree_in_welcome=ratchet_tree_in_welcome, authenticated_data=b"",
                          now=None, rng=rng, resumption_usages=frozenset({usage}))
    new.merge_staged_commit(staged)
    return new, staged


def check_resumption(psks: Sequence[PreSharedKeyID], context: GroupContext, tree: RatchetTree,
                     prior: Group | None) -> None:
    """The joiner's checks of a reinit or branch resumption PSK (11.2, 11.3, 12.4.3.1)."""
    special = [p for p in psks if p.usage in (ResumptionPSKUsage.REINIT, ResumptionPSKUsage.BRANCH)]
    if not special:
        return
    if len(special) > 1:
        raise InvalidResumption("more than one reinit/branch resumption PSK")
    if context.epoch != 1:
        raise InvalidResumption(f"a resumed group starts at epoch 1, not {context.epoch}")
    if prior is None:  # pragma: no cover - the PSK lookup needs the prior group
        raise InvalidResumption("no prior group to resume")
    old_credentials = [m.credential for m in prior.members]
    new_credentials = [leaf.credential for _, leaf in tree.members()]
    psk = special[0]
    if psk.usage == ResumptionPSKUsage.BRANCH:
        if context.cipher_suite != prior.cipher_suite.id or context.version != prior.group_context.version:
            raise InvalidResumption("a branch keeps the version and cipher suite")
        if any(c not in old_credentials for c in new_credentials):
            raise InvalidResumption("a branch member that is not in the prior group")
        return
    r = prior.pending_reinit
    if r is None:
        raise InvalidResumption("the prior group committed no ReInit")
    if (context.group_id, context.version, context.cipher_suite, context.extensions) != (
            r.group_id, r.version, r.cipher_suite, r.extensions):
        raise InvalidResumption("the new group does not match the ReInit")
    if psk.psk_epoch != prior.epoch:
        raise InvalidResumption("the reinit PSK is not of the epoch the ReInit started")
    if any(c not in new_credentials for c in old_credentials):
        raise InvalidResumption("a member of the prior group is missing from the new group")


