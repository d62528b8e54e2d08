"""One settings model, one module for the AWS clients and the retry backoff.

The environment is read in config.py alone; clients are made in aws.py alone; every retry loop
waits through aws.backoff. The scans below fail when a module reads a variable, builds a client or
sleeps on its own again.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from segments import aws, config, queues
from segments.config import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
CODE = sorted([*(ROOT / "layers/core/segments").rglob("*.py"), *(ROOT / "functions").rglob("*.py")])
# Variables the libraries read themselves (Powertools, botocore), not the code.
LIBRARY_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL", "LOG_LEVEL"}


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    aws.reset()
    yield
    aws.reset()


def _calls(path: Path) -> Iterator[tuple[str, int]]:
    """Dotted names used in `path` (os.environ, boto3.client, time.sleep...), with their lines."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            yield f"{node.value.id}.{node.attr}", node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def _uses(names: set[str], allowed: set[str]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in CODE
        if str(path.relative_to(ROOT / "layers/core" if "segments" in path.parts else ROOT)) not in allowed
        for name, line in _calls(path)
        if name in names
    ]


def test_only_the_settings_model_reads_the_environment() -> None:
    assert _uses({"os.environ", "os.getenv", "os.environ.get"}, {"segments/config.py"}) == []


def test_only_the_clients_module_makes_clients() -> None:
    assert (
        _uses({"boto3.client", "boto3.resource", "boto3.Session", "botocore.config.Config"}, {"segments/aws.py"}) == []
    )


def test_only_the_clients_module_sleeps_between_retries() -> None:
    # The lease wait of a member write waits for another request, bounded by a deadline: not a retry.
    allowed = {"segments/aws.py", "segments/usecases/members.py"}
    assert _uses({"time.sleep", "random.uniform"}, allowed) == []


def test_every_variable_has_one_default() -> None:
    defaults = Settings.model_validate({})
    assert defaults.table_name == "SegmentsTable" and defaults.idempotency_table_name == "IdempotencyTable"
    assert (defaults.max_pids_per_request, defaults.members_page_size, defaults.rebuild_chunk_size) == (
        10_000,
        5_000,
        500,
    )
    assert defaults.pid_validation == "format" and defaults.lease_wait_seconds == 20.0
    assert defaults.rebuild_queue_url is None and defaults.event_bus_name is None and defaults.region is None


def test_the_settings_are_read_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TABLE_NAME": "T",
        "MAX_PIDS_PER_REQUEST": "7",
        "PID_VALIDATION": "registry",
        "REBUILD_QUEUE_URL": "https://queue",
        "REBUILD_CHUNK_SIZE": "0",
        "EVENT_BUS_NAME": "Bus",
        "PERSON_EVENTS_QUEUE_URL": "https://people",
        "AWS_REGION": "",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    aws.reset()
    settings = get_settings()
    assert (settings.table_name, settings.max_pids_per_request, settings.pid_validation) == ("T", 7, "registry")
    assert (settings.rebuild_queue_url, settings.rebuild_chunk_size) == ("https://queue", 1)  # at least one
    assert (settings.event_bus_name, settings.person_events_queue_url) == ("Bus", "https://people")
    assert settings.region == "eu-west-1"  # an empty AWS_REGION does not hide AWS_DEFAULT_REGION
    monkeypatch.setenv("TABLE_NAME", "Other")
    assert get_settings() is settings  # read once
    aws.reset()
    assert get_settings().table_name == "Other"


def test_a_bad_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PID_VALIDATION", "anything")
    with pytest.raises(ValueError, match="PID_VALIDATION"):
        get_settings()


def test_the_template_and_the_readme_name_every_variable() -> None:
    set_by_template: set[str] = set()
    block = None  # indentation of the `Variables:` block being read
    for line in (ROOT / "template.yaml").read_text(encoding="utf-8").splitlines():
        indent = len(line) - len(line.lstrip())
        if line.strip() == "Variables:":
            block = indent
        elif block is not None and line.strip() and indent > block:
            set_by_template.add(line.strip().split(":", 1)[0])
        elif line.strip():
            block = None
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    variables = set(config.variables())
    assert {"TABLE_NAME", "REBUILD_QUEUE_URL", "EVENT_BUS_NAME"} <= set_by_template
    assert set_by_template - LIBRARY_VARIABLES <= variables
    assert [name for name in sorted(variables | LIBRARY_VARIABLES) if f"`{name}`" not in section] == []


def test_one_client_per_service_until_reset() -> None:
    forgotten: list[str] = []
    aws.on_reset(lambda: forgotten.append("cache"))
    try:
        dynamodb, sqs = aws.dynamodb(), aws.sqs()
        assert aws.dynamodb() is dynamodb and aws.client("sqs") is sqs and dynamodb is not sqs
        assert dynamodb.meta.config.read_timeout == 5 and dynamodb.meta.config.max_pool_connections == 32
        assert sqs.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}  # 4 retries
        settings = get_settings()
        aws.reset()
        assert aws.dynamodb() is not dynamodb and get_settings() is not settings and forgotten == ["cache"]
    finally:
        aws._resets.pop()


def test_the_backoff_grows_is_capped_and_jittered() -> None:
    assert [aws.delay(n, base=0.2, cap=5.0, jitter=False) for n in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    for attempt in range(10):
        assert 0 <= aws.delay(attempt) <= min(2.0, 0.05 * 2**attempt)
    assert len({aws.delay(3) for _ in range(20)}) > 1


def test_sqs_batch_entries_are_sent_again_after_a_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.calls += 1
            if self.calls < 3:  # throttled twice: every entry failed, not the sender's fault
                return {"Failed": [{"Id": e["Id"], "SenderFault": False, "Code": "Throttled"} for e in Entries]}
            return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    waits: list[int] = []
    flaky = Flaky()
    monkeypatch.setattr(queues, "client", lambda: flaky)
    monkeypatch.setattr(aws, "backoff", lambda attempt, base=0.05, cap=2.0: waits.append(attempt))
    assert queues.send_batch("https://queue", [("a", "{}"), ("b", "{}")]) == queues.Sent(sent=2, failed=[])
    assert waits == [1, 2]


def test_no_module_but_the_model_knows_a_variable_name() -> None:
    names = set(config.variables())
    found = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in CODE
        if path.name != "config.py"
        for name in names
        if re.search(rf"""environ[^\n]*["']{name}["']""", path.read_text(encoding="utf-8"))
    ]
    assert found == [], os.linesep.join(found)
