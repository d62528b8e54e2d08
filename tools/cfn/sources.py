"""The template's event sources: SQS queues and DynamoDB streams feeding functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tools.cfn.functions import logical_id_of
from tools.cfn.template import (
    SERVERLESS_FUNCTION,
    Resolver,
    _truthy,
    resources_of,
)


@dataclass(frozen=True)
class SqsSource:
    function: str  # logical id
    queue: str  # logical id of the AWS::SQS::Queue
    batch_size: int
    report_batch_item_failures: bool
    enabled: bool
    event: str = ""
    batching_window: float = 0.0  # MaximumBatchingWindowInSeconds
    filters: tuple[dict[str, Any], ...] = ()  # FilterCriteria patterns, parsed (any one matches)
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency: batches in flight at once


@dataclass(frozen=True)
class StreamSource:
    """A `Type: DynamoDB` event: Lambda's event source mapping on a table's stream."""

    function: str  # logical id
    table: str  # logical id of the AWS::DynamoDB::Table whose stream feeds the function
    event: str
    starting_position: str  # TRIM_HORIZON or LATEST
    batch_size: int = 100
    batching_window: float = 0.0
    bisect_on_error: bool = False
    max_retry_attempts: int = -1  # -1: until the record expires (Lambda's default)
    max_record_age: int = -1  # seconds; -1: no limit
    report_batch_item_failures: bool = False
    filters: tuple[dict[str, Any], ...] = ()
    on_failure: str | None = None  # logical id of the on-failure destination (an SQS queue or SNS topic)
    enabled: bool = True


def _function_events(template: dict[str, Any], event_type: str):
    """(function logical id, event name, event properties) of every event of one type."""
    for function_id, props in resources_of(template, SERVERLESS_FUNCTION).items():
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") == event_type:
                yield function_id, event_name, event.get("Properties") or {}


def _filters(resolver: Resolver, event_props: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """FilterCriteria.Filters[].Pattern (JSON strings, or maps in a template) as parsed patterns."""
    filters = (resolver.resolve(event_props.get("FilterCriteria")) or {}).get("Filters") or []
    patterns = []
    for entry in filters:
        pattern = entry.get("Pattern")
        patterns.append(json.loads(pattern) if isinstance(pattern, str) else dict(pattern or {}))
    return tuple(patterns)


def sqs_sources(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> list[SqsSource]:
    """Every `Type: SQS` event of every AWS::Serverless::Function."""
    resolver = Resolver(template, parameters=parameters or {})
    sources = []
    for function_id, event_name, event_props in _function_events(template, "SQS"):
        queue = logical_id_of(event_props.get("Queue"))
        sources.append(
            SqsSource(
                function=function_id,
                queue=str(queue).removesuffix(".fifo"),
                batch_size=int(resolver.resolve(event_props.get("BatchSize", 10))),
                report_batch_item_failures="ReportBatchItemFailures"
                in (event_props.get("FunctionResponseTypes") or []),
                enabled=_truthy(resolver.resolve(event_props.get("Enabled", True))),
                event=event_name,
                batching_window=float(resolver.resolve(event_props.get("MaximumBatchingWindowInSeconds", 0))),
                filters=_filters(resolver, event_props),
                maximum_concurrency=_int(
                    resolver.resolve((event_props.get("ScalingConfig") or {}).get("MaximumConcurrency"))
                ),
            )
        )
    return sources


def _int(value: Any) -> int | None:
    return int(value) if value is not None and str(value).isdigit() else None


def _stream_table(value: Any) -> str | None:
    """The table behind a `Stream`: `!GetAtt Table.StreamArn`, or a literal stream ARN."""
    if isinstance(value, str) and ":table/" in value:
        return value.split(":table/", 1)[1].split("/", 1)[0]
    return logical_id_of(value)


def stream_sources(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> list[StreamSource]:
    """Every `Type: DynamoDB` event of every AWS::Serverless::Function."""
    resolver = Resolver(template, parameters=parameters or {})
    sources = []
    for function_id, event_name, raw in _function_events(template, "DynamoDB"):
        props = {key: value for key, value in raw.items() if key not in ("Stream", "DestinationConfig")}
        props = resolver.resolve(props)
        on_failure = ((raw.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        sources.append(
            StreamSource(
                function=function_id,
                table=str(_stream_table(raw.get("Stream"))),
                event=event_name,
                starting_position=str(props.get("StartingPosition", "LATEST")).upper(),
                batch_size=int(props.get("BatchSize", 100)),
                batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                bisect_on_error=_truthy(props.get("BisectBatchOnFunctionError", False)),
                max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                max_record_age=int(props.get("MaximumRecordAgeInSeconds", -1)),
                report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                filters=_filters(resolver, raw),
                on_failure=logical_id_of(on_failure) if on_failure else None,
                enabled=_truthy(props.get("Enabled", True)),
            )
        )
    return sources
