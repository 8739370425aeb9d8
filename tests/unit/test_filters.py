"""The route/target filter: globs on event type and headers, a MongoDB-like JSON query."""

from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.filters import Filter, parse_filter
from gateway.section import Section

PATH = "routes[0].filter"


def parse(config: Any) -> Filter:
    problems: list[str] = []
    result = parse_filter(Section(config, PATH, problems))
    assert problems == []
    return result


def problems_of(config: Any) -> list[str]:
    problems: list[str] = []
    parse_filter(Section(config, PATH, problems))
    return problems


def query_matches(query: str, body: Any) -> bool:
    """Whether the YAML `query` (the `json:` mapping) matches `body` (JSON-encoded here)."""
    return parse({"json": yaml.safe_load(query)}).matches(None, {}, orjson.dumps(body))


INVOICE = {
    "type": "invoice.paid",
    "livemode": False,
    "data": {
        "object": {
            "amount": 1500,
            "currency": "usd",
            "paid": True,
            "note": None,
            "tags": ["vip", "eu"],
            "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
            "version": "2.10",
        }
    },
}


def test_empty_filter_matches_everything() -> None:
    assert parse({}) == Filter.always()
    assert parse(None).matches(None, {}, b"\xff not json")
    assert Filter.always().matches("anything", {"a": "b"}, b"")


def test_empty_json_query_is_no_condition() -> None:
    assert parse({"json": {}}).matches(None, {}, b"not json")


# event_type


@pytest.mark.parametrize(
    ("globs", "event_type", "expected"),
    [
        (["invoice.*"], "invoice.paid", True),
        (["invoice.*", "charge.succeeded"], "charge.succeeded", True),
        (["invoice.*"], "charge.succeeded", False),
        (["invoice.*"], "Invoice.paid", False),  # case-sensitive
        (["invoice.*"], None, False),  # no event type never matches a glob
        ("push", "push", True),  # a single glob without a list
        ([], None, True),  # an empty list is no condition, as before
    ],
)
def test_event_type_globs(globs: Any, event_type: str | None, expected: bool) -> None:
    assert parse({"event_type": globs}).matches(event_type, {}, b"") is expected


# headers


@pytest.mark.parametrize(
    ("rules", "headers", "expected"),
    [
        ({"X-GitHub-Event": ["push", "pull_*"]}, {"X-GitHub-Event": "push"}, True),
        ({"X-GitHub-Event": ["push", "pull_*"]}, {"X-GitHub-Event": "pull_request"}, True),
        ({"X-GitHub-Event": ["push", "pull_*"]}, {"X-GitHub-Event": "issues"}, False),
        ({"X-GitHub-Event": "push"}, {"x-github-event": "push"}, True),  # plain dict, other case
        ({"x-github-event": "push"}, CIMultiDict({"X-GITHUB-EVENT": "push"}), True),
        (
            {"X-GitHub-Event": "push"},
            {"X-GitHub-Event": "PUSH"},
            False,
        ),  # values are case-sensitive
        ({"X-GitHub-Event": "*"}, {}, False),  # a missing header does not match, even "*"
        (
            {"X-Shop-Domain": "a.myshopify.com", "X-Topic": "orders/*"},
            {"X-Shop-Domain": "a.myshopify.com", "X-Topic": "orders/create"},
            True,
        ),
        (
            {"X-Shop-Domain": "a.myshopify.com", "X-Topic": "orders/*"},
            {"X-Shop-Domain": "a.myshopify.com"},
            False,
        ),
    ],
)
def test_header_globs(rules: dict[str, Any], headers: Any, expected: bool) -> None:
    assert parse({"headers": rules}).matches(None, headers, b"") is expected


def test_all_parts_must_match() -> None:
    f = parse({"event_type": "invoice.*", "headers": {"X-A": "1"}, "json": {"livemode": False}})
    body = orjson.dumps(INVOICE)
    assert f.matches("invoice.paid", {"X-A": "1"}, body)
    assert not f.matches("charge.failed", {"X-A": "1"}, body)
    assert not f.matches("invoice.paid", {"X-A": "2"}, body)
    assert not f.matches("invoice.paid", {"X-A": "1"}, b'{"livemode": true}')


# json: one table per operator, each with matching and non-matching cases.


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type: invoice.paid", True),  # a bare value means $eq
        ("type: {$eq: invoice.paid}", True),
        ("type: {$eq: invoice.failed}", False),
        ("data.object.amount: 1500", True),
        ("data.object.amount: 1500.0", True),  # numbers compare as numbers
        ("data.object.amount: '1500'", False),  # a string is not a number
        ("data.object.paid: true", True),
        ("data.object.paid: 1", False),  # true is not 1
        ("livemode: 0", False),  # false is not 0
        ("data.object.note: null", True),
        ("data.object.missing: null", False),  # null matches an explicit null only
        ("data.object.tags: vip", True),  # a list field matches if any element does
        ("data.object.tags: [vip, eu]", True),  # or if the whole list does
        ("data.object.tags: [eu, vip]", False),  # order matters for whole lists
        ("data.object.items.0: {sku: A-1, qty: 2}", True),  # deep equality of mappings
        ("data.object.items.0: {sku: A-1}", False),
        ("data.object.items: {sku: B-2, qty: 1}", True),  # any element of a list of objects
        ("data.object.missing: 1", False),
    ],
)
def test_eq(query: str, expected: bool) -> None:
    assert query_matches(query, INVOICE) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type: {$ne: invoice.failed}", True),
        ("type: {$ne: invoice.paid}", False),
        ("data.object.missing: {$ne: 1}", True),  # a missing field is not equal
        ("data.object.tags: {$ne: vip}", False),  # no element may equal it
        ("data.object.tags: {$ne: us}", True),
        ("data.object.paid: {$ne: 1}", True),
    ],
)
def test_ne(query: str, expected: bool) -> None:
    assert query_matches(query, INVOICE) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("data.object.currency: {$in: [usd, eur]}", True),
        ("data.object.currency: {$in: [gbp, eur]}", False),
        ("data.object.currency: {$in: []}", False),
        ("data.object.tags: {$in: [us, eu]}", True),  # any element in the list
        ("data.object.tags: {$in: [us, ca]}", False),
        ("data.object.amount: {$in: [1500, 2000]}", True),
        ("data.object.paid: {$in: [1]}", False),
        ("data.object.missing: {$in: [null]}", False),
    ],
)
def test_in(query: str, expected: bool) -> None:
    assert query_matches(query, INVOICE) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("data.object.currency: {$nin: [gbp, eur]}", True),
        ("data.object.currency: {$nin: [usd, eur]}", False),
        ("data.object.missing: {$nin: [usd]}", True),  # a missing field is in no list
        ("data.object.tags: {$nin: [eu]}", False),
        ("data.object.tags: {$nin: [us, ca]}", True),
    ],
)
def test_nin(query: str, expected: bool) -> None:
    assert query_matches(query, INVOICE) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("data.object.amount: {$gt: 1000}", True),
        ("data.object.amount: {$gt: 1500}", False),
        ("data.object.amount: {$gte: 1500}", True),
        ("data.object.amount: {$gte: 1500.5}", False),
        ("data.object.amount: {$lt: 2000}", True),
        ("data.object.amount: {$lt: 1500}", False),
        ("data.object.amount: {$lte: 1500}", True),
        ("data.object.amount: {$lte: 1499}", False),
        ("data.object.amount: {$gte: 1000, $lt: 2000}", True),  # operators AND
        ("data.object.amount: {$gte: 1000, $lt: 1200}", False),
        ("data.object.currency: {$gte: usd}", True),  # strings compare with strings
        ("data.object.currency: {$gt: zzz}", False),
        ("data.object.amount: {$gt: '1000'}", False),  # number vs string: no match
        ("data.object.version: {$gt: 2}", False),  # string vs number: no match
        ("data.object.paid: {$gte: 1}", False),  # bool vs number: no match
        ("data.object.paid: {$lt: 2}", False),
        ("data.object.note: {$lt: 1}", False),  # null vs number: no match
        ("data.object.missing: {$lt: 1}", False),
        ("data.object.items.1.qty: {$lt: 2}", True),
        ("data.object.items.qty: {$gt: 1}", False),  # no fan-out through lists of objects
    ],
)
def test_comparisons(query: str, expected: bool) -> None:
    assert query_matches(query, INVOICE) is expected


@pytest.mark.parametrize(
    ("document", "query", "expected"),
    [
        ({"scores": [1, 5, 9]}, "scores: {$gt: 8}", True),  # any element of a list field
        ({"scores": [1, 5, 9]}, "scores: {$gt: 9}", False),
        ({"scores": [True, "10"]}, "scores: {$gt: 0}", False),
    ],
)
def test_comparisons_on_list_fields(document: Any, query: str, expected: bool) -> None:
    assert query_matches(query, document) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("data.object.amount: {$exists: true}", True),
        ("data.object.amount: {$exists: false}", False),
        ("data.object.note: {$exists: true}", True),  # null is present
        ("data.object.missing: {$exists: false}", True),
        ("data.object.missing: {$exists: true}", False),
        ("data.object.amount.deeper: {$exists: false}", True),  # below a number
        ("data.object.items.5: {$exists: false}", True),  # past the end of a list
        ("data.object.items.1: {$exists: true}", True),
    ],
)
def test_exists(query: str, expected: bool) -> None:
    assert query_matches(query, INVOICE) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (r"type: {$regex: '^invoice\.'}", True),
        (r"type: {$regex: 'paid$'}", True),
        (r"type: {$regex: '^paid'}", False),  # re.search, anchored by ^
        ("type: {$regex: 'INVOICE'}", False),  # case-sensitive
        ("type: {$regex: '(?i)INVOICE'}", True),  # unless asked
        ("data.object.tags: {$regex: '^e'}", True),  # any string element
        ("data.object.amount: {$regex: '15'}", False),  # only strings
        ("data.object.missing: {$regex: ''}", False),
    ],
)
def test_regex(query: str, expected: bool) -> None:
    assert query_matches(query, INVOICE) is expected


def test_catastrophic_regex_runs_on_a_linear_time_engine() -> None:
    # ^(a+)+$ against "aaa...!" takes 2^n steps with backtracking: 100,000 a's would
    # never finish on `re`; RE2 answers at once (the per-test timeout is the proof).
    body = {"name": "a" * 100_000 + "!"}
    assert query_matches(r"name: {$regex: '^(a+)+$'}", body) is False
    assert query_matches(r"name: {$regex: '^(a+)+!$'}", body) is True


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("data.object.amount: {$not: {$gt: 2000}}", True),
        ("data.object.amount: {$not: {$gt: 1000}}", False),
        ("data.object.missing: {$not: {$gt: 5}}", True),  # missing fields match a $not
        ("data.object.currency: {$not: {$gt: 5}}", True),  # as do values of another type
        ("data.object.currency: {$not: usd}", False),  # a bare value means $eq
        ("data.object.currency: {$not: {$in: [eur, gbp]}}", True),
        ("data.object.currency: {$not: {$not: usd}}", True),
    ],
)
def test_field_not(query: str, expected: bool) -> None:
    assert query_matches(query, INVOICE) is expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("$and: [{type: invoice.paid}, {livemode: false}]", True),
        ("$and: [{type: invoice.paid}, {livemode: true}]", False),
        ("$or: [{livemode: true}, {type: {$regex: '^invoice\\.'}}]", True),
        ("$or: [{livemode: true}, {type: charge.failed}]", False),
        ("$not: {type: invoice.paid}", False),
        ("$not: {type: charge.failed}", True),
        (
            "{livemode: false, $or: [{data.object.currency: eur}, {data.object.amount: {$gt: 1000}}]}",
            True,
        ),
        ("{livemode: true, $or: [{data.object.currency: usd}]}", False),  # entries AND
        (
            "$or: [{$and: [{livemode: false}, {type: x}]}, {$not: {livemode: true}}]",
            True,
        ),  # nesting
    ],
)
def test_logical_operators(query: str, expected: bool) -> None:
    assert query_matches(query, INVOICE) is expected


def test_the_documented_example_matches() -> None:
    f = parse(
        yaml.safe_load(
            r"""
            event_type: ["invoice.*", "charge.succeeded"]
            headers: {X-GitHub-Event: ["push", "pull_*"], X-Shop-Domain: "a.myshopify.com"}
            json:
              data.object.amount: {$gte: 1000}
              data.object.currency: {$in: [usd, eur]}
              type: "invoice.paid"
              $or: [{data.object.livemode: true}, {type: {$regex: "^test\\."}}]
            """
        )
    )
    headers = {"X-GitHub-Event": "push", "X-Shop-Domain": "a.myshopify.com"}
    live = b'{"type": "invoice.paid", "data": {"object": {"amount": 1000, "currency": "eur", "livemode": true}}}'
    assert f.matches("invoice.paid", headers, live)
    assert not f.matches("invoice.paid", headers, live.replace(b"true", b"false"))


@pytest.mark.parametrize(
    ("body", "query", "expected"),
    [
        (b"not json", "a: {$exists: false}", False),  # a body that is not JSON matches no query
        (b"not json", "a: {$ne: 1}", False),
        (b"", "a: {$ne: 1}", False),
        (b"\xff\xfe", "a: {$ne: 1}", False),
        (b'{"a": 1e400}', "a: {$exists: true}", False),  # orjson refuses infinity
        (b'[{"a": 1}]', "0.a: 1", True),  # a top-level list is indexed like any other
        (b"42", "a: {$exists: false}", True),  # JSON but not an object: every field is missing
        (b'{"a": {"0": "x"}}', "a.0: x", True),  # a numeric segment on a mapping is a key
        (b'{"a.b": 1}', "a.b: 1", False),  # dots always separate segments
    ],
)
def test_bodies(body: bytes, query: str, expected: bool) -> None:
    f = parse({"json": yaml.safe_load(query)})
    assert f.matches(None, {}, body) is expected


# Config errors, each with its key path.


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ("json: {amount: {$gtt: 5}}", f'{PATH}.json.amount: unknown operator "$gtt"'),
        (
            "json: {data.object.amount: {$gte: [1]}}",
            f"{PATH}.json.data.object.amount.$gte: expected a number or a string, got [1]",
        ),
        (
            "json: {amount: {$gt: true}}",
            f"{PATH}.json.amount.$gt: expected a number or a string, got True",
        ),
        (
            "json: {amount: {$lte: null}}",
            f"{PATH}.json.amount.$lte: expected a number or a string, got None",
        ),
        (
            "json: {currency: {$in: usd}}",
            f'{PATH}.json.currency.$in: expected a list of values, got "usd"',
        ),
        (
            "json: {currency: {$nin: 3}}",
            f"{PATH}.json.currency.$nin: expected a list of values, got 3",
        ),
        (
            "json: {a: {$exists: yes-please}}",
            f'{PATH}.json.a.$exists: expected true or false, got "yes-please"',
        ),
        ("json: {a: {$exists: 1}}", f"{PATH}.json.a.$exists: expected true or false, got 1"),
        (
            "json: {a: {$regex: 5}}",
            f"{PATH}.json.a.$regex: expected a regular expression string, got 5",
        ),
        (
            "json: {a: {$regex: '('}}",
            f'{PATH}.json.a.$regex: "(" is not a pattern RE2 can run: missing ): (',
        ),
        (
            r"json: {a: {$regex: '(a)\1'}}",
            f'{PATH}.json.a.$regex: "(a)\\\\1" is not a pattern RE2 can run: invalid escape sequence: \\1 (RE2 has no lookaround or backreferences)',
        ),
        (
            "json: {a: {$regex: 'x(?=y)'}}",
            f'{PATH}.json.a.$regex: "x(?=y)" is not a pattern RE2 can run: invalid perl operator: (?= (RE2 has no lookaround or backreferences)',
        ),
        ("json: {a: {$not: {$gtt: 1}}}", f'{PATH}.json.a.$not: unknown operator "$gtt"'),
        (
            "json: {a: {$not: {$lt: [1]}}}",
            f"{PATH}.json.a.$not.$lt: expected a number or a string, got [1]",
        ),
        (
            "json: {a: {$or: [{$gt: 1}]}}",
            f"{PATH}.json.a: $or combines queries: write $or: [{{<field>: ...}}, ...] beside fields",
        ),
        ("json: {$or: []}", f"{PATH}.json.$or: expected a non-empty list of queries, got []"),
        (
            "json: {$and: {a: 1}}",
            f"{PATH}.json.$and: expected a non-empty list of queries, got {{'a': 1}}",
        ),
        ("json: {$or: [{a: 1}, 5]}", f"{PATH}.json.$or[1]: expected a mapping, got 5"),
        ("json: {$or: [{a: {$gtt: 1}}]}", f'{PATH}.json.$or[0].a: unknown operator "$gtt"'),
        (
            "json: {$and: [{$or: [{b: {$in: 1}}]}]}",
            f"{PATH}.json.$and[0].$or[0].b.$in: expected a list of values, got 1",
        ),
        ("json: {$not: [1]}", f"{PATH}.json.$not: expected a mapping, got [1]"),
        ("json: {$nor: [{a: 1}]}", f'{PATH}.json: unknown operator "$nor"'),
        (
            "json: {$exists: true}",
            f"{PATH}.json: $exists applies to a field: write {{<field>: {{$exists: ...}}}}",
        ),
        ("json: {a..b: 1}", f"{PATH}.json.a..b: expected a dotted field path like data.object.id"),
        (
            "json: {created: 2024-01-01}",
            f"{PATH}.json.created: expected a string, number, true/false, null, list or mapping (quote dates), got datetime.date(2024, 1, 1)",
        ),
        (
            "json: {a: {$in: [1, 2024-01-01]}}",
            f"{PATH}.json.a.$in: expected a string, number, true/false, null, list or mapping (quote dates), got datetime.date(2024, 1, 1)",
        ),
        ("json: [a, b]", f"{PATH}.json: expected a mapping, got ['a', 'b']"),
        ("event_type: 5", f"{PATH}.event_type: expected a list of strings, got 5"),
        (
            "headers: {X-A: []}",
            f"{PATH}.headers.X-A: expected a glob or a non-empty list of globs, got []",
        ),
        (
            "headers: {X-A: [push, 1]}",
            f"{PATH}.headers.X-A: expected a glob or a non-empty list of globs, got ['push', 1]",
        ),
        ("headers: [X-A]", f"{PATH}.headers: expected a mapping, got ['X-A']"),
        ("event_types: [push]", f'{PATH}.event_types: unknown key (did you mean "event_type"?)'),
    ],
)
def test_config_errors_name_the_key_path(config: str, problem: str) -> None:
    assert problems_of(yaml.safe_load(config)) == [problem]


def test_every_mistake_is_reported_at_once() -> None:
    config = yaml.safe_load("json: {a: {$gtt: 1}, b: {$regex: '['}, $or: []}\nbogus: 1")
    assert len(problems_of(config)) == 4


def test_filter_that_is_not_a_mapping_is_a_config_error() -> None:
    assert problems_of(["push"]) == [f"{PATH}: expected a mapping, got ['push']"]


# Untrusted input never raises.

EVERYTHING = parse(
    yaml.safe_load(
        r"""
        event_type: ["*"]
        headers: {X-A: ["*"]}
        json:
          a.b.0.c: {$gte: 1, $lte: zzz, $in: [1, [1], {x: null}], $regex: "a+b"}
          d: {$exists: true, $ne: [1, {y: 2}], $not: {$nin: [true]}}
          $or: [{e: {$eq: {f: [1, 2.5, null, true]}}}, {$not: {g: {$lt: 0}}}]
        """
    )
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from("abcdefg0"), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    body=st.binary(),
    headers=st.dictionaries(st.text(), st.text()),
    event_type=st.none() | st.text(),
)
def test_arbitrary_bytes_and_headers_never_raise(
    body: bytes, headers: dict[str, str], event_type: str | None
) -> None:
    assert EVERYTHING.matches(event_type, headers, body) in (True, False)


@given(
    document=json_values, headers=st.dictionaries(st.sampled_from(["X-A", "x-a", "X-B"]), st.text())
)
def test_arbitrary_json_documents_never_raise(document: Any, headers: dict[str, str]) -> None:
    try:
        body = orjson.dumps(document)
    except orjson.JSONEncodeError:  # e.g. integers beyond 64 bits
        body = b"{}"
    assert EVERYTHING.matches("x", headers, body) in (True, False)
