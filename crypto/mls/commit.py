"""Commit (RFC 9420 section 12.4): proposals by value or reference, and an optional UpdatePath."""

from __future__ import annotations

from dataclasses import dataclass

from ..codec import Reader, Struct, Writer
from .proposals import ProposalOrRef
from .tree_nodes import UpdatePath

__all__ = ["Commit"]


@dataclass(frozen=True, slots=True)
class Commit(Struct):
    proposals: tuple[ProposalOrRef, ...] = ()
    path: UpdatePath | None = None

    def encode(self, w: Writer) -> None:
        w.vector(self.proposals, Struct.write_item)
        w.optional(self.path, Struct.write_item)

    @classmethod
    def decode(cls, r: Reader) -> Commit:
        return cls(tuple(r.vector(ProposalOrRef.decode)), r.optional(UpdatePath.decode))
