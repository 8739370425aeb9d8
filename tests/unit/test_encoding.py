"""Inflating a compressed body for routing: every coding, bounded, never a 500."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import brotli
import pytest

from gateway.errors import BadRequest, BodyTooLarge, UnsupportedEncoding
from gateway.ingress.encoding import codings, inflate

BODY = b'{"type": "order.created", "id": "ord_1"}'
MiB = 1024 * 1024


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("GZIP", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", raw_deflate(BODY)),  # what some senders call deflate
        ("br", brotli.compress(BODY)),
        ("identity", BODY),
        (None, BODY),
        ("gzip, br", brotli.compress(gzip.compress(BODY))),  # applied in order, undone last first
        ("gzip", gzip.compress(BODY[:10]) + gzip.compress(BODY[10:])),  # two gzip members
    ],
)
def test_each_coding_is_undone(encoding, wire):
    assert inflate(wire, encoding, MiB) == BODY


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", BODY),  # says gzip, is not
        ("gzip", gzip.compress(BODY)[:-12]),  # cut short
        ("gzip", b""),
        ("deflate", b"\x00\x01\x02garbage"),
        ("deflate", zlib.compress(BODY) + b"tail"),
        ("br", b"\xffnot brotli"),
        ("br", brotli.compress(BODY * 50)[:-5]),
    ],
)
def test_a_body_that_does_not_decode_as_it_claims_is_a_400(encoding, wire):
    with pytest.raises(BadRequest) as raised:
        inflate(wire, encoding, MiB)
    assert raised.value.status == 400
    assert encoding in raised.value.message


def test_an_unknown_coding_is_a_415():
    with pytest.raises(UnsupportedEncoding) as raised:
        inflate(BODY, "compress", MiB)
    assert raised.value.status == 415


def brotli_fast(data: bytes) -> bytes:
    return brotli.compress(data, quality=1)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli_fast)],
)
def test_a_bomb_is_413_and_inflating_it_stays_within_the_limit(encoding, compress):
    bomb = compress(b"\0" * (32 * MiB))  # KiB on the wire
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            inflate(bomb, encoding, MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB  # the limit plus working buffers, not the 32 MiB it holds


def test_a_body_exactly_at_the_limit_is_kept():
    assert inflate(gzip.compress(b"x" * 1000), "gzip", 1000) == b"x" * 1000
    with pytest.raises(BodyTooLarge):
        inflate(gzip.compress(b"x" * 1001), "gzip", 1000)


def test_codings_are_listed_in_the_order_applied():
    assert codings("gzip, identity ,BR") == ["gzip", "br"]
    assert codings("") == [] and codings(None) == []
