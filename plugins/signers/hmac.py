"""The `hmac` signer: sign outgoing deliveries the way the generic `hmac` verifier checks them.

    targets:
      billing:
        url: https://billing.internal/hooks
        sign:
          type: hmac
          secret: ${BILLING_HOOK_SECRET}  # or secrets: [new, old]; the first one signs
          header: X-Signature
          algorithm: sha256               # sha1, sha256 (default) or sha512
          encoding: hex                   # hex (default) or base64
          prefix: "sha256="
          template: "{timestamp}.{body}"  # the default is "{body}"
          timestamp_header: X-Timestamp   # required when the template signs {timestamp}
          id_header: X-Webhook-Id         # required when the template signs {id}

The options are the inbound verifier's, read and signed by its own code, so a receiver
configured with the same settings accepts what is sent. ``{body}`` is the body as it
leaves (`sign` is the innermost middleware, after any transform), ``{timestamp}`` the
attempt's time in Unix seconds, and ``{id}`` the delivery id: the same on every retry, so
the receiver can use it as an idempotency key. Headers of the same names already on the
message are replaced. With several secrets only the first signs: to rotate, give the
receiver the new secret too, then list it first here. `tolerance` is the receiver's
business and is refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from gateway.plugin import (
    Message,
    Middleware,
    Resources,
    Section,
    Send,
    SendResult,
    replace_headers,
    settable_header_problem,
)
from plugins.verifiers import hmac as verifier

_HEADER_KEYS = ("header", "timestamp_header", "id_header")
# hookgate already sends the delivery id under these names, so they may carry {id}.
_DELIVERY_ID_HEADERS = frozenset({"idempotency-key", "x-hookgate-delivery-id"})


def signature_headers(options: verifier.Options, message: Message) -> dict[str, str]:
    """The headers that sign `message`: the signature, and the timestamp and id it covers."""
    ident = message.idempotency_key
    # The verifier's `sign` (for `hookgate send`) makes up a random id: fill in ours first.
    template = tuple(
        ident.encode() if isinstance(piece, str) and piece == "id" else piece
        for piece in options.template
    )
    fixed = replace(options, template=template, id_header=None)
    headers = verifier.sign(fixed, message.body, "", message.now)  # the URL is not signed
    if options.id_header:
        headers[options.id_header] = ident
    return headers


class HmacSigner:
    """Adds the signature header, and the timestamp and id headers the template signs."""

    def __init__(self, options: verifier.Options) -> None:
        self.options = options

    async def __call__(self, message: Message, call_next: Send) -> SendResult:
        added = signature_headers(self.options, message).items()
        return await call_next(replace(message, headers=replace_headers(message.headers, added)))


class HmacSigning:
    kind: Literal["middleware"] = "middleware"
    name = "hmac"

    def parse(self, section: Section) -> verifier.Options:
        if "tolerance" in section:
            section.fail("only applies when verifying; the receiver sets it", "tolerance")
        # The verifier reads a copy without `type` (the loader's key) and `tolerance`
        # (refused above), so neither is reported twice; the copy reports unknown keys.
        own = {key: value for key, value in section.items() if key not in {"type", "tolerance"}}
        copy = Section(own, section.path, section.problems)
        before = len(section.problems)
        options = verifier.parse(copy)
        copy.done()
        if len(section.problems) == before:
            _check_headers(section, options)
        return options

    def create(self, options: Any, resources: Resources) -> Middleware:
        return HmacSigner(options)


def _check_headers(section: Section, options: verifier.Options) -> None:
    """Refuse header names the signer must not set, or that would overwrite each other."""
    seen: dict[str, str] = {}  # lowercased name -> the key that set it
    for key in _HEADER_KEYS:
        name: str | None = getattr(options, key)
        if name is None:
            continue
        problem = settable_header_problem(name)
        if problem and not (key == "id_header" and name.lower() in _DELIVERY_ID_HEADERS):
            section.fail(problem, key)
        if name.lower() in seen:
            section.fail(f"is the same header as {seen[name.lower()]}", key)
        seen.setdefault(name.lower(), key)


plugin = HmacSigning()
