"""FastAPI's native OpenTelemetry: kept when a provider is configured, otherwise not asked about per request.

FastAPI asks OpenTelemetry on every request whether tracing, metrics or logs have a provider, which
reads `os.environ` a few times: ~8% of `/log_event`'s own CPU under py-spy. This service configures
no provider. So if none is set when the app is built (as `opentelemetry-instrument` would have done
by then) and FastAPI is not told to configure one at start (`FASTAPI_OTEL_AUTO_CONFIGURE=true`),
its telemetry is switched off up front; otherwise FastAPI's defaults apply unchanged.
"""

import os

from fastapi.telemetry import TelemetryConfig
from opentelemetry import _logs, metrics, trace

# The stand-ins OpenTelemetry's API hands out until a real provider is set.
_PLACEHOLDER_PROVIDERS = frozenset({"ProxyTracerProvider", "_ProxyMeterProvider", "ProxyLoggerProvider"})


def telemetry_config() -> TelemetryConfig | None:
    """`FastAPI(telemetry=...)`: None (FastAPI's defaults) unless nothing could use telemetry."""
    if os.getenv("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return None
    providers = (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider())
    if all(type(provider).__name__ in _PLACEHOLDER_PROVIDERS for provider in providers):
        return {"tracing": False, "metrics": False, "logs": False}
    return None
