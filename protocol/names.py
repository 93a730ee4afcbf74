"""Names people give their devices: shown to them, so they must read as what they are
(``spec/security.md``, finding 14). The server stores none (finding 9): a ``device_name``
in a request is checked as a name, then refused (``protocol.api``).

:func:`display_name` is the schema check of ``device_name``: first the bounds of
:func:`protocol.schema.text` (``malformed_body``), then :class:`InvalidName`
(``invalid_name``, 400) for

- a bidirectional control (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069),
  which makes a name display in an order other than the one it is stored in;
- a line or paragraph separator (U+2028, U+2029) or a C1 control such as NEL
  (U+0085), which break a name over lines in logs and listings;
- a name with nothing visible: only spaces, format characters (U+200B, U+FEFF, ...),
  combining marks and blank fillers (U+115F, U+1160, U+2800, U+3164, U+FFA0).

User names are localparts, ASCII by their grammar (``protocol.ids``), so none of these
can appear in them.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .errors import BadRequest
from .schema import Check, text

__all__ = ["InvalidName", "display_name", "name_problem"]

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SEPARATORS = frozenset("\u2028\u2029")
_BLANK = frozenset("\u115f\u1160\u2800\u3164\uffa0")
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cf", "Cc", "Mn", "Me"})


class InvalidName(BadRequest):
    """A device name with a bidirectional control, a line separator or C1 control, or nothing visible."""

    code = "invalid_name"
    status = 400


def name_problem(name: str) -> str | None:
    """Why ``name`` may not be shown as a name (see the module docstring), or None."""
    for ch in name:
        if ch in _BIDI:
            return f"bidirectional control U+{ord(ch):04X}"
        if ch in _SEPARATORS or "\x80" <= ch <= "\x9f":
            return f"line separator or control U+{ord(ch):04X}"
    if all(ch in _BLANK or unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in name):
        return "nothing visible"
    return None


def display_name(max_bytes: int) -> Check:
    """A :func:`~protocol.schema.text` of ``1..max_bytes`` that :func:`name_problem` accepts."""
    bounded = text(max_bytes)

    def check(v: Any, where: str) -> str:
        value = bounded(v, where)
        problem = name_problem(value)
        if problem is not None:
            raise InvalidName(f"{where}: {problem}")
        return value

    return check
