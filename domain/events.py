"""The normalised event: what a valid MQTT message becomes after the gateway."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from domain.devices import DeviceType, Stream


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One validated device message.

    ``ts`` is the device's event time (always UTC-aware); ``received_at`` is when
    the gateway took the message off the broker. Detectors reason in ``ts``.
    ``fields`` holds the type-specific fields of the payload schema; ``value`` the
    type's primary numeric reading (flow, pressure, battery...) when it has one.

    ``gc=False``: the gateway holds tens of thousands of these in flight and they
    can never be part of a reference cycle (``fields`` is a dict of plain
    values), so the garbage collector need not walk them (0.5 us a message).
    """

    community_id: str
    device_type: DeviceType
    device_id: str
    stream: Stream
    msg_id: str
    type: str
    ts: dt.datetime
    received_at: dt.datetime
    fields: dict[str, Any]
    value: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What makes a message unique: a device never reuses an id."""
        return (self.device_id, self.msg_id)


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """A message the gateway refused; stored in the dead-letter table with its reason."""

    topic: str
    reason: str
    detail: str
    received_at: dt.datetime
    payload: bytes
    community_id: str | None = None
    device_id: str | None = None
