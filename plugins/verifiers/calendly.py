"""Calendly: ``Calendly-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``.

The key is the webhook signing key; the timestamp must be within `tolerance`, 3 minutes
by default as in Calendly's example code.
https://developer.calendly.com/api-docs/overview/webhooks/webhook-signatures
"""

from __future__ import annotations

from plugins.verifiers import stamped

HEADER = "Calendly-Webhook-Signature"

SAMPLE_BODY = (
    b'{"created_at":"2024-05-01T12:00:00.000000Z",'
    b'"created_by":"https://api.calendly.com/users/AAAAAAAAAAAAAAAA",'
    b'"event":"invitee.created","payload":{"email":"test@example.com","name":"John Doe",'
    b'"status":"active","timezone":"America/New_York",'
    b'"event":"https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2",'
    b'"uri":"https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/AAAAAAAAAAAAAAAA"}}'
)


plugin = stamped.spec(
    "calendly",
    HEADER,
    tolerance=180.0,
    default_dedupe=None,
    sample_body=SAMPLE_BODY,
)
Options = stamped.Options
check = plugin.check
sign = plugin.sign
