"""What segments-admin's subcommands share: the org check and the `--json` switch."""

from __future__ import annotations

import argparse
import sys

from segments.models import check_org_and_bucket


def bad_org(org: str) -> bool:
    """True (and the reason on stderr) when `org` is no valid org id: the command exits 2."""
    try:
        check_org_and_bucket(org)
    except ValueError as exc:
        print(f"segments-admin: {exc}", file=sys.stderr)
        return True
    return False


def add_json_switch(parser: argparse.ArgumentParser) -> None:
    """`--json` after the subcommand too (before it, segments-admin's own switch sets it)."""
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
