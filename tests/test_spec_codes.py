"""spec/ stays true: every error code the pure layers can raise is written in spec/.

Walks every module of ``crypto`` and ``protocol``, collects the ``code`` of
each exception class defined there, and checks that the code appears, in
backticks, in some ``spec/*.md``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _error_codes() -> dict[str, str]:
    codes: dict[str, str] = {}
    for package_name in ("crypto", "protocol"):
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if inspect.isclass(obj) and issubclass(obj, Exception) and obj.__module__ == module.__name__:
                    code = obj.__dict__.get("code")
                    if isinstance(code, str):
                        codes[code] = f"{module.__name__}.{name}"
    return codes


def test_every_error_code_is_specified():
    text = "\n".join(p.read_text() for p in (REPO / "spec").rglob("*.md"))
    documented = set(re.findall(r"`([a-z0-9_]+)`", text))
    missing = {code: where for code, where in _error_codes().items() if code not in documented}
    assert not missing, "error codes missing from spec/: " + ", ".join(f"{c} ({w})" for c, w in sorted(missing.items()))


def test_codes_are_found():
    codes = _error_codes()
    assert codes["truncated"] == "crypto.errors.Truncated"
    assert "mls_wrong_epoch" in codes
