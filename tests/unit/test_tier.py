"""The unit tier stays a unit tier: running it alone never imports moto or the local stack."""

from __future__ import annotations

import sys

import pytest


def test_the_unit_tier_imports_no_moto_and_no_gateway() -> None:
    if any(name.startswith("test_") for name in sys.modules):
        pytest.skip("integration modules share this process (a full run): nothing to tell")
    assert not [m for m in sys.modules if m == "moto" or m.startswith("moto.")]
    assert "tools.local_stack" not in sys.modules
