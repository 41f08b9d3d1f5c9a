"""coalmine.watch: what `coalmine canaries watch` prints, from two looks at the list."""

from __future__ import annotations

import io

from coalmine.watch import line_of, status_changes, watch


def canary(id_: str, status: str, **more: str) -> dict[str, str]:
    return {"id": id_, "name": f"job-{id_}", "status": status, **more}


def test_it_reports_new_changed_and_deleted_canaries_only() -> None:
    before = {"a": canary("a", "up"), "b": canary("b", "up"), "c": canary("c", "late")}
    after = {
        "a": canary("a", "up"),
        "b": canary("b", "down", down_after="2026-12-07T00:00:00.000Z"),
        "d": canary("d", "new"),
    }
    changes = status_changes(before, after)
    assert [(c["id"], c["from"], c["to"]) for c in changes] == [
        ("b", "up", "down"),
        ("d", None, "new"),
        ("c", "late", None),
    ]
    assert changes[0]["since"] == "2026-12-07T00:00:00.000Z"


def test_a_line_says_when_what_and_from_what() -> None:
    change = {
        "id": "can_1",
        "name": "nightly",
        "from": "up",
        "to": "down",
        "last_message": "exit 3",
    }
    assert (
        line_of(change, 0.25)
        == "1970-01-01T00:00:00.250Z  nightly (can_1)  up -> down  last message: 'exit 3'"
    )
    assert line_of({"id": "x", "name": "n", "from": None, "to": "new"}, 0).endswith(
        "(created) -> new"
    )


def test_it_prints_the_list_then_each_change() -> None:
    looks = iter([[canary("a", "up")], [canary("a", "up")], [canary("a", "late")]])
    out = io.StringIO()

    class Done(Exception):
        pass

    def fetch() -> list[dict[str, str]]:
        try:
            return next(looks)
        except StopIteration:
            raise Done from None

    try:
        watch(fetch, out, as_json=False, now=lambda: 0.0, sleep=lambda s: None)
    except Done:
        pass
    assert out.getvalue().splitlines() == [
        "watching 1 canaries (Ctrl-C to stop)",
        "1970-01-01T00:00:00.000Z  job-a (a)  up",
        "1970-01-01T00:00:00.000Z  job-a (a)  up -> late",
    ]


def test_canary_gauges_count_each_status_and_mark_each_canary() -> None:
    from runtime.metrics import canary_metrics_text

    text = canary_metrics_text([canary("a", "down"), canary("b", "up"), canary("c", "up")]).decode()
    assert (
        'coalmine_canaries{status="up"} 2.0' in text
        and 'coalmine_canaries{status="paused"} 0.0' in text
    )
    assert 'coalmine_canary_status{canary_id="a",name="job-a",status="down"} 1.0' in text
    assert 'coalmine_canary_status{canary_id="a",name="job-a",status="up"} 0.0' in text
