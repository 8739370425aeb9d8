"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">[,v1=...]``.

Several v1 entries may be present (Stripe rolls secrets); any may match any configured
secret. The timestamp must be within `tolerance` (default 5 minutes) either way.
https://docs.stripe.com/webhooks#verify-manually
"""

from __future__ import annotations

from plugins.verifiers import stamped

HEADER = "Stripe-Signature"


plugin = stamped.spec(
    "stripe",
    HEADER,
    tolerance=300.0,
    default_dedupe="json:id",
)
Options = stamped.Options
check = plugin.check
sign = plugin.sign
