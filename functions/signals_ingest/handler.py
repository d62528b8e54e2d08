"""Person events in (docs/api.md#person-events): the PersonEventsQueue consumer, reporting per-message failures."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from segments.observability import logger, observed
from segments.usecases import ingest


class LoggedFailures(BatchProcessor):
    """Every failed message leaves one line naming it (Powertools alone logs them at debug): its
    message id, how often it was received, and the error's kind; never the body nor the message."""

    def failure_handler(self, record: Any, exception: Any) -> Any:
        received = getattr(getattr(record, "attributes", None), "approximate_receive_count", None)
        logger.warning(
            "person event message failed; the queue will redeliver it (the DLQ after maxReceiveCount)",
            extra={
                "message_id": getattr(record, "message_id", None),
                "receive_count": int(received) if str(received).isdigit() else None,
                "error": getattr(exception[0], "__name__", "unknown"),
            },
        )
        return super().failure_handler(record, exception)


# A batch whose every message failed is reported like any other (each message its own failure),
# not raised: the outcome for SQS is the same, without an invocation error per poison batch.
processor = LoggedFailures(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    ingest.ingest_message(record.body, message_id=record.message_id)


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
