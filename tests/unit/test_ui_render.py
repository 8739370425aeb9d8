"""Links that keep a page's filters, and the query as templates read it."""

from __future__ import annotations

from gateway.ui.render import NOTICES, Query, page_url, short_id, static_url


def test_page_url_keeps_filters_and_drops_what_is_empty_or_none() -> None:
    query = {"q": "evt_1", "source": "", "cursor": "abc"}
    assert page_url("/admin/events", query, cursor=None) == "/admin/events?q=evt_1"
    assert page_url("/admin/events", query, cursor="xyz") == "/admin/events?q=evt_1&cursor=xyz"
    assert page_url("/admin/events") == "/admin/events"


def test_page_url_encodes_what_it_is_given() -> None:
    assert page_url("/admin/events", {"q": 'a&b="<x>"'}) == "/admin/events?q=a%26b%3D%22%3Cx%3E%22"


def test_an_absent_query_parameter_reads_as_empty_text() -> None:
    query = Query({"q": "x"})
    assert (query["q"], query["source"]) == ("x", "")
    assert "source" not in query  # reading it did not add it


def test_static_urls_carry_a_content_hash() -> None:
    static = static_url()
    url = static("inspector.css")
    assert url.startswith("/admin/static/inspector.css?v=") and len(url.split("=")[1]) == 10


def test_notices_are_fixed_texts_with_at_most_a_number() -> None:
    assert all(set(text.replace("{n}", "")) & set("<>&") == set() for _, text in NOTICES.values())
    assert short_id("019b76da-a800-7761-8a2a-81dd1bbd9b18") == "019b76da-a800"
