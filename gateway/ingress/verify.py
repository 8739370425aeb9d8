"""What a verifier sees and returns, defined in `gateway.contract.verify`.

Kept so the ingress's own imports read as before; plugins import `gateway.plugin`.
"""

from gateway.contract.verify import (
    DEFAULT_TOLERANCE,
    NO_CREDENTIALS,
    SAMPLE_BODY,
    Credentials,
    FunctionVerifier,
    Inbound,
    Reply,
    Verifier,
    VerifierSpec,
    b64,
    b64decode,
    check_timestamp,
    header,
    hexdecode,
    hmac_digest,
    key_value_pairs,
    matches_any,
    require,
    secrets_from,
    tolerance_from,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "NO_CREDENTIALS",
    "SAMPLE_BODY",
    "Credentials",
    "FunctionVerifier",
    "Inbound",
    "Reply",
    "Verifier",
    "VerifierSpec",
    "b64",
    "b64decode",
    "check_timestamp",
    "header",
    "hexdecode",
    "hmac_digest",
    "key_value_pairs",
    "matches_any",
    "require",
    "secrets_from",
    "tolerance_from",
]
