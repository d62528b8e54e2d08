"""Rule segments in real time (docs/api.md#keeping-membership-current): record and segment writes from the table's
stream re-evaluate the rule segments that read a changed field, and keep the rule index and the
rebuilds in step with segment definitions."""

from typing import Any

from segments.adapters import dynamodb_stream
from segments.observability import observed
from segments.usecases import rule_membership


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dynamodb_stream.in_order(event, rule_membership.apply, what="rule membership")
