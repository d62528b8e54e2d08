"""The README's walk-through, run as a new user runs it: its ```bash blocks, in order, in one bash
shell, against the local stack (`make local`'s command, on free ports), from the repository root.

What a user types in is filled in only where the README says to: the demo key `make local`
prints (`KEY=sk_seg_...`) and the three addresses (the stack runs on free ports, not 3000, 5000
and 8090: the API, moto, the local Mailchimp).
Every other value (segment ids, cursors, key ids) the README's own commands capture. A block
marked `<!-- readme-test: skip (reason) -->` is not run, and is reported as a skipped test with its
reason; one marked `background` is a second terminal, run beside the others. Each block has a
bounded time; the waits are the README's own (`wait_for_size`, `until ...`). The assertions are
what the README says happens.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK_RE = re.compile(r"(?:<!-- readme-test: (?P<mark>[^>]*?) -->\n)?```bash\n(?P<code>.*?)^```", re.S | re.M)
MARK_RE = re.compile(r"^(?P<kind>skip|background) \((?P<reason>.+)\)$")
BLOCK_SECONDS = 240  # the longest block imports 600 people and waits for the segment to fill (~30 s idle)
DONE = "__readme_block_done__"


@pytest.fixture(autouse=True)
def aws_env() -> Iterator[None]:
    """Replaces the suite's per-test AWS environment: the shell gets none (see `user_env`)."""
    yield


@dataclass(frozen=True)
class Block:
    number: int  # 1-based, in README order
    kind: str  # "run", "skip" or "background"
    reason: str
    code: str

    @property
    def title(self) -> str:
        first = next((line for line in self.code.splitlines() if line.strip()), "")
        return f"block {self.number}: {first.strip()[:70]}"


def blocks() -> list[Block]:
    found = []
    for number, match in enumerate(BLOCK_RE.finditer(README.read_text(encoding="utf-8")), start=1):
        kind, reason = "run", ""
        if match["mark"] is not None:
            mark = MARK_RE.match(match["mark"].strip())
            assert mark, f"README block {number}: unknown marker {match['mark']!r} (skip (why) or background (why))"
            kind, reason = mark["kind"], mark["reason"]
        found.append(Block(number, kind, reason, match["code"]))
    return found


def block_with(text: str) -> Block:
    [found] = [b for b in blocks() if text in b.code]
    return found


# ------------------------------------------------------------------ what the README is made of


def test_the_readme_has_runnable_blocks_and_marks_the_others() -> None:
    every = blocks()
    assert sum(b.kind == "run" for b in every) >= 5
    assert [b.kind for b in every].count("background") == 1
    for b in every:
        if b.kind == "run":  # what fails for a new user: names bash reserves, commands not on PATH
            assert not re.search(r"^\s*UID=", b.code, re.M), b.title
            assert not re.search(r"(^|[|;&]\s*)(segments-admin|sam) ", b.code, re.M), b.title
            assert not re.search(r"^\s*watch ", b.code, re.M), f"{b.title}: never ends"


@pytest.mark.parametrize("block", [b for b in blocks() if b.kind == "skip"], ids=lambda b: b.title)
def test_blocks_not_run_here(block: Block) -> None:
    pytest.skip(f"README {block.title} is not run: {block.reason}")


def test_functions_declare_no_dependencies_of_their_own() -> None:
    """`make build` (sam build) warns once per function whose directory has no requirements.txt;
    a function's imports ship in the layer, so each file declares nothing."""
    from tools import cfn

    template = cfn.load_template(ROOT / "template.yaml")
    for logical_id in cfn.resources_of(template, cfn.SERVERLESS_FUNCTION):
        code_uri = template["Resources"][logical_id]["Properties"].get("CodeUri")
        requirements = ROOT / str(code_uri) / "requirements.txt"
        assert requirements.is_file(), f"{logical_id}: {requirements} is missing"
        lines = [line.split("#")[0].strip() for line in requirements.read_text().splitlines()]
        assert not any(lines), f"{logical_id}: dependencies belong in layers/core/requirements.txt"


# ------------------------------------------------------------------ running it


class Lines:
    """The lines a process writes, read on a thread (reads never block the test)."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def until(self, done: re.Pattern[str], seconds: float, what: str) -> list[str]:
        """Lines up to the first matching `done` (included), within `seconds`."""
        deadline, got = time.monotonic() + seconds, []
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{what}: nothing after {seconds:.0f} s; last output:\n{''.join(got)[-3000:]}")
            if line is None:
                pytest.fail(f"{what}: the process ended; its output:\n{''.join(got)[-3000:]}")
            got.append(line)
            self.seen.append(line)
            if done.search(line):
                return got


def user_env(tmp_path: Path) -> dict[str, str]:
    """A new user's shell: none of the AWS or function variables the suite sets; temp files here."""
    drop = ("AWS_", "POWERTOOLS_")
    names = {"TABLE_NAME", "IDEMPOTENCY_TABLE_NAME", "EVENT_BUS_NAME", "PERSON_EVENTS_QUEUE_URL", "LOG_LEVEL"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in names}
    env.update(TMPDIR=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    return env


@dataclass
class Stack:
    api: str
    moto: str
    key: str
    log: Path
    mailchimp: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """`make local`'s command (.venv/bin/python -m tools.local_stack), on free ports; it stops by itself."""
    log = tmp_path / "stack.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.local_stack", "--port", "0", "--moto-port", "0", "--mailchimp-port", "0",
             "--stop-after", "900"],
            cwd=ROOT, env=user_env(tmp_path), stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            banner = "".join(Lines(process.stdout).until(re.compile(r"^\s+demo key"), 90, "the local stack"))
            api = re.search(r"^\s+API\s+(http://\S+)", banner, re.M)
            moto = re.search(r"^\s+moto \(AWS services\)\s+(http://\S+)", banner, re.M)
            key = re.search(r"^\s+demo key\s+(sk_seg_\S+)", banner, re.M)
            mailchimp = re.search(r"^\s+Mailchimp \(local\)\s+(http://\S+)/3\.0", banner, re.M)
            assert api and moto and key and mailchimp, banner
            yield Stack(api[1], moto[1], key[1], log, mailchimp[1])
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def filled(code: str, stack: Stack, used: set[str]) -> str:
    """The block as this user would have it: their key, their stack's addresses."""
    for placeholder, value in (
        ("KEY=sk_seg_...", f"KEY={stack.key}"),
        ("http://127.0.0.1:3000", stack.api),
        ("http://127.0.0.1:5000", stack.moto),
        ("http://127.0.0.1:8090", stack.mailchimp),
    ):
        if placeholder in code:
            used.add(placeholder)
            code = code.replace(placeholder, value)
    return code


def json_documents(text: str) -> list[Any]:
    """Every JSON object the commands printed (curl prints its bodies with no newline between)."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) >= 0:
        try:
            value, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        found.append(value)
        i = end
    return found


def results(doc: Any) -> dict[str, Any]:
    """A Minerva body's `results` when it is an object (some are lists)."""
    found = doc.get("results") if isinstance(doc, dict) else None
    return found if isinstance(found, dict) else {}


def untracked() -> set[str]:
    """Untracked files at the clone's root, where the walk-through's commands run (tests running
    beside this one write only under ignored or temporary directories)."""
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=normal"], cwd=ROOT, capture_output=True, text=True
    )
    return (
        {line for line in done.stdout.splitlines() if "/" not in line[3:].rstrip("/")}
        if done.returncode == 0
        else set()
    )


@pytest.mark.slow
def test_the_walkthrough_does_what_the_readme_says(stack: Stack, tmp_path: Path) -> None:
    before = untracked()
    env = user_env(tmp_path)
    used: set[str] = set()
    outputs: dict[int, str] = {}
    shell = subprocess.Popen(
        ["bash", "--noprofile", "--norc"],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    background: subprocess.Popen[str] | None = None
    try:
        assert shell.stdin is not None and shell.stdout is not None
        out = Lines(shell.stdout)
        for block in blocks():
            if block.kind == "skip":
                continue
            script = tmp_path / f"block{block.number}.sh"
            script.write_text(filled(block.code, stack, used))
            if block.kind == "background":  # a second terminal: the user's shell, without the exports
                background = subprocess.Popen(
                    ["bash", "--noprofile", "--norc", str(script)],
                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                    start_new_session=True,
                )  # fmt: skip
                assert background.stdout is not None
                second = Lines(background.stdout)
                second.until(re.compile(r"^# subscribed: rule"), 60, block.title)
                continue
            shell.stdin.write(f"source {script} < /dev/null\nprintf '\\n%s %s\\n' {DONE} $?\n")
            shell.stdin.flush()
            lines = out.until(re.compile(f"^{DONE} "), BLOCK_SECONDS, f"README {block.title}")
            outputs[block.number] = "".join(lines[:-1])
            (tmp_path / f"block{block.number}.out").write_text(outputs[block.number])  # to read when it fails
        assert used == {"KEY=sk_seg_...", "http://127.0.0.1:3000", "http://127.0.0.1:5000", "http://127.0.0.1:8090"}

        for number, text in outputs.items():
            for symptom in ("Traceback", "command not found", "No such file", "readonly variable", "Internal"):
                assert symptom not in text, f"README block {number}: {symptom!r} in\n{text[-3000:]}"

        check_using_the_api(outputs[block_with("Q1 2024 Enterprise Prospects").number])
        check_rule_segments(outputs[block_with("York 50+").number])
        check_api_keys(outputs[block_with("revoke-api-key").number])
        check_rate_limits(outputs[block_with("set-plan --org acme").number])
        check_events(outputs[block_with("evt-7f3a0001").number])
        check_exports(outputs[block_with("/v2/segments/exports").number], tmp_path)
        check_mailchimp(outputs[block_with("set-mailchimp --org demo-org").number])
        check_webhooks(outputs[block_with("receiver.py").number])
        assert background is not None
        check_subscriber(second)
    finally:
        if background is not None:
            os.killpg(background.pid, signal.SIGINT)
            background.wait(timeout=30)
        shell.kill()
        shell.wait()
    assert untracked() == before, "the walk-through wrote files into the clone"


def check_using_the_api(text: str) -> None:
    docs = json_documents(text)
    segment_id = re.search(r"^([0-9a-f-]{36})$", text, re.M)
    assert segment_id, text[:2000]
    taken = [d for d in docs if d.get("status_code") == 404 and "already exists" in d.get("error", "")]
    assert [d["error"] for d in taken] == ["Segment name Q1 2024 Enterprise Prospects already exists"]
    adds = [d["results"] for d in docs if "n_added" in results(d)]
    assert [(a["n_added"], a["invalid_minerva_pids"]) for a in adds] == [(2, ["p-bad!"]), (6_000, [])]
    pages = [d["results"] for d in docs if "items" in results(d) and "total_count" in d["results"]]
    assert [(p["total_count"], len(p["items"]), p["list_continues"]) for p in pages] == [
        (6_001, 5_000, True),  # page 1 by number
        (6_001, 1_001, False),  # page 2 by the cursor page 1 carries
    ]
    assert pages[0]["items"][-1]["minerva_pid"] < pages[1]["items"][0]["minerva_pid"]
    renamed = [d for d in docs if d.get("segment_id") == segment_id[1] and d.get("name") == "Renamed"]
    assert renamed, "the rename"
    held = [d["results"]["items"] for d in docs if results(d).get("minerva_pid") == "p-d4e5f6"]
    assert [[i["segment_id"] for i in items] for items in held] == [[segment_id[1]]]
    assert any(d.get("record_state") == "deleted" for d in docs)
    assert any(d.get("error") == "Segment not found" and d.get("status_code") == 404 for d in docs)
    sheep = [d for d in docs if d.get("name") == "Donors 2024" and "uid" in d]
    assert sheep and sheep[-1]["description"] == "Gave in 2024" and sheep[-1]["active"] is True  # restored


def check_rule_segments(text: str) -> None:
    sizes = re.findall(r"^(\d+) (ready|building)$", text, re.M)
    settled = [int(n) for n, state in sizes if state == "ready"]
    assert settled and settled[-1] == 39 and 98 in settled, sizes
    assert "read 600 records: 600 sent, 0 invalid, 0 not taken by the queue" in text
    assert "put 2 event(s) on bus SegmentsBus\nno profile event is older than the stored profile" in text
    assert (
        "1 profile event(s) older than the stored profile: the consumer will ignore them\n"
        "  line 1: p-demo00006 observed 2024-06-01T00:00:00.000000Z, stored profile of 2025-01-01T00:00:00.000000Z"
    ) in text
    docs = json_documents(text)
    [history] = [d["results"]["items"] for d in docs if "items" in results(d)]
    changes = {(i["minerva_pid"], i["change"], i["reason"]) for i in history}
    assert {("p-demo00003", "added", "rule"), ("p-demo00051", "removed", "rule")} <= changes
    assert not any(i["minerva_pid"] == "p-demo00006" for i in history)  # the older profile changed nothing
    assert sum(i["change"] == "added" for i in history) == 99 and len(history) == 100
    assert [d["count"] for d in docs if "count" in d and "segment" in d] == [98, 98]  # /count, and /all's count
    members = [r for d in docs if "segment" in d for r in d.get("results") or []]
    assert len(members) == 50


def check_api_keys(text: str) -> None:
    header, *rows = [line for line in text.splitlines() if re.match(r"KEY_ID |key_\w+ +(active|revoked) ", line)]
    assert header.split() == ["KEY_ID", "STATUS", "BUCKET", "CREATED_AT", "LABEL"]
    assert [row.split()[1:3] for row in rows] == [["active", "acme"], ["active", "acme"]]
    assert "CRM sync" in rows[0]
    assert re.search(r"^revoked key_\S+ \(org acme\)", text, re.M)


def check_rate_limits(text: str) -> None:
    counts = {status: int(n) for n, status in re.findall(r"^\s*(\d+) (\d{3})$", text, re.M)}
    assert set(counts) == {"200", "429"} and sum(counts.values()) == 40, text  # one 429 at least, no other status
    assert re.search(r"^HTTP/\S+ 200", text, re.M), text  # after the pause
    assert "org acme is on plan pro" in text


def check_events(text: str) -> None:
    assert "put 3 event(s) on bus SegmentsBus" in text
    docs = json_documents(text)
    read = [d["results"] for d in docs if isinstance(d.get("results"), list) and d["results"]]
    assert [[(r["minerva_pid"], r.get("obituary_id") or r.get("signal_id")) for r in results] for results in read] == [
        [("p-a1b2c3d4e5f6", "obit-xyz789")],  # deaths
        [("p-a1b2c3d4e5f6", "evt-7f3a0002")],  # job changes
        [("p-a1b2c3d4e5f6", "evt-7f3a0003")],  # relocations
    ]
    assert read[1][0]["new_employer"] == "Globex" and read[2][0]["new_location"]["city"] == "Leeds"
    assert "line 1: invalid person event: " in text and "exit status 2" in text


def check_exports(text: str, tmp_path: Path) -> None:
    """The CSV downloaded by its presigned URL holds the York segment's 39 members; the CLI's URL
    downloads the JSON lines; the XLSX is a workbook."""
    lines = text.splitlines()
    assert lines[0] == "minerva_pid,first_added_at,last_added_at,city,score", text[:2000]
    assert lines[1].startswith("p-demo") and ",York," in lines[1]
    assert "40" in [line.strip() for line in lines]
    docs = json_documents(text)
    listed = [d["results"]["items"] for d in docs if "items" in results(d)]
    assert listed and listed[0][0]["status"] == "succeeded" and listed[0][0]["rows"] == 39
    assert any(d.get("status") == "queued" and d.get("format") == "jsonl" for d in docs)  # by fieldset
    rows = [d for d in docs if "minerva_pid" in d and d.get("city") == "York"]
    assert len(rows) == 2 and set(rows[0]) == {"minerva_pid", "first_added_at", "last_added_at", "city"}
    workbooks = list(tmp_path.rglob("york.xlsx"))
    assert workbooks and workbooks[0].read_bytes()[:2] == b"PK"


def check_subscriber(second: Lines) -> None:
    """Terminal 2 sees the death as `Segment Signal Detected` (within a bounded wait)."""
    pattern = re.compile(r"Segment Signal Detected.*p-a1b2c3d4e5f6")
    if not any(pattern.search(line) for line in second.seen):
        second.until(pattern, 60, "the subscriber in the second terminal")


def check_mailchimp(text: str) -> None:
    """The local Mailchimp's static segment: both Bath members, then Ada alone; the full sync's receipt
    and its notification, done."""
    lines = text.splitlines()
    assert "ada@example.org alan@example.org" in lines and lines.count("ada@example.org") >= 1, text[-3000:]
    assert lines.index("ada@example.org alan@example.org") < len(lines) - 1 - lines[::-1].index("ada@example.org")
    assert "grace@example.org" not in text
    assert "stored the Mailchimp credentials of org demo-org in secret segments/mailchimp/demo-org" in text
    assert "local-us6" not in text  # the key is never printed
    docs = json_documents(text)
    [receipt] = [d for d in docs if "journal_uri" in d]
    assert receipt["lambda_prefix"] == "sync_mailchimp" and receipt["segment_name"] == "Bath newsletter"
    notes = [d for d in docs if d.get("action") == "sync_mailchimp"]
    assert (
        notes
        and notes[-1]["status"] == "done"
        and notes[-1]["message"].startswith("1 members read, 1 with an email: 0 added")
    ), notes


def check_webhooks(text: str) -> None:
    """The local receiver got the death, and the standardwebhooks library verified its signature."""
    assert re.search(r"^verified msg_[0-9a-f]{32} segment.signal.detected death p-b0b0b0b0b0b0$", text, re.M), text
    docs = json_documents(text)
    [created] = [d for d in docs if d.get("description") == "local receiver" and "webhook_id" in d]
    assert "secret" not in created  # the GET: the secret was shown once, by the POST
    attempts = [r for d in docs if isinstance(d.get("results"), list) for r in d["results"] if "outcome" in r]
    assert attempts and attempts[-1]["outcome"] == "delivered"
    assert "['api_request_id', 'previous_secret_expires_at', 'secret', 'webhook_id']" in text
    assert any(d.get("deleted") is True for d in docs)
