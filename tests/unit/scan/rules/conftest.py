"""One compiled rule set per session: compiling takes a moment and the set is immutable."""

from __future__ import annotations

import pytest

from secretsvc.scan.rules import RuleSet


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return RuleSet.default()
