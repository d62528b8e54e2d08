"""Creating the template's tables, queues, buses and rules (in moto)."""

from __future__ import annotations

import json
from typing import Any

from tools.cfn.template import (
    Resolver,
    _env_value,
    _truthy,
    physical_name,
    resources_of,
)


def table_specs(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Logical id -> kwargs for boto3 `create_table` of every AWS::DynamoDB::Table."""
    resolver = Resolver(template, parameters=parameters or {})
    specs: dict[str, dict[str, Any]] = {}
    for logical_id, raw in resources_of(template, "AWS::DynamoDB::Table").items():
        props = resolver.resolve(raw)
        spec: dict[str, Any] = {
            "TableName": logical_id,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(key):
                spec[key] = [
                    {k: index[k] for k in ("IndexName", "KeySchema", "Projection") if k in index}
                    for index in props[key]
                ]
        if props.get("StreamSpecification"):
            view_type = props["StreamSpecification"]["StreamViewType"]
            spec["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
        specs[logical_id] = spec
    return specs


def create_tables(dynamodb_client: Any, template: dict[str, Any]) -> dict[str, str]:
    """Create every table of the template; returns logical id -> table name."""
    names: dict[str, str] = {}
    for logical_id, spec in table_specs(template).items():
        dynamodb_client.create_table(**spec)
        ttl = resources_of(template, "AWS::DynamoDB::Table")[logical_id].get("TimeToLiveSpecification")
        if ttl and _truthy(ttl.get("Enabled")):
            dynamodb_client.update_time_to_live(
                TableName=spec["TableName"],
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        names[logical_id] = spec["TableName"]
    return names


_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication", "DeduplicationScope", "DelaySeconds", "FifoQueue",
    "FifoThroughputLimit", "KmsDataKeyReusePeriodSeconds", "KmsMasterKeyId", "MaximumMessageSize",
    "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "RedriveAllowPolicy", "RedrivePolicy",
    "SqsManagedSseEnabled", "VisibilityTimeout",
)  # fmt: skip


def queue_specs(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Logical id -> kwargs for boto3 `create_queue` of every AWS::SQS::Queue."""
    resolver = Resolver(template, parameters=parameters or {})
    specs: dict[str, dict[str, Any]] = {}
    for logical_id, raw in resources_of(template, "AWS::SQS::Queue").items():
        props = resolver.resolve(raw)
        attributes = {}
        for key in _QUEUE_ATTRIBUTES:
            if key in props:
                value = props[key]
                attributes[key] = json.dumps(value) if isinstance(value, dict) else _env_value(value)
        specs[logical_id] = {"QueueName": physical_name(template, logical_id), "Attributes": attributes}
    return specs


def create_queues(sqs_client: Any, template: dict[str, Any]) -> dict[str, str]:
    """Create every queue (dead-letter queues first); returns logical id -> queue URL (its Ref)."""
    specs = queue_specs(template)
    arn_to_id = {Resolver(template).get_att(logical_id, "Arn"): logical_id for logical_id in specs}

    def dead_letter_id(logical_id: str) -> str | None:
        policy = specs[logical_id]["Attributes"].get("RedrivePolicy")
        return arn_to_id.get(json.loads(policy).get("deadLetterTargetArn")) if policy else None

    urls: dict[str, str] = {}
    pending = list(specs)
    while pending:
        ready = [q for q in pending if dead_letter_id(q) in (None, q, *urls)]
        if not ready:
            raise ValueError(f"circular RedrivePolicy between queues {pending}")
        for logical_id in ready:
            urls[logical_id] = sqs_client.create_queue(**specs[logical_id])["QueueUrl"]
            pending.remove(logical_id)
    return urls


def create_buses(
    events_client: Any, template: dict[str, Any], resources: dict[str, str] | None = None
) -> dict[str, str]:
    """Create every AWS::Events::EventBus and the AWS::Events::Rule (with targets) on them.

    Returns logical id -> bus name. `resources` (e.g. the queue URLs) resolves rule targets.
    """
    names: dict[str, str] = {}
    for logical_id in resources_of(template, "AWS::Events::EventBus"):
        events_client.create_event_bus(Name=logical_id)
        names[logical_id] = logical_id
    resolver = Resolver(template, resources={**(resources or {}), **names})
    for logical_id, raw in resources_of(template, "AWS::Events::Rule").items():
        props = resolver.resolve(raw)
        bus = str(props.get("EventBusName", "default")).rsplit("/", 1)[-1]
        rule: dict[str, Any] = {"Name": logical_id, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            rule["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in props:
            rule["ScheduleExpression"] = props["ScheduleExpression"]
        events_client.put_rule(**rule)
        targets = [
            {k: v for k, v in target.items() if k in ("Id", "Arn", "Input", "InputPath", "SqsParameters")}
            for target in props.get("Targets") or []
        ]
        if targets:
            events_client.put_targets(Rule=logical_id, EventBusName=bus, Targets=targets)
    return names


def usage_plan_specs(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Logical id -> kwargs for boto3 `create_usage_plan` of every AWS::ApiGateway::UsagePlan: its
    throttle and quota (named after its logical id; API stages are not created locally)."""
    resolver = Resolver(template, parameters=parameters or {})
    specs: dict[str, dict[str, Any]] = {}
    for logical_id, raw in resources_of(template, "AWS::ApiGateway::UsagePlan").items():
        spec: dict[str, Any] = {"name": logical_id}
        throttle = resolver.resolve(raw.get("Throttle") or {})
        if throttle:
            spec["throttle"] = {"rateLimit": float(throttle["RateLimit"]), "burstLimit": int(throttle["BurstLimit"])}
        quota = resolver.resolve(raw.get("Quota") or {})
        if quota:
            spec["quota"] = {"limit": int(quota["Limit"]), "period": str(quota["Period"])}
        specs[logical_id] = spec
    return specs


def create_usage_plans(
    apigateway_client: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None
) -> dict[str, str]:
    """Create every usage plan of the template; returns logical id -> usage plan id (its Ref)."""
    return {
        logical_id: apigateway_client.create_usage_plan(**spec)["id"]
        for logical_id, spec in usage_plan_specs(template, parameters).items()
    }


def create_keys(kms_client: Any, template: dict[str, Any]) -> dict[str, str]:
    """Create every AWS::KMS::Key (symmetric, as the template's); returns logical id -> key id (its Ref)."""
    ids: dict[str, str] = {}
    for logical_id, props in resources_of(template, "AWS::KMS::Key").items():
        description = str(props.get("Description") or logical_id)
        ids[logical_id] = kms_client.create_key(Description=description)["KeyMetadata"]["KeyId"]
    return ids


def create_buckets(s3_client: Any, template: dict[str, Any]) -> dict[str, str]:
    """Create every AWS::S3::Bucket with its encryption, public access block and lifecycle rules as
    the template gives them; returns logical id -> bucket name (its Ref)."""
    resolver = Resolver(template)
    names: dict[str, str] = {}
    for logical_id, raw in resources_of(template, "AWS::S3::Bucket").items():
        props = resolver.resolve(raw)
        name = physical_name(template, logical_id)
        s3_client.create_bucket(Bucket=name)
        encryption = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")
        if encryption:
            s3_client.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": [_encryption_rule(r) for r in encryption]}
            )
        block = props.get("PublicAccessBlockConfiguration")
        if block:
            s3_client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        rules = (props.get("LifecycleConfiguration") or {}).get("Rules") or []
        if rules:
            s3_client.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
            )
        names[logical_id] = name
    return names


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in S3's API shape."""
    out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule.get("Status", "Enabled"), "Filter": {}}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(abort["DaysAfterInitiation"])}
    return out


def _encryption_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation encryption rule in S3's API shape."""
    out = {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
    if "BucketKeyEnabled" in rule:
        out["BucketKeyEnabled"] = _truthy(rule["BucketKeyEnabled"])
    return out
