"""Use cases: called the same way from an API route, a queue consumer or the rules engine (an
Actor says which). No HTTP, no boto3."""
