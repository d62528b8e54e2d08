"""Person events in (docs/api.md#person-events): the PersonEventsQueue consumer, reporting per-message failures."""

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from segments.adapters.sqs import sqs_processor
from segments.observability import observed
from segments.usecases import ingest

processor = sqs_processor("person event")


def record_handler(record: SQSRecord) -> None:
    ingest.ingest_message(record.body, message_id=record.message_id)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
