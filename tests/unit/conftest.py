"""The unit tier's fixtures. Nothing here (or in any tests/unit module) imports moto or starts the
gateway; the root conftest's fixtures that do are never requested from this tier.

`aws_env` overrides the root conftest's autouse fixture of that name (which resets the store's
client for moto): here no AWS call is expected, so any that slips through goes to a closed
loopback port with fake credentials and fails, instead of reaching a real account.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": UNREACHABLE,
        "AWS_ENDPOINT_URL_DYNAMODB": UNREACHABLE,
    }.items():
        monkeypatch.setenv(name, value)
    yield
