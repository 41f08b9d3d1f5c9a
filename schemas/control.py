"""The records of the control topic: canary, channel and routing-rule definitions, compacted
by id, with their durable copy in ClickHouse's `control` table."""

from __future__ import annotations

import msgspec

from schemas.canaries import (
    CanaryDefined,
    CanaryDeleted,
    ChannelDefined,
    ChannelDeleted,
    Incident,
    IncidentAcknowledged,
)
from schemas.routing import RouteDefined, RouteDeleted

ControlRecord = (
    CanaryDefined | CanaryDeleted | ChannelDefined | ChannelDeleted | RouteDefined | RouteDeleted
    | Incident | IncidentAcknowledged
)  # fmt: skip
control_decoder = msgspec.json.Decoder(ControlRecord)  # type: ignore[arg-type]
