"""domain.notification_groups: several flips as one notification."""

from __future__ import annotations

import json

from domain.notification_groups import group_id, rendered_group
from domain.notification_texts import rendered_flip, webhook_body
from schemas.canaries import EmailConfig, Flip


def flip(i: int, status: str = "down") -> Flip:
    return Flip(f"can_{i}:{status}:due1", f"can_{i}", f"job-{i}", status, "missed", 100.0 + i)  # type: ignore[arg-type]


def test_a_group_of_one_is_that_flips_own_notification() -> None:
    alone = rendered_group([flip(1)])
    assert (alone.id, alone.webhook()) == (rendered_flip(flip(1)).id, webhook_body(flip(1)))


def test_it_lists_every_canary_once_in_one_notification() -> None:
    flips = [flip(i) for i in range(4)]
    notice = rendered_group(flips)
    assert notice.title == "4 canaries down: job-0, job-1, job-2, job-3"
    body = json.loads(notice.webhook())
    assert (body["event"], body["grouped"], body["id"]) == ("canary.down", True, notice.id)
    assert body["flips"] == [json.loads(webhook_body(f)) for f in flips]
    assert all(f"job-{i} is DOWN" in notice.text for i in range(4))
    assert notice.at == 103.0 and notice.severity == "critical" and not notice.resolves
    slack = json.loads(notice.slack())
    assert slack["text"].startswith(":red_circle: *4 canaries down")
    mail = notice.email(EmailConfig(to=["a@example.com"], host="h"))
    assert mail["Subject"] == f"[Coalmine] {notice.title}"


def test_a_long_group_names_ten_and_counts_the_rest() -> None:
    notice = rendered_group([flip(i, "up") for i in range(13)])
    assert notice.title.startswith("13 canaries up again: job-0, ")
    assert notice.title.endswith("job-9 and 3 more")
    assert notice.resolves and "job-12" in notice.text


def test_the_same_members_make_the_same_id_in_any_order() -> None:
    flips = [flip(i) for i in range(3)]
    assert group_id(flips) == group_id(flips[::-1]) == "can_0:down:due1+2"
