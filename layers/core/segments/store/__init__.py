"""The only package that speaks DynamoDB.

`dynamo` is the plumbing (client, marshalling, retries, batches, named transactions); `keys`
alone spells key formats; one module per kind of record: `segments`, `members`, `ledger`,
`lease`, `api_keys`, `people`.
"""

from segments.store.dynamo import reset

__all__ = ["reset"]
