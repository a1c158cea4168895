"""Where an MQTT message becomes an `Event` or a `Rejection` with its reason.

Pure: no I/O, the receive time and the limits are passed in, so the whole
contract is tested with tables of (topic, payload) pairs.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from domain.events import Event, Rejection
from domain.payloads import COMMON_FIELDS, DECODERS, PRIMARY_VALUE, Payload
from domain.topics import Topic, TopicError, parse_topic

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


def _reject(
    topic: str,
    payload: bytes,
    received_at: dt.datetime,
    reason: str,
    detail: str,
    community_id: str | None = None,
    device_id: str | None = None,
) -> Rejection:
    return Rejection(
        topic=topic,
        reason=reason,
        detail=detail,
        received_at=received_at,
        payload=payload,
        community_id=community_id,
        device_id=device_id,
    )


class _TypeInfo(msgspec.Struct, frozen=True):
    tag: str
    fields: tuple[str, ...]
    value_field: str | None


_TYPE_INFO: dict[type, _TypeInfo] = {}
_TOPICS: dict[str, Topic] = {}
_TOPIC_CACHE_MAX = 200_000  # a few topics per device; cleared when a fleet outgrows it


def _type_info(kind: type[Payload]) -> _TypeInfo:
    info = _TYPE_INFO.get(kind)
    if info is None:
        info = _TypeInfo(
            tag=kind.__struct_config__.tag,  # type: ignore[arg-type]
            fields=tuple(f for f in kind.__struct_fields__ if f not in COMMON_FIELDS),
            value_field=PRIMARY_VALUE.get(kind),
        )
        _TYPE_INFO[kind] = info
    return info


def _topic(topic: str) -> Topic:
    where = _TOPICS.get(topic)
    if where is None:
        where = parse_topic(topic)  # raises TopicError; bad topics are not cached
        if len(_TOPICS) >= _TOPIC_CACHE_MAX:
            _TOPICS.clear()
        _TOPICS[topic] = where
    return where


def validate_message(topic: str, payload: bytes, received_at: dt.datetime, limits: Limits) -> Event | Rejection:
    """The whole contract for one message. Runs for every message (the hot path)."""
    try:
        where = _topic(topic)
    except TopicError as exc:
        return _reject(topic, payload, received_at, exc.reason, exc.detail)
    cid, did = where.community_id, where.device_id
    if len(payload) > limits.max_payload_bytes:
        return _reject(
            topic,
            payload,
            received_at,
            "oversized",
            f"payload is {len(payload)} bytes, the limit is {limits.max_payload_bytes}",
            cid,
            did,
        )
    decoder = DECODERS.get((where.device_type, where.stream))
    if decoder is None:
        return _reject(
            topic,
            payload,
            received_at,
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
        return _reject(topic, payload, received_at, reason, message, cid, did)
    except msgspec.DecodeError as exc:
        return _reject(topic, payload, received_at, "malformed_json", str(exc), cid, did)
    if body.device_id is not None and body.device_id != did:
        return _reject(
            topic,
            payload,
            received_at,
            "device_mismatch",
            f"device_id {body.device_id!r} in the payload does not match {did!r} in the topic",
            cid,
            did,
        )
    try:
        ts = event_time(body.ts)
    except (ValueError, OverflowError, OSError) as exc:
        return _reject(topic, payload, received_at, "invalid_payload", f"{exc} - at `$.ts`", cid, did)
    if ts - received_at > limits.max_future:
        return _reject(
            topic,
            payload,
            received_at,
            "future_timestamp",
            f"ts {ts.isoformat()} is more than {limits.max_future} ahead of the gateway clock",
            cid,
            did,
        )
    info = _type_info(type(body))
    fields = {name: getattr(body, name) for name in info.fields}
    value = fields.get(info.value_field) if info.value_field else None
    return Event(
        community_id=cid,
        device_type=where.device_type,
        device_id=did,
        stream=where.stream,
        msg_id=body.id,
        type=info.tag,
        ts=ts,
        received_at=received_at,
        fields=fields,
        value=float(value) if value is not None else None,
    )


__all__ = ["Limits", "Rejection", "REJECT_REASONS", "validate_message", "event_time"]
