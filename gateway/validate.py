"""Where an MQTT message becomes an `Event` or a `Rejection` with its reason.

Pure: no I/O, the receive time and the limits are passed in, so the whole
contract is tested with tables of (topic, payload) pairs.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from domain.devices import Stream
from domain.events import Event, Rejection
from domain.payloads import DECODERS, PRIMARY_VALUE, Payload, payload_fields
from domain.topics import TopicError, parse_topic

UTC = dt.timezone.utc
EPOCH_MS_MIN = 946_684_800_000  # 2000-01-01: anything older is a device clock that was never set.

RejectReason = Literal[
    "bad_topic",
    "unknown_device_type",
    "unknown_stream",
    "oversized",
    "malformed_json",
    "invalid_payload",
    "unknown_type",
    "future_timestamp",
    "device_mismatch",
    "unknown_device",
]
REJECT_REASONS: tuple[str, ...] = RejectReason.__args__  # type: ignore[attr-defined]


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    max_payload_bytes: int = 64 * 1024
    max_future: dt.timedelta = dt.timedelta(minutes=5)


def event_time(ts: int | dt.datetime) -> dt.datetime:
    """Normalise the contract's two timestamp forms to an aware UTC datetime."""
    if isinstance(ts, int):
        if ts < EPOCH_MS_MIN:
            raise ValueError(f"ts {ts} is before 2000-01-01 (epoch milliseconds expected)")
        return dt.datetime.fromtimestamp(ts / 1000, tz=UTC)
    if ts.tzinfo is None:
        raise ValueError("ts must carry a UTC offset (RFC 3339), e.g. 2026-11-22T08:00:00Z")
    return ts.astimezone(UTC)


def validate_message(topic: str, payload: bytes, received_at: dt.datetime, limits: Limits) -> Event | Rejection:
    def reject(reason: str, detail: str, community_id: str | None = None, device_id: str | None = None) -> Rejection:
        return Rejection(
            topic=topic,
            reason=reason,
            detail=detail,
            received_at=received_at,
            payload=payload,
            community_id=community_id,
            device_id=device_id,
        )

    try:
        where = parse_topic(topic)
    except TopicError as exc:
        return reject(exc.reason, exc.detail)
    cid, did = where.community_id, where.device_id
    if len(payload) > limits.max_payload_bytes:
        return reject("oversized", f"payload is {len(payload)} bytes, the limit is {limits.max_payload_bytes}", cid, did)
    decoder = DECODERS.get((where.device_type, where.stream))
    if decoder is None:
        return reject(
            "unknown_stream",
            f"{where.device_type} devices publish no {where.stream} stream",
            cid,
            did,
        )
    try:
        body: Payload = decoder.decode(payload)
    except msgspec.ValidationError as exc:
        message = str(exc)
        reason = "unknown_type" if message.endswith("at `$.type`") else "invalid_payload"
        return reject(reason, message, cid, did)
    except msgspec.DecodeError as exc:
        return reject("malformed_json", str(exc), cid, did)
    if body.device_id is not None and body.device_id != did:
        return reject("device_mismatch", f"device_id {body.device_id!r} in the payload does not match {did!r} in the topic", cid, did)
    try:
        ts = event_time(body.ts)
    except (ValueError, OverflowError, OSError) as exc:
        return reject("invalid_payload", f"{exc} - at `$.ts`", cid, did)
    if ts - received_at > limits.max_future:
        return reject("future_timestamp", f"ts {ts.isoformat()} is more than {limits.max_future} ahead of the gateway clock", cid, did)
    kind = type(body)
    fields = payload_fields(body)
    value_field = PRIMARY_VALUE.get(kind)
    value = fields.get(value_field) if value_field else None
    return Event(
        community_id=cid,
        device_type=where.device_type,
        device_id=did,
        stream=where.stream,
        msg_id=body.id,
        type=kind.__struct_config__.tag,  # type: ignore[arg-type]
        ts=ts,
        received_at=received_at,
        fields=fields,
        value=float(value) if value is not None else None,
    )


__all__ = ["Limits", "Rejection", "REJECT_REASONS", "Stream", "validate_message", "event_time"]
