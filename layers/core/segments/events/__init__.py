"""Events out (docs/api.md#segment-events): entries built from the table's stream records (outbox.py) and put on the
service's EventBridge bus in batches, failed entries retried (bus.py)."""
