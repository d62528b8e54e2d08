"""Logger and metrics, created once. Tracer is left out on purpose: see docs/decisions.md."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# A replayed (idempotent) response or an error-free read adds no metric; that is not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service="segments")
metrics = Metrics(namespace="Segments", service="segments")

__all__ = ["MetricUnit", "logger", "metrics"]
