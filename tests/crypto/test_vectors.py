"""Every IETF vector family that ``confide conformance`` knows, one pytest test per case.

The checkers are the same functions the conformance runner calls
(``client/conformance``); cases of unsupported suites and families whose
checker is not built yet are skipped with that reason.
"""

from __future__ import annotations

import pytest

from client.conformance import FAMILIES, skip_reason
from tests.conftest import load_vectors


def _params():
    out = []
    for family in FAMILIES:
        cases = load_vectors(family.path)
        if not cases:
            out.append(pytest.param(family, None, id=family.path,
                                    marks=pytest.mark.skip(reason=f"vectors not found: {family.path}")))
            continue
        checker = family.load_checker()
        for i, case in enumerate(cases):
            reason = skip_reason(family, case, checker)
            marks = pytest.mark.skip(reason=reason) if reason else ()
            out.append(pytest.param(family, case, id=f"{family.path}[{i}]", marks=marks))
    return out


@pytest.mark.parametrize(("family", "case"), _params())
def test_vector_case(family, case):
    family.load_checker()(case)
