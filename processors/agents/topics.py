"""The worker's handle on a topic of the log: raw bytes both ways (the agents decode with
msgspec, built once), and the partition count the topic registry gives it."""

from __future__ import annotations

import faust

from schemas.topics import Topic


def log_topic(app: faust.App, topic: Topic) -> faust.TopicT:
    return app.topic(
        topic.topic_name, key_serializer="raw", value_serializer="raw", partitions=topic.partitions
    )
