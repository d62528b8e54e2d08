"""The whole stack in one process: moto's server, the template's resources, the runtime, the
gateway behind HTTP, and the event source pollers."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import urllib.request
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from tools import cfn
from tools.local_stack.gateway import DOCS_PATH, Gateway
from tools.local_stack.pollers import Poller, start_pollers
from tools.local_stack.runtime import Runtime
from tools.local_stack.server import serve
from tools.moto_atomic import make_moto_atomic
from tools.moto_events import make_event_envelopes_faithful

log = logging.getLogger("local_stack")

# Settings that differ from template.yaml here only: webhooks may go to http://127.0.0.1 (a receiver
# on this machine); on AWS they must be https to a public address.
LOCAL_ONLY = {"WEBHOOK_ALLOW_PRIVATE_URLS": "true"}


@dataclass(frozen=True)
class StackInfo:
    api_url: str
    moto_url: str
    port: int
    moto_port: int
    org: str
    bucket: str
    demo_key: str | None
    demo_key_id: str | None
    mailchimp_url: str | None = None


class LocalStack:
    """moto + the API emulator + event source pollers (SQS, DynamoDB streams) for one template;
    `start()` then `stop()`."""

    def __init__(
        self,
        template_path: str | Path = cfn.REPO_ROOT / "template.yaml",
        host: str = "127.0.0.1",
        port: int = 3000,
        moto_port: int = 5000,
        org: str = "demo-org",
        bucket: str = "demo",
        *,
        create_demo_key: bool = True,
        sqs_retry_delay: int | None = None,
        mailchimp_port: int | None = 0,
        mailchimp_sync_delay: int = 2,
    ) -> None:
        self.template_path = Path(template_path).resolve()
        self.root = self.template_path.parent
        self.template = cfn.load_template(self.template_path)
        self.host, self.port, self.moto_port = host, port, moto_port
        self.org, self.bucket = org, bucket
        self.create_demo_key = create_demo_key
        self.sqs_retry_delay = sqs_retry_delay  # None: failed messages return after the queue's VisibilityTimeout
        self.resources: dict[str, str] = {}
        self.info: StackInfo | None = None
        self._stopping = threading.Event()
        self.runtime: Runtime | None = None
        self._pollers: list[Poller] = []
        self._moto: Any = None
        self._httpd: ThreadingHTTPServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self._added_paths: list[str] = []
        # A local Mailchimp (tools/mailchimp_server.py) for the audience sync; None: none (then
        # MAILCHIMP_BASE_URL, if set, names one); syncs run this many seconds after a change
        # (MailchimpSyncDelaySeconds on AWS, 30 by default).
        self.mailchimp_port = mailchimp_port
        self.mailchimp_sync_delay = mailchimp_sync_delay
        self._mailchimp: Any = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> StackInfo:
        """Start moto, create the resources, import the functions, serve HTTP, start the pollers."""
        from moto.server import ThreadedMotoServer

        for what, port in (("moto", self.moto_port), ("API", self.port), ("Mailchimp", self.mailchimp_port or 0)):
            _ensure_free(self.host, port, what)  # moto's thread would hang on a busy port
        make_moto_atomic()  # the same DynamoDB write semantics as the tests (docs/decisions.md)
        make_event_envelopes_faithful()  # EventBridge -> SQS bodies carry AWS's whole envelope
        self._moto = ThreadedMotoServer(ip_address=self.host, port=self.moto_port, verbose=False)
        self._moto.start()
        try:
            return self._start_services()
        except BaseException:
            self.stop()
            raise

    def _start_services(self) -> StackInfo:
        self.moto_port = self._moto.get_host_and_port()[1]
        moto_url = f"http://{self.host}:{self.moto_port}"

        self._set_env(
            {
                "AWS_ENDPOINT_URL": moto_url,
                "AWS_DEFAULT_REGION": cfn.REGION,
                "AWS_REGION": cfn.REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",  # nosec B105  # moto's dummy credentials
                "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                "AWS_PROFILE": None,
                "AWS_SESSION_TOKEN": None,  # nosec B105  # no token
                "AWS_SECURITY_TOKEN": None,  # nosec B105  # no token
            }
        )
        self._create_resources(moto_url)
        for logical_id in cfn.resources_of(self.template, cfn.SERVERLESS_FUNCTION):
            self._set_env(cfn.function_env(self.template, logical_id, self.resources))
        mailchimp_url = self._start_mailchimp()
        self._set_env(LOCAL_ONLY)
        for layer in cfn.layer_dirs(self.template):
            layer_dir = (self.root / layer).resolve()
            for candidate in (layer_dir / "python", layer_dir):  # /opt/python, as Lambda mounts it
                if candidate.is_dir() and str(candidate) not in sys.path:
                    sys.path.insert(0, str(candidate))
                    self._added_paths.append(str(candidate))
                    break
        _forget_cached_clients()

        self.runtime = Runtime(self.template, self.root)
        self._preload(self.runtime)
        demo = self._demo_key()

        self._httpd, _ = serve(Gateway(self.template, self.root, self.runtime), self.host, self.port)
        self.port = self._httpd.server_address[1]

        self._stopping.clear()
        self._pollers = start_pollers(
            self.template, self.resources, self.runtime, moto_url, self._stopping, sqs_retry_delay=self.sqs_retry_delay
        )

        self.info = StackInfo(
            api_url=f"http://{self.host}:{self.port}",
            moto_url=moto_url,
            port=self.port,
            moto_port=self.moto_port,
            org=self.org,
            bucket=self.bucket,
            demo_key=demo.api_key if demo else None,
            demo_key_id=demo.key_id if demo else None,
            mailchimp_url=mailchimp_url,
        )
        return self.info

    def _start_mailchimp(self) -> str | None:
        """The local Mailchimp server (any key ending -<dc>; audiences made on first use)."""
        self._set_env({"MAILCHIMP_SYNC_DELAY_SECONDS": str(self.mailchimp_sync_delay)})
        if self.mailchimp_port is None:
            return os.environ.get("MAILCHIMP_BASE_URL")
        from tools.mailchimp_server import MailchimpServer

        self._mailchimp = MailchimpServer(self.mailchimp_port).start()
        self._set_env({"MAILCHIMP_BASE_URL": self._mailchimp.base_url})
        return str(self._mailchimp.base_url)

    def stop(self) -> None:
        self._stopping.set()
        for poller in self._pollers:
            poller.join(timeout=10)
        self._pollers.clear()
        if self._mailchimp:
            self._mailchimp.stop()
            self._mailchimp = None
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._moto:
            try:  # moto's state is per process: leave none behind for whoever runs next
                reset = urllib.request.Request(f"http://{self.host}:{self.moto_port}/moto-api/reset", method="POST")
                urllib.request.urlopen(reset, timeout=5).close()  # nosec B310  # the local moto server
            except OSError:
                log.warning("could not reset moto")
            self._moto.stop()
            self._moto = None
        for path in self._added_paths:
            if path in sys.path:
                sys.path.remove(path)
        self._added_paths.clear()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        _forget_cached_clients()

    # -------------------------------------------------------- helpers
    def _set_env(self, values: dict[str, str | None]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _create_resources(self, moto_url: str) -> None:
        def client(service: str) -> Any:
            return boto3.client(
                service,
                endpoint_url=moto_url,
                region_name=cfn.REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # nosec B106  # moto's dummy credentials
            )

        self.resources.update(cfn.create_tables(client("dynamodb"), self.template))
        self.resources.update(cfn.create_queues(client("sqs"), self.template))
        self.resources.update(cfn.create_buses(client("events"), self.template, self.resources))
        self.resources.update(cfn.create_usage_plans(client("apigateway"), self.template))
        self.resources.update(cfn.create_keys(client("kms"), self.template))
        self.resources.update(cfn.create_buckets(client("s3"), self.template))

    def _preload(self, runtime: Runtime) -> None:
        """Import every handler now, so that a broken one shows at startup (its routes answer 5xx)."""
        for logical_id in cfn.resources_of(self.template, cfn.SERVERLESS_FUNCTION):
            try:
                runtime.warm(logical_id)
            except Exception as exc:
                log.warning("%s is not importable yet: %s: %s", logical_id, type(exc).__name__, exc)

    def _demo_key(self) -> Any:
        if not self.create_demo_key:
            return None
        try:
            from segments import auth
        except ImportError as exc:
            log.warning("no demo key: segments.auth is not importable (%s)", exc)
            return None
        created = auth.create_api_key(self.org, self.bucket, label="local demo")
        from segments.external import plans

        plans.set_plan(self.org, "pro")  # the demo org's key gets its usage plan key (docs/api.md: 429)
        return created


def _ensure_free(host: str, port: int, what: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"{what} port {host}:{port} is not available: {exc.strerror}") from exc


def _forget_cached_clients() -> None:
    """The core caches its boto3 client and settings; drop them when the environment changes."""
    for name in ("segments.store", "segments.idempotency"):
        reset = getattr(sys.modules.get(name), "reset", None)
        if callable(reset):
            reset()


def banner(info: StackInfo) -> str:
    key = info.demo_key or "<no key: segments.auth is not available>"
    base = info.api_url
    return "\n".join(
        [
            "",
            "Segments local stack is up (Ctrl-C stops it; data lives until then)",
            f"  API                 {base}",
            f"  moto (AWS services) {info.moto_url}",
            f"  Swagger UI          {base}{DOCS_PATH}",
            f"  Mailchimp (local)   {info.mailchimp_url or '<none: MAILCHIMP_BASE_URL is not set>'}",
            f"  demo key            {key}   (org {info.org}, bucket {info.bucket})",
            "",
            "Minerva surface:",
            f"  curl -s -X POST {base}/v2/segments/create -H 'x-api-key: {key}' "
            "-H 'content-type: application/json' -d '{\"name\": \"My first segment\"}'",
            "",
            "SheepCRM surface:",
            f"  curl -s -X POST {base}/segments/v2/{info.bucket}/create -H 'Authorization: Bearer {key}' "
            "-H 'content-type: application/json' "
            '-d \'{"name": "My first SheepCRM segment", "resource_type": "person"}\'',
            "",
            "Events (bus SegmentsBus): publish person events, and watch what goes out:",
            f"  AWS_ENDPOINT_URL={info.moto_url} AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x "
            "AWS_DEFAULT_REGION=us-east-1 EVENT_BUS_NAME=SegmentsBus .venv/bin/segments-admin publish-event FILE.jsonl",
            f"  AWS_ENDPOINT_URL={info.moto_url} .venv/bin/python -m tools.subscribe --org {info.org}",
            "",
        ]
    )
