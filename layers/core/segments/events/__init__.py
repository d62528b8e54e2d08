"""The event wire formats. In: person events (person_events.py), validated before anything is written
(docs/api.md#person-events). Out (docs/api.md#segment-events): entries built from the table's stream
records (outbox.py) and put on the service's EventBridge bus in batches, failed entries retried (bus.py)."""
