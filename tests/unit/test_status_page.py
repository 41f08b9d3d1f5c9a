"""domain.status_page: worst first, escaped, one headline for the whole tag."""

from __future__ import annotations

from domain.status_page import status_page_html, status_rows


def test_it_lists_the_worst_first_then_by_name() -> None:
    rows = [("b", "up"), ("a", "up"), ("c", "down"), ("d", "late"), ("e", "paused")]
    assert status_rows(rows) == [
        ("c", "down"),
        ("d", "late"),
        ("a", "up"),
        ("b", "up"),
        ("e", "paused"),
    ]


def test_its_headline_is_the_worst_status_and_user_text_is_escaped() -> None:
    page = status_page_html("web <prod>", [("x\u202e<script>", "up"), ("y", "late")], "now")
    assert "Some checks are late" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<title>web &lt;prod&gt; status</title>" in page
    assert "All systems up" in status_page_html("t", [("x", "up"), ("y", "paused")], "now")
