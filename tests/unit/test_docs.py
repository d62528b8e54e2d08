"""The contract lives in the repository, in docs/api.md, and stays true as the API grows.

- No file cites the contract's first, external document or its numbered sections: a reader of
  the repository could not follow such a reference.
- Every `docs/api.md#<anchor>` cited anywhere (code, docs, tests, tools) names a heading of
  docs/api.md, and so does every `(#anchor)` link inside it.
- Every route of template.yaml, every rule operator, and the person events' bus pattern are
  documented there.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from segments.rules import OPERATORS
from tools import cfn

ROOT = Path(__file__).resolve().parents[2]
API_DOC = ROOT / "docs" / "api.md"
API_DOC_NAME = "docs/api.md"

# Spelled in pieces, so that this file does not match them itself.
EXTERNAL_DOC = re.compile("API" + r"\.md")
SECTION_NUMBER = re.compile("\u00a7" + r"\s*\d")
ANCHOR_CITED = re.compile(r"\bapi\.md#([A-Za-z0-9_-]+)")
LOCAL_LINK = re.compile(r"\]\(#([A-Za-z0-9_-]+)\)")
# Directories a walk of the tree skips when git is not available (they are not the project's).
NOT_OURS = {".git", ".venv", ".venv-sam", ".aws-sam", ".local-stack", "__pycache__", "build", "dist"}


def project_files() -> list[str]:
    """The repository's files (tracked, and new ones not ignored), as paths relative to the root."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = [name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        names = [
            str(path.relative_to(ROOT))
            for path in ROOT.rglob("*")
            if not NOT_OURS & set(path.relative_to(ROOT).parts)
            and not any(part.startswith(".") and part != ".ci" for part in path.relative_to(ROOT).parts)
        ]
    return sorted(name for name in names if (ROOT / name).is_file() and not (ROOT / name).is_symlink())


def text_of(name: str) -> str | None:
    data = (ROOT / name).read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", "replace")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub renders it: lower case, punctuation dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(markdown: str) -> list[str]:
    """The headings of a markdown text (fenced code blocks skipped)."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)):
            found.append(m.group(1))
    return found


def anchors() -> set[str]:
    return {slug(h) for h in headings(API_DOC.read_text())}


def external_references(names: list[str]) -> list[str]:
    """`path:line: text` of every line that cites the external contract or a numbered section."""
    found = []
    for name in names:
        if name == API_DOC_NAME:
            continue  # its table of the first contract's section numbers is the one place for them
        text = text_of(name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if EXTERNAL_DOC.search(line) or SECTION_NUMBER.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def cited_anchors(names: list[str]) -> list[tuple[str, str]]:
    """(where, anchor) of every `api.md#<anchor>` in the files, and every `(#<anchor>)` in docs/api.md."""
    cited = []
    for name in names:
        text = text_of(name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            cited += [(f"{name}:{number}", anchor) for anchor in ANCHOR_CITED.findall(line)]
            if name == API_DOC_NAME:
                cited += [(f"{name}:{number}", anchor) for anchor in LOCAL_LINK.findall(line)]
    return cited


def test_nothing_cites_a_contract_outside_the_repository() -> None:
    found = external_references(project_files())
    assert not found, "cite docs/api.md#<anchor> instead:\n" + "\n".join(found)


def test_every_cited_anchor_is_a_heading_of_the_contract() -> None:
    known = anchors()
    cited = cited_anchors(project_files())
    assert any(where.startswith(API_DOC_NAME) for where, _ in cited)  # the scan reads the contract itself
    assert len([where for where, _ in cited if not where.startswith(API_DOC_NAME)]) >= 10
    missing = [f"{where}: #{anchor}" for where, anchor in cited if anchor not in known]
    assert not missing, "no such heading in docs/api.md:\n" + "\n".join(missing)


def test_the_contract_has_no_two_headings_with_one_anchor() -> None:
    slugs = [slug(h) for h in headings(API_DOC.read_text())]
    assert len(slugs) == len(set(slugs)), sorted({s for s in slugs if slugs.count(s) > 1})


def test_every_route_of_the_template_is_documented() -> None:
    text = API_DOC.read_text()
    routes = [r for r in cfn.api_routes(cfn.load_template(ROOT / "template.yaml")) if r.method != "ANY"]
    assert len(routes) >= 20
    for route in routes:
        # "GET /v2/segments" is documented only if followed by the end of the path, not by "/members"
        pattern = re.escape(f"{route.method} {route.path}") + r"(?![\w/{}-])"
        assert re.search(pattern, text), f"{route.method} {route.path} is not documented in docs/api.md"


def test_every_rule_operator_is_documented() -> None:
    text = API_DOC.read_text()
    operators = text[text.index("### Operators") :]
    for operator in OPERATORS:
        assert f"`{operator}`" in operators, f"operator {operator} is not in docs/api.md, Operators"


def test_the_person_events_bus_pattern_is_documented() -> None:
    template = cfn.load_template(ROOT / "template.yaml")
    pattern = template["Resources"]["PersonEventsRule"]["Properties"]["EventPattern"]
    text = API_DOC.read_text()
    section = text[text.index("### Sending person events") :]
    for value in (*pattern["source"], *pattern["detail-type"]):
        assert f"`{value}`" in section


@pytest.mark.parametrize(
    ("line", "outside"),
    [
        ("Person events (the contract's " + "\u00a7" + "4.1 format)", True),
        ('"""Rules (' + "API" + '.md, rules)."""', True),
        ("see docs/api.md#person-events", False),
        ("a 1\u00a0000-byte value", False),
    ],
)
def test_the_scan_tells_external_references(line: str, outside: bool) -> None:
    assert bool(EXTERNAL_DOC.search(line) or SECTION_NUMBER.search(line)) is outside


def test_slugs_are_githubs() -> None:
    assert slug("Person events") == "person-events"
    assert slug("Section numbers of the first contract") == "section-numbers-of-the-first-contract"
    assert slug("SheepCRM delete and restore") == "sheepcrm-delete-and-restore"
    assert headings("# A\n```\n# not a heading\n```\n## B ##\n") == ["A", "B"]
