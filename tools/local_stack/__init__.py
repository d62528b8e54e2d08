"""The whole stack on this machine, without Docker or AWS.

    python -m tools.local_stack [--host 127.0.0.1] [--port 3000] [--moto-port 5000]
                                [--org demo-org] [--bucket demo] [--sqs-retry-delay SECONDS]

moto (DynamoDB, SQS, EventBridge) runs in-process on --moto-port with the template's tables,
queues and buses, its DynamoDB writes made atomic as in the tests (tools/moto_atomic.py). An API
Gateway emulator (REST API, Lambda proxy integration) serves every route of every
AWS::Serverless::Api of template.yaml on --port: REQUEST/TOKEN authorizers with their result
cache and policy evaluation, and the template's gateway responses. Functions run in-process in
a Lambda-like runtime: a pool of execution environments per function, one invocation at a time
in each. Functions with SQS and DynamoDB stream events are fed by pollers, like Lambda's event
source mappings (batching, filters, partial batch failures, retries, dead-letter queues; see
pollers/); EventBridge rules deliver to their SQS targets inside moto. A demo API key is
created and printed at startup; data lives until Ctrl-C.

Modules: routing (requests, route choice), responses (gateway responses, VTL), authorizer
(authorizers, policy evaluation), runtime (context, environments, pools), isolation (Powertools'
per-process request state), gateway, server (HTTP), pollers (event sources), filters (event
filtering patterns), stack, __main__.
"""

from tools.local_stack.authorizer import evaluate_policy, policy_allows
from tools.local_stack.gateway import DOCS_PATH, MAX_BODY_BYTES, OPENAPI_PATH, Gateway
from tools.local_stack.pollers import Poller, SqsPoller, StreamPoller
from tools.local_stack.responses import gateway_response, render_vtl
from tools.local_stack.routing import Request, Response, Router
from tools.local_stack.runtime import Environment, Functions, LambdaContext, Pool, Runtime, lambda_context
from tools.local_stack.stack import LocalStack, StackInfo, banner

__all__ = [
    "DOCS_PATH",
    "MAX_BODY_BYTES",
    "OPENAPI_PATH",
    "Environment",
    "Functions",
    "Gateway",
    "LambdaContext",
    "LocalStack",
    "Poller",
    "Pool",
    "Request",
    "Response",
    "Router",
    "Runtime",
    "SqsPoller",
    "StackInfo",
    "StreamPoller",
    "banner",
    "evaluate_policy",
    "gateway_response",
    "lambda_context",
    "policy_allows",
    "render_vtl",
]
