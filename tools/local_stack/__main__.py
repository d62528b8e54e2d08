"""`python -m tools.local_stack`: run the stack until Ctrl-C (see the package's docstring)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

import tools.local_stack as local_stack
from tools import cfn
from tools.local_stack.stack import LocalStack, banner


def main(argv: list[str] | None = None) -> int:
    description = (local_stack.__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m tools.local_stack", description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--moto-port", type=int, default=5000)
    parser.add_argument("--org", default="demo-org")
    parser.add_argument("--bucket", default="demo")
    parser.add_argument("--template", default=str(cfn.REPO_ROOT / "template.yaml"))
    parser.add_argument(
        "--sqs-retry-delay",
        type=int,
        default=None,
        metavar="SECONDS",
        help="make messages a function failed on visible again after SECONDS instead of the queue's "
        "VisibilityTimeout from the template (local only; AWS always waits the VisibilityTimeout)",
    )
    parser.add_argument(
        "--mailchimp-port",
        type=int,
        default=8090,
        help="port of the local Mailchimp server the audience sync talks to (0: any free one; -1: none, "
        "MAILCHIMP_BASE_URL names one)",
    )
    parser.add_argument(
        "--stop-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop by itself after SECONDS (scripted runs, e.g. the README's test); default: run until Ctrl-C",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3"):  # moto's access log, credential notes
        logging.getLogger(noisy).setLevel(logging.WARNING)

    stack = LocalStack(
        args.template,
        args.host,
        args.port,
        args.moto_port,
        args.org,
        args.bucket,
        sqs_retry_delay=args.sqs_retry_delay,
        mailchimp_port=None if args.mailchimp_port < 0 else args.mailchimp_port,
    )
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        info = stack.start()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(banner(info), flush=True)
    if args.stop_after is not None:
        timer = threading.Timer(args.stop_after, stopping.set)
        timer.daemon = True
        timer.start()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
