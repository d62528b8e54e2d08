"""The only package that speaks DynamoDB.

`dynamo` is the plumbing (client, marshalling, retries, batches, named transactions); `keys`
alone spells key formats; one module per kind of record: `segments`, `members`, `ledger`,
`lease`, `api_keys`, `people`.
"""

from segments.aws import reset  # forget the clients and settings (tests switch endpoints and env)

__all__ = ["reset"]
