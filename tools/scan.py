"""The security scans of CI: checkov over template.yaml, bandit over the Python code, pip-audit over
the pinned requirement files (cfn-lint runs in `sam validate --lint`).

    python -m tools.scan                 # all three, in that order; exit 1 when one fails
    python -m tools.scan bandit          # one or more of checkov, bandit, pip-audit

The scanners live in their own venv, .venv-scan (requirements-scan.txt; `make scan-venv`): checkov
pins many packages of its own. Findings that do not apply are skipped where they are, with the
reason: checkov in the resource's `Metadata` (template.yaml), bandit by a nosec comment naming the
test id, then the reason after a second `#`.

pip-audit asks PyPI's JSON API (https://pypi.org/pypi/<name>/<version>/json) for each pinned
version's known vulnerabilities, and fails on any. Where that API does not answer (a network that
lets pip's index through and nothing else), the audit cannot be made: this says so, naming the
URL and the answer, and still checks that every requirement is pinned (pip-audit's dry run).
"""

from __future__ import annotations

import argparse
import re
import subprocess  # nosec B404  # fixed argv below
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCAN_BIN = ROOT / ".venv-scan" / "bin"
TEMPLATE = "template.yaml"
PYTHON_DIRS = ("layers", "functions", "tools")
REQUIREMENTS = (
    "requirements-dev.txt",
    "layers/core/requirements.txt",
    "requirements-sam.txt",
    "requirements-scan.txt",
)
PYPI_JSON = "https://pypi.org/pypi/{name}/{version}/json"
# bandit warns for every line of a statement that carries a nosec comment where the finding is not
# reported (a dict literal, a call over several lines): noise, not findings.
BANDIT_NOISE = re.compile(r"nosec encountered \(B\d+\), but no failed test")
# pip-audit's advice to hash pins (we pin by version, as pip installs them), and, in a dry run, its
# closing line, which would read as a result when nothing was asked.
AUDIT_NOISE = re.compile(r"encouraged to fully hash|Consider using a tool like `pip-compile`")
DRY_RUN_NOISE = re.compile(AUDIT_NOISE.pattern + "|No known vulnerabilities found")


def _run(argv: list[str], *, drop: re.Pattern[str] | None = None) -> int:
    print("$", " ".join(argv), flush=True)
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)  # nosec B603  # our argv
    for stream, out in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
        lines = [line for line in stream.splitlines() if not (drop and drop.search(line))]
        if lines:
            print("\n".join(lines), file=out, flush=True)
    return proc.returncode


def checkov() -> int:
    # --skip-download: no guidelines or policies fetched from the vendor (no network needed).
    flags = ["--quiet", "--compact", "--skip-download", "--framework", "cloudformation"]
    return _run([str(SCAN_BIN / "checkov"), *flags, "-f", TEMPLATE])


def bandit() -> int:
    # pyproject.toml's [tool.bandit] holds the one skipped test (B101) and why.
    return _run([str(SCAN_BIN / "bandit"), "-q", "-c", "pyproject.toml", "-r", *PYTHON_DIRS], drop=BANDIT_NOISE)


def first_pin(path: Path) -> tuple[str, str]:
    """(name, version) of the first `name==version` line of a requirement file."""
    for line in path.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\s*([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;#]+)", line)
        if found:
            return found.group(1), found.group(2)
    raise ValueError(f"{path}: no pinned requirement")


def vulnerability_api_answers(name: str, version: str) -> tuple[bool, str]:
    """Whether PyPI's per-version JSON (what pip-audit asks) answers here, and what it said."""
    url = PYPI_JSON.format(name=name, version=version)
    try:
        with urllib.request.urlopen(url, timeout=20) as reply:  # nosec B310  # a fixed https URL
            return reply.status == 200, f"{url}: HTTP {reply.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError) as exc:
        return False, f"{url}: {exc}"


def pip_audit() -> int:
    audit = [str(SCAN_BIN / "pip-audit"), "--progress-spinner", "off", "--no-deps", "--disable-pip"]
    reachable, answer = vulnerability_api_answers(*first_pin(ROOT / REQUIREMENTS[0]))
    if not reachable:
        print(
            f"pip-audit: NOT AUDITED - PyPI's vulnerability API does not answer from here ({answer}); "
            "checking that every requirement is pinned instead (dry run)",
            flush=True,
        )
        return max(_run([*audit, "--dry-run", "-r", req], drop=DRY_RUN_NOISE) for req in REQUIREMENTS)
    # --strict: a requirement that cannot be audited fails the run instead of being skipped.
    return max(_run([*audit, "--strict", "-r", req], drop=AUDIT_NOISE) for req in REQUIREMENTS)


SCANS = {"checkov": checkov, "bandit": bandit, "pip-audit": pip_audit}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scans", nargs="*", help=f"which scans, of {', '.join(SCANS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scans if name not in SCANS]
    if unknown:
        parser.error(f"unknown scan(s): {', '.join(unknown)}")
    failed = [name for name in args.scans or SCANS if SCANS[name]() != 0]
    if failed:
        print(f"scan: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
