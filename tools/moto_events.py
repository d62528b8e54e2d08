"""Make moto's EventBridge deliver AWS's event envelope to its targets.

moto matches PutEvents entries against the rules of a bus and sends them to SQS targets, but
it renders the message body from its own default input template, which drops `account` (AWS's
body is the whole event: version, id, detail-type, source, account, time, region, resources,
detail). A consumer that parses the envelope strictly (Powertools' `EventBridgeModel` requires
`account`) would fail locally and work on AWS. `make_event_envelopes_faithful()` gives moto
the full template; moto still converts `time` to ISO 8601 (`2024-01-15T10:30:45Z`) as AWS
shows it. Targets' `Input`/`InputPath` are not applied by moto (only `InputTransformer`).
"""

from __future__ import annotations

AWS_ENVELOPE_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
    '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
    '"detail": <detail>}'
)


def make_event_envelopes_faithful() -> None:
    """Idempotent; affects moto in this process (mock_aws and the in-process server alike)."""
    from moto.events.utils import EventTemplateParser

    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = AWS_ENVELOPE_TEMPLATE
