"""Webhook fan-out (docs/api.md#webhooks): segment events from WebhookEventsQueue (a rule on the bus),
one delivery message per matching endpoint onto WebhookDeliveryQueue; per-message failures reported."""

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from segments.adapters.sqs import sqs_processor
from segments.observability import observed
from segments.usecases import webhook_delivery

processor = sqs_processor("webhook event")


def record_handler(record: SQSRecord) -> None:
    webhook_delivery.fan_out(record.body)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
