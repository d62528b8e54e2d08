"""Exports: one ExportQueue message = one chunk of a job, reported per message."""

from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from segments.adapters.sqs import sqs_processor
from segments.observability import observed
from segments.usecases import exports

processor = sqs_processor("export chunk")


def record_handler(record: SQSRecord) -> None:
    exports.process_message(record.body, receive_count=int(record.attributes.approximate_receive_count or 1))


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
