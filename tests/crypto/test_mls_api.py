"""The public API of ``crypto.mls`` (its ``__init__``): every exported name resolves to the
object its submodule defines, and importing the package imports no submodule."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import crypto.mls as mls

REPO = Path(__file__).resolve().parents[2]


def test_all_lists_exactly_the_exports():
    assert sorted(mls.__all__) == sorted(mls._EXPORTS)
    assert len(set(mls.__all__)) == len(mls.__all__)


@pytest.mark.parametrize("name", sorted(mls._EXPORTS))
def test_each_name_is_its_submodule_object(name):
    module = importlib.import_module(f"crypto.mls.{mls._EXPORTS[name]}")
    assert getattr(mls, name) is getattr(module, name)
    assert name in dir(mls)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        mls.NoSuchThing  # noqa: B018


def test_importing_the_package_is_cheap():
    code = ("import sys, crypto.mls; "
            "print(sorted(m for m in sys.modules if m.startswith('crypto.mls.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO)
    assert out.stdout.strip() == "[]"
    code = "from crypto.mls import *; print(Group.__name__, PublicGroup.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO)
    assert out.stdout.split() == ["Group", "PublicGroup"]
