"""Storing one batch: the device check, the rows, the detectors, in one transaction.

`BatchStore.store` sorts a batch into events and rejections, checks each event's
device against the registry (a cache, asked again for what it cannot vouch
for), and writes the rows and runs the detectors (the sink) in one
transaction. `BatchStore.store_isolating` stores a batch that failed twice a
part at a time, so that one message the database refuses, or that trips a bug
in a detector, is dead-lettered instead of holding up everything behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from domain.devices import DEVICE_KINDS, Device, DeviceType
from domain.events import Event, Rejection
from domain.topics import topic_for
from gateway.inflight import Inbound
from ingest import writer
from ingest.shards import Fenced
from ingest.registry import load_active_devices, upsert_devices

if TYPE_CHECKING:
    from gateway.service import EventSink

log = logging.getLogger(__name__)

# The kind a device gets when ``device_policy=auto`` registers it on first sight.
DEFAULT_KIND = {
    DeviceType.ELEVATOR: "lift",
    DeviceType.WATER: "meter",
    DeviceType.ACCESS: "entrance",
    DeviceType.ELDERLY: "home_hub",
}
assert all(DEFAULT_KIND[t] in DEVICE_KINDS[t] for t in DeviceType)

Stored = tuple[list[Event], int, list[Rejection]]  # (new events, duplicates, rejections)


class BatchStore:
    def __init__(
        self,
        *,
        device_policy: str,
        sink: EventSink | None,
        fence: Callable[[psycopg.Connection], Any] | None = None,
        communities: Callable[[], set[str]] | None = None,
    ) -> None:
        self.device_policy = device_policy
        self.sink = sink
        # Called last in every transaction that stores: it raises when this process
        # may no longer commit (see steward/shards.py), and the transaction rolls back.
        self.fence = fence
        self.devices: dict[str, Device] = {}
        # A shard's communities (None: all): the registry cache holds only their devices.
        self.communities = communities

    def load_devices(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            self.devices = load_active_devices(conn, communities=self.communities() if self.communities else None)

    def store(self, conn: psycopg.Connection, table: writer.EventsTable, batch: list[Inbound]) -> Stored:
        """Store messages in one transaction: (new events, duplicates, rejections)."""
        events: list[Event] = []
        rejections: list[Rejection] = []
        unsure: list[tuple[Event, bytes]] = []
        new_devices: dict[str, Device] = {}
        devices = self.devices
        for _, _, _, item, payload in batch:
            if type(item) is Event:
                known = devices.get(item.device_id)
                if (
                    known is not None
                    and known.community_id == item.community_id
                    and known.device_type is item.device_type
                ):
                    events.append(item)  # the common case, without a call
                else:
                    unsure.append((item, payload))
            else:
                rejections.append(item)  # type: ignore[arg-type]
        if unsure:
            accepted, refused, new_devices = self._check_devices(conn, unsure)
            events += accepted
            rejections += refused
        with conn.transaction():
            if new_devices:
                upsert_devices(conn, new_devices.values())
            result = writer.write_batch(conn, table, events, rejections)
            if self.sink and result.new_events:
                self.sink.process(conn, result.new_events)
            if self.fence:
                self.fence(conn)
        self.devices.update(new_devices)
        return result.new_events, result.duplicates, rejections

    def _check_devices(
        self, conn: psycopg.Connection, unsure: list[tuple[Event, bytes]]
    ) -> tuple[list[Event], list[Rejection], dict[str, Device]]:
        """The events of a batch whose device the cache does not vouch for: unknown, or
        known in another community or type. Their devices are looked up again, all in
        one query, so that a device registered, moved or retired a moment ago is
        judged by what the registry says now (a flood from an unknown device costs one
        query a batch). Returns the events to store, the rejections, and the devices
        that ``device_policy=auto`` registers."""
        ids = {e.device_id for e, _ in unsure}
        with conn.transaction():
            found = load_active_devices(conn, only=ids)
        devices = self.devices
        for device_id in ids:
            if device_id in found:
                devices[device_id] = found[device_id]
            else:  # retired or removed since the cache was filled
                devices.pop(device_id, None)
        accepted: list[Event] = []
        rejected: list[Rejection] = []
        new_devices: dict[str, Device] = {}
        for event, payload in unsure:
            device = found.get(event.device_id) or new_devices.get(event.device_id)
            if device is None and self.device_policy == "auto":
                device = new_devices[event.device_id] = Device(
                    device_id=event.device_id,
                    community_id=event.community_id,
                    device_type=event.device_type,
                    kind=DEFAULT_KIND[event.device_type],
                )
            problem = _device_problem(event, device)
            if problem is None:
                accepted.append(event)
            else:
                rejected.append(_reject(event, payload, "unknown_device", problem))
        return accepted, rejected, new_devices

    def store_isolating(
        self, conn: psycopg.Connection, table: writer.EventsTable, batch: list[Inbound], *, others_stored: bool
    ) -> Stored:
        """Store a batch that failed twice, a part at a time, to find the message(s) that
        make it fail: halves, then halves of the halves that fail, down to single
        messages. A message that fails on its own is dead-lettered (``internal_error``,
        with what went wrong; its payload is kept), so that one message the database
        refuses, or that trips a bug in a detector, cannot hold up everything behind it.

        But only when something else could be stored (another part of this batch, or
        another batch since this one first failed, ``others_stored``): when nothing can
        be, the fault is the whole stream's (a bug that fails every event), and
        dead-lettering the stream would not fix it, so the batch is retried as it is.
        Until that is known, a part that fails is set aside unsplit, which keeps a
        failing stream to about twice log2(batch size) attempts."""
        new_events: list[Event] = []
        duplicates = 0
        rejections: list[Rejection] = []
        refused: list[tuple[Inbound, Exception]] = []
        set_aside: list[list[Inbound]] = []
        evidence = others_stored
        first_failure: Exception | None = None
        todo = [batch]
        while todo:
            part = todo.pop()
            try:
                stored, dup, rej = self.store(conn, table, part)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the database went away: the batch is retried whole, as usual
            except Exception as exc:
                if not isolable(exc):
                    raise
                first_failure = first_failure or exc
                if self.sink:  # the failed part may have changed what the detectors hold
                    with conn.transaction():
                        self.sink.restore(conn)
                if len(part) == 1:
                    refused.append((part[0], exc))
                elif evidence or not set_aside and not refused:  # split the first failure at once
                    half = len(part) // 2
                    todo += [part[half:], part[:half]]  # popped from the end: in arrival order
                else:
                    set_aside.append(part)
                continue
            new_events += stored
            duplicates += dup
            rejections += rej
            if not evidence:
                evidence = True
                todo += reversed(set_aside)
                set_aside = []
        if not evidence:
            assert first_failure is not None
            raise first_failure  # nothing could be stored: not one message's doing
        letters = [_refused(message, exc) for message, exc in refused]
        for message, exc in refused:
            log.error("dead-lettering a message its batch cannot be stored with (%r): %r", exc, message[4][:200])
        if letters:
            with conn.transaction():
                writer.write_batch(conn, table, [], letters)
                if self.fence:
                    self.fence(conn)
            rejections += letters
        return new_events, duplicates, rejections


def isolable(exc: BaseException) -> bool:
    """Whether a failure may be one message's doing. The database refusing a value
    (class 22, data exceptions; class 23, a constraint) or a bug in our code may be;
    a schema or permission problem (undefined column, insufficient privilege) is the
    whole stream's, and dead-lettering the stream would not fix it: it is retried,
    and reported, until it is fixed."""
    if isinstance(exc, psycopg.Error):
        return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))
    return isinstance(exc, Exception) and not isinstance(exc, Fenced)


def _device_problem(event: Event, device: Device | None) -> str | None:
    if device is None:
        return f"device {event.device_id!r} is not registered (or retired)"
    if device.community_id != event.community_id:
        return f"device {event.device_id!r} is not registered in community {event.community_id!r}"
    if device.device_type != event.device_type:
        return f"device {event.device_id!r} is a {device.device_type} device, not {event.device_type}"
    return None


def _reject(event: Event, payload: bytes, reason: str, detail: str) -> Rejection:
    return Rejection(
        topic=topic_for(event.community_id, event.device_type, event.device_id, event.stream),
        reason=reason,
        detail=detail,
        received_at=event.received_at,
        payload=payload,
        community_id=event.community_id,
        device_id=event.device_id,
    )


def _refused(message: Inbound, exc: Exception) -> Rejection:
    item, payload = message[3], message[4]
    detail = f"storing it failed: {type(exc).__name__}: {str(exc).strip()}"[:2000].replace("\x00", "")
    if isinstance(item, Event):
        return _reject(item, payload, "internal_error", detail)
    return Rejection(
        topic=item.topic.replace("\x00", ""),
        reason="internal_error",
        detail=detail,
        received_at=item.received_at,
        payload=payload,
        community_id=item.community_id,
        device_id=item.device_id,
    )
