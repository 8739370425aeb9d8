"""Which events a route or target takes: globs on the event type and headers, a JSON query.

Pure: a `Filter` looks at the event type, the request headers and the raw body, and
never raises for any of them. Every key is optional; all present keys must match, and
an empty filter (`Filter.always()`) matches everything::

    filter:
      event_type: ["invoice.*", "charge.succeeded"]
      headers: {X-GitHub-Event: ["push", "pull_*"], X-Shop-Domain: a.myshopify.com}
      json:
        data.object.amount: {$gte: 1000}
        type: invoice.paid

`event_type` and `headers` are `fnmatch` globs, case-sensitive; header *names* are
case-insensitive. A missing header, or an event without a type, does not match.

`json` is a *query* on the body, which must be JSON (a body orjson refuses, such as
``1e400``, is not JSON); `json: {}` is no query at all. Each entry of a query must
hold: a dotted field path with its *condition*, or a logical operator::

    $and: [query, ...]   all hold       $and: [{type: invoice.paid}, {livemode: true}]
    $or:  [query, ...]   one holds      $or: [{livemode: true}, {type: {$regex: "^test\\\\."}}]
    $not: query          it does not    $not: {type: invoice.paid}

A condition is a bare value (meaning `$eq`) or a mapping of operators, all of which
must hold (`amount: {$gte: 100, $lt: 200}`)::

    $eq  value         deep equality; true is not 1     type: {$eq: invoice.paid}
    $ne  value         not $eq (so missing matches)     status: {$ne: void}
    $in  [values]      $eq one of them                  currency: {$in: [usd, eur]}
    $nin [values]      not $in (so missing matches)     currency: {$nin: [jpy]}
    $gt $gte $lt $lte  number with number or string with string, else no match
                                                        amount: {$gte: 1000}
    $exists bool       the field is present (a null is) deleted: {$exists: false}
    $regex pattern     RE2 search on a string           email: {$regex: "@example\\\\.com$"}
    $not condition     the condition does not hold      amount: {$not: {$gt: 5}}

`$regex` runs on RE2, in time linear in the length of the value whatever the pattern
(provider bodies are attacker input: a backtracking engine can be frozen by a crafted
value). RE2 has no backreferences or lookaround; a pattern that uses them is a config
error.

`$eq: null` matches an explicit null only; test absence with `$exists: false`. A
numeric path segment indexes a list (`items.0.sku`). As in MongoDB, when a field holds
a list, `$eq`, `$in`, `$regex` and the comparisons match if the list itself or any of
its elements does (`tags: bug` matches `["bug", "ui"]`); `$ne`, `$nin` and `$not`
negate them (`tags: {$ne: bug}` matches lists without "bug", and missing fields).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import re2

from gateway.body import NOT_JSON, parsed
from gateway.section import Section, show

Test = Callable[[Any], bool]
"""A compiled query (given the document) or condition (given a field's value)."""

_MISSING: Any = object()  # the value of a field that is not there
_COMPARE = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
_JSON_KINDS = "a string, number, true/false, null, list or mapping"


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed `filter:`; `headers` holds (lowercased name, globs) pairs."""

    event_types: tuple[str, ...] = ()
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    query: Test | None = None

    @classmethod
    def always(cls) -> Filter:
        """The filter that matches every event."""
        return cls()

    @property
    def reads_body(self) -> bool:
        """Whether deciding needs the body's JSON (a compressed body is inflated for it)."""
        return self.query is not None

    def matches(self, event_type: str | None, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the event passes; False, never an exception, for odd bodies or headers."""
        return (
            self._event_type_matches(event_type)
            # Most filters (every target's default) have no header rules: no generator then.
            and (not self.headers or all(_header_matches(headers, n, g) for n, g in self.headers))
            and (self.query is None or _query_matches(self.query, body))
        )

    def _event_type_matches(self, event_type: str | None) -> bool:
        if not self.event_types:
            return True
        return event_type is not None and any(fnmatchcase(event_type, p) for p in self.event_types)


def parse_filter(section: Section) -> Filter:
    """The filter in `section`, every mistake recorded with its key path (unknown keys too)."""
    event_types = section.text_list("event_type", ())
    headers = section.section("headers")
    rules = tuple(
        (name.lower(), headers.get(name, _globs, fallback=())) for name, _ in headers.items()
    )
    json = section.section("json")
    query = _query(json) if json.data else None
    section.done()
    return Filter(tuple(event_types), rules, query)


def _globs(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected a glob or a non-empty list of globs, got {show(value)}")
    return tuple(items)


def _header_matches(headers: Mapping[str, str], name: str, globs: tuple[str, ...]) -> bool:
    value = headers.get(name)
    if value is None:  # not every Mapping is case-insensitive: look again
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return isinstance(value, str) and any(fnmatchcase(value, glob) for glob in globs)


def _query_matches(query: Test, body: bytes) -> bool:
    document = parsed(body)
    return document is not NOT_JSON and query(document)


def _lookup(document: Any, path: tuple[str, ...]) -> Any:
    value = document
    for part in path:
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isascii() and part.isdigit() and len(part) < 10:
            index = int(part)
            value = value[index] if index < len(value) else _MISSING
        else:
            return _MISSING
    return value


# Queries: mappings of field paths and $and/$or/$not, evaluated on the whole document.


def _query(section: Section) -> Test:
    return _all([_entry(section, key, value) for key, value in section.items()])


def _entry(section: Section, key: str, value: Any) -> Test:
    if key in ("$and", "$or"):
        queries = [_query(item) for item in _subqueries(section, key, value)]
        return _all(queries) if key == "$and" else _any_of(queries)
    if key == "$not":
        return _negate(_query(section.section(key)))
    if key.startswith("$"):
        misplaced = f"{key} applies to a field: write {{<field>: {{{key}: ...}}}}"
        section.fail(misplaced if key in _OPERATORS else f"unknown operator {show(key)}")
        return _never
    path = tuple(key.split("."))
    if not all(path):
        section.fail("expected a dotted field path like data.object.id", key)
    condition = _condition(section, key, value)
    return lambda document: condition(_lookup(document, path))


def _subqueries(section: Section, key: str, value: Any) -> list[Section]:
    if not isinstance(value, list) or not value:
        section.fail(f"expected a non-empty list of queries, got {show(value)}", key)
        return []
    where = section.key_path(key)
    return [Section(item, f"{where}[{i}]", section.problems) for i, item in enumerate(value)]


# Conditions: a bare value or a mapping of operators, evaluated on one field's value.


def _condition(section: Section, key: str, value: Any) -> Test:
    if isinstance(value, Mapping) and any(str(k).startswith("$") for k in value):
        operators = Section(value, section.key_path(key), section.problems)
        return _all([_operator(operators, op, operand) for op, operand in operators.items()])
    return _build_eq(section, key, value)


def _operator(section: Section, op: str, operand: Any) -> Test:
    build = _OPERATORS.get(op)
    if build is not None:
        return build(section, op, operand)
    if op in ("$and", "$or"):
        section.fail(f"{op} combines queries: write {op}: [{{<field>: ...}}, ...] beside fields")
    else:
        section.fail(f"unknown operator {show(op)}")
    return _never


def _build_eq(section: Section, key: str, operand: Any) -> Test:
    value = _literal(section, key, operand)
    return _some(lambda v: _equal(v, value))


def _build_in(section: Section, key: str, operand: Any) -> Test:
    if not isinstance(operand, list):
        section.fail(f"expected a list of values, got {show(operand)}", key)
        return _never
    values = [_literal(section, key, item) for item in operand]
    return _some(lambda v: any(_equal(v, value) for value in values))


def _build_compare(section: Section, key: str, operand: Any) -> Test:
    if not (_is_number(operand) or isinstance(operand, str)):
        section.fail(f"expected a number or a string, got {show(operand)}", key)
        return _never
    compare = _COMPARE[key]
    return _some(lambda v: _same_kind(v, operand) and compare(v, operand))


def _build_exists(section: Section, key: str, operand: Any) -> Test:
    if not isinstance(operand, bool):
        section.fail(f"expected true or false, got {show(operand)}", key)
        return _never
    return lambda v: (v is not _MISSING) is operand


def _build_regex(section: Section, key: str, operand: Any) -> Test:
    if not isinstance(operand, str):
        section.fail(f"expected a regular expression string, got {show(operand)}", key)
        return _never
    try:
        pattern = re2.compile(operand, _RE2_OPTIONS)
    except re2.error as exc:
        section.fail(f"{show(operand)} is not a pattern RE2 can run: {_re2_reason(exc)}", key)
        return _never
    return _some(lambda v: isinstance(v, str) and pattern.search(v) is not None)


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the problem is reported with its key path instead
    return options


_RE2_OPTIONS = _re2_options()


def _re2_reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    if "perl operator" in text or "escape sequence: \\" in text:
        text += " (RE2 has no lookaround or backreferences)"
    return text


def _build_not(section: Section, key: str, operand: Any) -> Test:
    return _negate(_condition(section, key, operand))


def _negated(build: Callable[[Section, str, Any], Test]) -> Callable[[Section, str, Any], Test]:
    return lambda section, key, operand: _negate(build(section, key, operand))


_OPERATORS: dict[str, Callable[[Section, str, Any], Test]] = {
    "$eq": _build_eq,
    "$ne": _negated(_build_eq),
    "$in": _build_in,
    "$nin": _negated(_build_in),
    **dict.fromkeys(_COMPARE, _build_compare),
    "$exists": _build_exists,
    "$regex": _build_regex,
    "$not": _build_not,
}


def _literal(section: Section, key: str, value: Any) -> Any:
    if not _is_json(value):
        section.fail(f"expected {_JSON_KINDS} (quote dates), got {show(value)}", key)
    return value


def _is_json(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return value is None or isinstance(value, str | int | float | bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_kind(a: Any, b: Any) -> bool:
    return (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1; recursion is bounded by the config's value."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(v, b[k]) for k, v in a.items())
    return bool(a == b)


def _some(test: Test) -> Test:
    """`test` on the value, or on any of its elements when it is a list; missing fails."""

    def run(value: Any) -> bool:
        if value is _MISSING:
            return False
        return test(value) or (isinstance(value, list) and any(test(item) for item in value))

    return run


def _all(tests: list[Test]) -> Test:
    frozen = tuple(tests)
    return lambda value: all(test(value) for test in frozen)


def _any_of(tests: list[Test]) -> Test:
    frozen = tuple(tests)
    return lambda value: any(test(value) for test in frozen)


def _negate(test: Test) -> Test:
    return lambda value: not test(value)


def _never(value: Any) -> bool:
    return False
