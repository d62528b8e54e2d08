"""Adapters between Lambda's event sources and the use cases: `dynamodb_stream` (the table's stream),
`sqs` (queue batches, every failure logged)."""
