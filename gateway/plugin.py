"""The plugin contract: everything a verifier, target or middleware plugin may use.

A plugin imports this module and nothing else from hookgate; the core may move freely
behind it (an import-linter contract in pyproject.toml holds every plugin under
``plugins/`` and ``examples/`` to that). Every name here is listed in `__all__`, and a
test pins the list, so changing the contract is a deliberate, visible change.
docs/plugins.md is the guide; in short:

Kinds
    `TargetPlugin`, `MiddlewarePlugin`, `VerifierPlugin` (any of them: `Plugin`; their
    names: `Kind`): an object with ``kind``, ``name`` (its ``type:`` in hookgate.yaml),
    ``parse(section)`` and ``create(options, resources)``, registered under the
    ``hookgate.plugins`` entry-point group as ``<kind>.<name>``. `Resources` is what
    hookgate lends at run time: the HTTP client session, the delivery client
    (`HttpClient`: keep-alive pools, answers read up to a limit, raising `BadAnswer`,
    `AnswerTooLarge` or the standard library's socket errors), the clock, and
    `Resources.fetch` (a bounded GET, raising `FetchError`).

Verifiers
    `Inbound` (the raw request) in, None or a handshake `Reply` out, `VerificationError`
    with a reason otherwise (a 401). `VerifierSpec` declares one from plain functions;
    `Verifier` is what ``create`` returns. Helpers: `header`, `require`, `matches_any`
    (constant-time compare), `hmac_digest`, `check_timestamp` (tolerance both ways),
    `b64decode`, `b64`, `hexdecode`, `key_value_pairs`, `secrets_from` (``secret`` or
    ``secrets`` for rotation), `tolerance_from`, `DEFAULT_TOLERANCE`, `SAMPLE_BODY`,
    `sample_id` (a fresh id per sample, unless ``hookgate send --id`` pinned one) and
    `PRIVATE_KEY_ONLY` (what `sign` raises with when only the provider holds the key).
    A verifier whose inputs are the secret itself (a key, a password) names them with
    `Credentials` (`NO_CREDENTIALS` by default), so they are stored redacted.

Targets and middleware
    A `Message` (one attempt to deliver one event to one target) in, a `SendResult`
    with an `Outcome` out: a target is a `Send`, a middleware wraps the rest of the
    chain (`Middleware`, `compose`). `classify_status` and `parse_retry_after` turn an
    HTTP answer into an outcome and a delay; `DELIVERED` and `RETRYABLE` say what each
    outcome means. Headers: `Headers`, `replace_headers`, `settable_header_problem`,
    `header_value_problem`, `is_identity_header`, `IDENTITY_HEADERS`, `IDENTITY_PREFIX`,
    `HOP_BY_HOP`, `USER_AGENT`.

Config
    `Section` hands out typed options and records each problem with its key path
    (``section.fail(message, key)``); `REQUIRED` as a default makes a key required;
    `show` quotes a value as the user wrote it.
"""

from gateway.contract.headers import (
    HOP_BY_HOP,
    IDENTITY_HEADERS,
    IDENTITY_PREFIX,
    USER_AGENT,
    header_value_problem,
    is_identity_header,
    replace_headers,
    settable_header_problem,
)
from gateway.contract.httpclient import AnswerTooLarge, BadAnswer, HttpClient
from gateway.contract.kinds import Kind, MiddlewarePlugin, Plugin, TargetPlugin, VerifierPlugin
from gateway.contract.message import Headers, Message, Middleware, Send, SendResult, compose
from gateway.contract.outcome import (
    DELIVERED,
    RETRYABLE,
    Outcome,
    classify_status,
    parse_retry_after,
)
from gateway.contract.resources import Resources
from gateway.contract.verify import (
    DEFAULT_TOLERANCE,
    NO_CREDENTIALS,
    PRIVATE_KEY_ONLY,
    SAMPLE_BODY,
    Credentials,
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
    sample_id,
    secrets_from,
    tolerance_from,
)
from gateway.errors import FetchError, VerificationError
from gateway.section import REQUIRED, Section, show

__all__ = [
    "DEFAULT_TOLERANCE",
    "DELIVERED",
    "HOP_BY_HOP",
    "IDENTITY_HEADERS",
    "IDENTITY_PREFIX",
    "NO_CREDENTIALS",
    "PRIVATE_KEY_ONLY",
    "REQUIRED",
    "RETRYABLE",
    "SAMPLE_BODY",
    "USER_AGENT",
    "AnswerTooLarge",
    "BadAnswer",
    "Credentials",
    "FetchError",
    "Headers",
    "HttpClient",
    "Inbound",
    "Kind",
    "Message",
    "Middleware",
    "MiddlewarePlugin",
    "Outcome",
    "Plugin",
    "Reply",
    "Resources",
    "Section",
    "Send",
    "SendResult",
    "TargetPlugin",
    "VerificationError",
    "Verifier",
    "VerifierPlugin",
    "VerifierSpec",
    "b64",
    "b64decode",
    "check_timestamp",
    "classify_status",
    "compose",
    "header",
    "header_value_problem",
    "hexdecode",
    "hmac_digest",
    "is_identity_header",
    "key_value_pairs",
    "matches_any",
    "parse_retry_after",
    "replace_headers",
    "require",
    "sample_id",
    "secrets_from",
    "settable_header_problem",
    "show",
    "tolerance_from",
]
