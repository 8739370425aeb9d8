"""Generic HMAC: ``<header>: <prefix><hex or base64 HMAC of the signed string>``.

The signed string is `template` with ``{body}`` (the raw body bytes, never decoded),
``{timestamp}`` and ``{id}`` (the values of `timestamp_header` and `id_header`) filled in;
the rest of the template is literal UTF-8. A timestamp is Unix seconds and must be within
`tolerance` of now, either way. Secrets are used as their UTF-8 bytes.
https://datatracker.ietf.org/doc/html/rfc2104
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from gateway.plugin import (
    Inbound,
    Reply,
    Section,
    VerificationError,
    VerifierSpec,
    b64,
    b64decode,
    check_timestamp,
    header,
    hexdecode,
    hmac_digest,
    matches_any,
    require,
    secrets_from,
    show,
    tolerance_from,
)

ALGORITHMS = ("sha1", "sha256", "sha512")
ENCODINGS = ("hex", "base64")
FIELDS = ("body", "timestamp", "id")
PLACEHOLDER = re.compile(r"\{(\w*)\}")
SECONDS = re.compile(r"[0-9]{1,12}")
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name

Template = tuple[bytes | str, ...]  # literal bytes, or the name of a field to fill in


@dataclass(frozen=True, slots=True)
class Options:
    secrets: tuple[bytes, ...]
    header: str
    algorithm: str
    encoding: str
    prefix: str
    template: Template
    timestamp_header: str | None
    id_header: str | None
    tolerance: float


def parse(section: Section) -> Options:
    template = _template(section)
    timestamp_header = _field_header(section, "timestamp_header", "timestamp", template)
    if "tolerance" in section and timestamp_header is None:
        section.fail("applies only with a timestamp_header", "tolerance")
    return Options(
        secrets=secrets_from(section),
        header=_header_name(section, "header", required=True) or "",
        algorithm=_choice(section, "algorithm", ALGORITHMS, "sha256"),
        encoding=_choice(section, "encoding", ENCODINGS, "hex"),
        prefix=section.text("prefix", ""),
        template=template,
        timestamp_header=timestamp_header,
        id_header=_field_header(section, "id_header", "id", template),
        tolerance=tolerance_from(section),
    )


def _choice(section: Section, key: str, choices: tuple[str, ...], default: str) -> str:
    value: str = section.text(key, default)
    if value not in choices:
        section.fail(f"expected one of {', '.join(choices)}, got {show(value)}", key)
    return value


def _template(section: Section) -> Template:
    text: str = section.text("template", "{body}")
    pieces: list[bytes | str] = []
    start = 0
    for match in PLACEHOLDER.finditer(text):
        if match[1] not in FIELDS:
            known = ", ".join(f"{{{name}}}" for name in FIELDS)
            section.fail(f"unknown placeholder {match[0]} (known: {known})", "template")
        pieces += [text[start : match.start()].encode(), match[1]]
        start = match.end()
    pieces.append(text[start:].encode())
    if not _uses(pieces, "body"):
        section.fail("must contain {body}, or the signature would not cover the body", "template")
    return tuple(piece for piece in pieces if piece)


def _header_name(section: Section, key: str, required: bool = False) -> str | None:
    name: str | None = section.text(key, None)
    if name is None and required:
        section.fail("is required", key)
    if name is not None and not TOKEN.fullmatch(name):
        section.fail(f"expected a header name, got {show(name)}", key)
    return name


def _field_header(section: Section, key: str, field: str, template: Template) -> str | None:
    name = _header_name(section, key)
    if name is None and _uses(template, field):
        section.fail(f"is required when the template uses {{{field}}}", key)
    if name is not None and not _uses(template, field):
        section.fail(f"is set but the template does not sign {{{field}}}", key)
    return name


def _uses(template: Template | list[bytes | str], field: str) -> bool:
    return any(isinstance(piece, str) and piece == field for piece in template)


def check(inbound: Inbound, options: Options) -> Reply | None:
    given = _signature(header(inbound, options.header), options)
    values = {"body": inbound.body}
    if options.timestamp_header:
        stamp = header(inbound, options.timestamp_header)
        require(SECONDS.fullmatch(stamp) is not None, "malformed timestamp")
        check_timestamp(stamp, inbound.now, options.tolerance)
        values["timestamp"] = stamp.encode()
    if options.id_header:
        values["id"] = _raw(header(inbound, options.id_header), options.id_header)
    signed = _signed(options.template, values)
    expected = [hmac_digest(key, signed, options.algorithm) for key in options.secrets]
    require(matches_any(expected, [given]), "signature does not match")
    return None


def _signature(value: str, options: Options) -> bytes:
    """The digest in the signature header, decoded."""
    prefix = options.prefix
    require(
        value[: len(prefix)].lower() == prefix.lower(),
        f"{options.header} does not start with {prefix!r}",
    )
    text = value[len(prefix) :].strip()
    if options.encoding == "base64":
        return b64decode(text)
    return hexdecode(text, f"{options.header} is not hex")


def _raw(value: str, name: str) -> bytes:
    """A header value as the bytes that were received (aiohttp keeps non-UTF-8 as surrogates)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise VerificationError(f"malformed {name} header") from None


def _signed(template: Template, values: dict[str, bytes]) -> bytes:
    return b"".join(values[piece] if isinstance(piece, str) else piece for piece in template)


def sign(options: Options, body: bytes, url: str, now: dt.datetime) -> dict[str, str]:
    headers: dict[str, str] = {}
    values = {"body": body}
    if options.timestamp_header:
        stamp = str(int(now.timestamp()))
        headers[options.timestamp_header] = stamp
        values["timestamp"] = stamp.encode()
    if options.id_header:
        ident = f"msg_{uuid.uuid4().hex}"
        headers[options.id_header] = ident
        values["id"] = ident.encode()
    digest = hmac_digest(options.secrets[0], _signed(options.template, values), options.algorithm)
    text = digest.hex() if options.encoding == "hex" else b64(digest)
    headers[options.header] = options.prefix + text
    return headers


plugin = VerifierSpec(
    name="hmac",
    parse=parse,
    check=check,
    sign=sign,
    default_dedupe=None,  # a plugin-wide constant; set `dedupe: {key: "header:<id_header>"}`
)
