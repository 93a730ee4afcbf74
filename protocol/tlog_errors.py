"""The transparency log's and the witness's error codes, in the one API error registry.

The log (``/_confide/log/v1``, C2SP tlog-tiles) and the witness
(``/_confide/witness/v1``, C2SP tlog-witness) answer with these codes and the
statuses tlog-witness prescribes; defining them here registers them in
:data:`protocol.errors.REGISTRY`, beside the client API's codes, so the one
error middleware maps every code to its status. Those routes get the C2SP text
body ``<code>: <message>\\n`` (``spec/audit-log.md`` section 4.1) instead of
msgpack; ``not_found`` and ``bad_request`` are the registry's own.
"""

from __future__ import annotations

from .errors import ApiError, BadRequest

__all__ = [
    "TlogMalformed",
    "TlogInvalidTreeSize",
    "TlogOldSizeTooLarge",
    "TlogUnverifiedNote",
    "TlogNoteSignatureInvalid",
    "TlogUnknownOrigin",
    "TlogSizeConflict",
    "TlogInconsistent",
    "TlogBadEmptyRoot",
    "TlogUnexpectedProof",
]


class TlogMalformed(BadRequest):
    """A tile path, number, event hash, add-checkpoint body or checkpoint that does not parse."""

    code = "malformed"
    status = 400


class TlogInvalidTreeSize(BadRequest):
    """A proof asked for an index or sizes that describe none."""

    code = "invalid_tree_size"
    status = 400


class TlogOldSizeTooLarge(BadRequest):
    """An add-checkpoint whose old size is above the checkpoint's size."""

    code = "old_size_too_large"
    status = 400


class TlogUnverifiedNote(ApiError):
    """No signature from a key the witness trusts for the checkpoint's origin."""

    code = "unverified_note"
    status = 403


class TlogNoteSignatureInvalid(ApiError):
    """A trusted key's signature on the checkpoint does not verify."""

    code = "note_signature_invalid"
    status = 403


class TlogUnknownOrigin(ApiError):
    """The witness does not follow the checkpoint's log."""

    code = "unknown_origin"
    status = 404


class TlogSizeConflict(ApiError):
    """The old size is not the size last cosigned; ``current_size`` is (text body ``<size>\\n``)."""

    code = "size_conflict"
    status = 409

    def __init__(self, message: str, current_size: int) -> None:
        super().__init__(message, current_size=current_size)
        self.current_size = current_size


class TlogInconsistent(ApiError):
    """The consistency proof from the last cosigned checkpoint does not verify."""

    code = "inconsistent"
    status = 422


class TlogBadEmptyRoot(ApiError):
    """A size-0 checkpoint whose root is not the empty tree's."""

    code = "bad_empty_root"
    status = 422


class TlogUnexpectedProof(ApiError):
    """A consistency proof sent with old size 0."""

    code = "unexpected_proof"
    status = 422
