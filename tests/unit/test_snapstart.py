"""SnapStart's hooks: segments.aws hands them to the runtime's `snapshot_restore_py` when there is
one; before the snapshot the clients are built (models loaded, no request made); after a restore
each environment draws its own random numbers and builds its own clients."""

from __future__ import annotations

import importlib.util
import random
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from segments import aws, snapstart

AWS_MODULE = Path(aws.__file__)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[Callable[[], None]]]]:
    """A stand-in for Lambda's `snapshot_restore_py`, recording what registers with it."""
    hooks: dict[str, list[Callable[[], None]]] = {"before": [], "after": []}
    module = types.ModuleType("snapshot_restore_py")
    module.register_before_snapshot = hooks["before"].append  # type: ignore[attr-defined]
    module.register_after_restore = hooks["after"].append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    yield hooks
    aws.reset()


def test_nothing_is_registered_without_the_runtime_module() -> None:
    assert "snapshot_restore_py" not in sys.modules
    assert snapstart.register(before_snapshot=aws.prime, after_restore=aws.after_restore) is False


def test_the_aws_module_registers_its_hooks_when_loaded_by_the_runtime(runtime: dict[str, list]) -> None:
    spec = importlib.util.spec_from_file_location("segments_aws_under_snapstart", AWS_MODULE)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    assert [h.__qualname__ for h in runtime["before"]] == ["prime"]
    assert [h.__qualname__ for h in runtime["after"]] == ["after_restore"]
    assert runtime["before"][0].__module__ == runtime["after"][0].__module__ == "segments_aws_under_snapstart"


def test_prime_builds_every_client_without_a_request() -> None:
    aws.reset()
    aws.prime()  # the unit tier's endpoint is a closed port: a request would fail here
    assert set(aws._clients) == set(aws.SERVICE_CONFIG)
    built = aws.dynamodb()
    aws.after_restore()
    assert aws._clients == {}
    assert aws.dynamodb() is not built  # each restored environment builds its own


def test_environments_restored_from_one_snapshot_draw_different_jitter() -> None:
    random.seed(20261206)
    snapshot = random.getstate()
    draws = []
    for _ in range(2):  # two environments resumed from the same memory
        random.setstate(snapshot)
        aws.after_restore()
        draws.append([aws.delay(3) for _ in range(4)])
    assert draws[0] != draws[1]
