"""tools.scan: pip-audit audits (strictly) when PyPI's vulnerability API answers, and says plainly
that it did not audit, checking the pins only, when it does not."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import scan


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(scan, "_run", lambda argv, drop=None: calls.append(argv) or 0)
    return calls


def test_first_pin_reads_extras_and_skips_comments(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# tools\n-r other.txt\nmoto[server,dynamodb]==5.2.5  # emulator\npytest==9.2.0\n")
    assert scan.first_pin(path) == ("moto", "5.2.5")


def test_every_requirement_file_is_audited_strictly_when_the_api_answers(
    runs: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "vulnerability_api_answers", lambda name, version: (True, "HTTP 200"))
    assert scan.pip_audit() == 0
    assert [argv[-1] for argv in runs] == list(scan.REQUIREMENTS)
    assert all("--strict" in argv and "--dry-run" not in argv for argv in runs)


def test_without_the_api_only_the_pins_are_checked_and_it_says_so(
    runs: list[list[str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(scan, "vulnerability_api_answers", lambda name, version: (False, "HTTP 404"))
    assert scan.pip_audit() == 0
    assert all("--dry-run" in argv and "--strict" not in argv for argv in runs)
    assert "pip-audit: NOT AUDITED" in capsys.readouterr().out


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404 if "/missing/" in self.path else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def index() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_api_probe_reports_what_it_was_answered(index: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "PYPI_JSON", index + "/pypi/{name}/{version}/json")
    assert scan.vulnerability_api_answers("moto", "5.2.5") == (True, f"{index}/pypi/moto/5.2.5/json: HTTP 200")
    assert scan.vulnerability_api_answers("missing", "1") == (False, f"{index}/pypi/missing/1/json: HTTP 404")
