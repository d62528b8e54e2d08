"""Webhooks' pure parts: Standard Webhooks signing (checked by the `standardwebhooks` library), URL
checks on literal addresses, the retry schedule setting, the delivery queue's event source."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from segments.config import Settings
from segments.events import webhooks as wire
from segments.external import outbound, webhook_secrets


def test_signatures_verify_with_the_library_and_name_every_key() -> None:
    old, new = webhook_secrets.new_secret(), webhook_secrets.new_secret()
    assert old.startswith("whsec_") and len(base64.b64decode(old.removeprefix("whsec_"))) == 32
    payload = wire.body("segment.signal.detected", "2024-01-01T00:00:00.000000Z", {"b": 1, "a": [0.5]})
    assert (
        payload
        == b'{"data":{"a":[0.5],"b":1},"timestamp":"2024-01-01T00:00:00.000000Z","type":"segment.signal.detected"}'
    )
    msg_id = wire.message_id("wh_1", "sig_1")
    assert msg_id == wire.message_id("wh_1", "sig_1") != wire.message_id("wh_2", "sig_1")
    import time

    headers = wire.headers(msg_id, int(time.time()), payload, [webhook_secrets.key_bytes(s) for s in (new, old)])
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        assert Webhook(secret).verify(payload, headers)["data"] == {"a": [0.5], "b": 1}


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/",
        "https://10.0.0.1/",
        "https://172.16.0.1/",
        "https://100.64.0.1/",  # shared address space
        "https://127.0.0.1/",
        "https://0.0.0.0/",
        "https://[::1]/",
        "https://[fe80::1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://224.0.0.1/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://u:p@93.184.216.34/",
        "https:///nohost",
    ],
)
def test_refused_on_aws_settings(url: str) -> None:
    with pytest.raises(outbound.Refused):
        outbound.check_url(url, allow_private=False)


def test_allowed() -> None:
    target = outbound.check_url("https://93.184.216.34:8443/hook?x=1", allow_private=False)
    assert target is not None and (target.address, target.port, target.path) == ("93.184.216.34", 8443, "/hook?x=1")
    assert outbound.check_url("http://127.0.0.1:9/hook", allow_private=True) is not None
    with pytest.raises(outbound.Refused):
        outbound.check_url("file:///etc/passwd", allow_private=True)


def test_the_retry_schedule_setting() -> None:
    assert Settings.model_validate({"WEBHOOK_RETRY_SCHEDULE": "5, 300,1800"}).webhook_retry_schedule == (5, 300, 1800)
    assert Settings.model_validate({"WEBHOOK_RETRY_SCHEDULE": ""}).webhook_retry_schedule == ()
    assert len(Settings().webhook_retry_schedule) == 7 and sum(Settings().webhook_retry_schedule) > 86_000
    for bad in ("5,x", "-5"):
        with pytest.raises(ValidationError):
            Settings.model_validate({"WEBHOOK_RETRY_SCHEDULE": bad})
    assert Settings.model_validate({"WEBHOOK_ALLOW_PRIVATE_URLS": "true"}).webhook_allow_private_urls is True
    assert Settings().webhook_allow_private_urls is False
