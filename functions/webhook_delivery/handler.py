"""Webhook deliveries (docs/api.md#webhooks): one WebhookDeliveryQueue message is one POST attempt;
the messages of a batch run at once, so an endpoint that hangs costs only its own message."""

from typing import Any

from aws_lambda_powertools.utilities.batch import async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from segments.adapters.sqs import concurrent_sqs_processor, in_thread
from segments.observability import observed
from segments.usecases import webhook_delivery

processor = concurrent_sqs_processor("webhook delivery")


async def record_handler(record: SQSRecord) -> None:
    await in_thread(webhook_delivery.deliver, record.body)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
