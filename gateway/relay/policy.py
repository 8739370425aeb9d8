"""The retry policy and outcome classes, defined in `gateway.contract.outcome`.

Kept so the relay's own imports read as before; plugins import `gateway.plugin`.
"""

from gateway.contract.outcome import (
    DELIVERED,
    RETRYABLE,
    Outcome,
    RetryPolicy,
    classify_status,
    parse_retry_after,
)

__all__ = [
    "DELIVERED",
    "RETRYABLE",
    "Outcome",
    "RetryPolicy",
    "classify_status",
    "parse_retry_after",
]
