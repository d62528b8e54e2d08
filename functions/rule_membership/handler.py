"""Rule segments in real time (docs/api.md#keeping-membership-current): record and segment writes from the table's
stream re-evaluate the rule segments that read a changed field, and keep the rule index and the
rebuilds in step with segment definitions."""

from typing import Any

from segments.observability import observed
from segments.usecases import rule_membership


@observed
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return rule_membership.process_stream(event.get("Records") or [])
