"""domain.runs: starts paired with their finishes, by run id or with the latest start."""

from __future__ import annotations

from domain.runs import Ping, durations, pair_runs


def test_a_finish_ends_the_latest_start_without_run_ids() -> None:
    runs = pair_runs([Ping(10, "start"), Ping(20, "start"), Ping(25, "success"), Ping(30, "fail")])
    assert [(r["started_at"], r["ended_at"], r["outcome"]) for r in runs] == [
        (10, None, "unfinished"),
        (20, 25, "success"),
    ]
    assert durations(runs) == [5]


def test_run_ids_pair_overlapping_runs() -> None:
    runs = pair_runs(
        [
            Ping(10, "start", "a"),
            Ping(12, "start", "b"),
            Ping(20, "fail", "a"),
            Ping(30, "success", "b"),
        ]
    )
    assert [(r["rid"], r["duration_s"], r["outcome"]) for r in runs] == [
        ("a", 10, "fail"),
        ("b", 18, "success"),
    ]


def test_a_finish_with_an_unknown_run_id_or_without_start_is_no_run() -> None:
    assert pair_runs([Ping(5, "success"), Ping(10, "start", "a"), Ping(11, "success", "z")]) == [
        {
            "started_at": 10,
            "ended_at": None,
            "duration_s": None,
            "outcome": "unfinished",
            "rid": "a",
        }
    ]


def test_log_pings_change_nothing() -> None:
    runs = pair_runs([Ping(10, "start"), Ping(11, "log"), Ping(15, "success")])
    assert durations(runs) == [5]
