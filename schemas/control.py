"""The records of the control topic: canary, channel, routing-rule, maintenance-window and
silence definitions, compacted by id, with their durable copy in ClickHouse's `control` table."""

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
from schemas.quiet import SilenceDefined, WindowDefined
from schemas.routing import RouteDefined, RouteDeleted

ControlRecord = (
    CanaryDefined | CanaryDeleted | ChannelDefined | ChannelDeleted | RouteDefined | RouteDeleted
    | WindowDefined | SilenceDefined | Incident | IncidentAcknowledged
)  # fmt: skip
control_decoder = msgspec.json.Decoder(ControlRecord)  # type: ignore[arg-type]
