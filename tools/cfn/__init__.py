"""Helpers over the SAM template: load it, create its storage, and describe its functions and APIs.

Used by the local stack and by the test suite, so that both follow `template.yaml` instead of
repeating it. Local values: region us-east-1, account 123456789012, every physical resource
named after its logical id (a FIFO queue gets the `.fifo` suffix it requires).
"""

from __future__ import annotations

from tools.cfn.apis import Api, Authorizer, GatewayResponse, Route, api_routes, apis
from tools.cfn.functions import Function, function, function_env, layer_dirs
from tools.cfn.sources import SqsSource, StreamSource, sqs_sources, stream_sources
from tools.cfn.storage import (
    create_buckets,
    create_buses,
    create_keys,
    create_queues,
    create_tables,
    create_usage_plans,
    queue_specs,
    table_specs,
    usage_plan_specs,
)
from tools.cfn.template import (
    ACCOUNT_ID,
    IMPLICIT_API,
    REGION,
    REPO_ROOT,
    SERVERLESS_API,
    SERVERLESS_FUNCTION,
    STACK_NAME,
    Resolver,
    load_template,
    physical_name,
    resources_of,
)

__all__ = [
    "ACCOUNT_ID",
    "IMPLICIT_API",
    "REGION",
    "REPO_ROOT",
    "SERVERLESS_API",
    "SERVERLESS_FUNCTION",
    "STACK_NAME",
    "Api",
    "Authorizer",
    "Function",
    "GatewayResponse",
    "Resolver",
    "Route",
    "SqsSource",
    "StreamSource",
    "api_routes",
    "apis",
    "create_buckets",
    "create_buses",
    "create_keys",
    "create_queues",
    "create_tables",
    "create_usage_plans",
    "function",
    "function_env",
    "layer_dirs",
    "load_template",
    "physical_name",
    "queue_specs",
    "resources_of",
    "sqs_sources",
    "stream_sources",
    "table_specs",
    "usage_plan_specs",
]
