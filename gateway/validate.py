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
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)  # the same bound for an RFC 3339 ts

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
    # Arrays and objects inside one another, at most (the contract's payloads are flat: this only bounds the
    # extra fields firmware may add, which are ignored).
    max_depth: int = 32


def event_time(ts: int | dt.datetime) -> dt.datetime:
    """Normalise the contract's two timestamp forms to an aware UTC datetime."""
    if isinstance(ts, int):
        if ts < EPOCH_MS_MIN:
            raise ValueError(f"ts {ts} is before 2000-01-01 (epoch milliseconds expected)")
        return dt.datetime.fromtimestamp(ts / 1000, tz=UTC)
    if ts.tzinfo is None:
        raise ValueError("ts must carry a UTC offset (RFC 3339), e.g. 2026-11-22T08:00:00Z")
    if ts < EARLIEST:
        raise ValueError(f"ts {ts.isoformat()} is before 2000-01-01")
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


_TOPICS: dict[str, Topic] = {}
_RAW_TOPICS: dict[bytes, tuple[str, Topic, msgspec.json.Decoder | None]] = {}
_TOPIC_CACHE_MAX = 200_000  # a few topics per device; cleared when a fleet outgrows it
_asdict = msgspec.structs.asdict
_fromtimestamp = dt.datetime.fromtimestamp


def _topic(topic: str) -> Topic:
    where = _TOPICS.get(topic)
    if where is None:
        where = parse_topic(topic)  # raises TopicError; bad topics are not cached
        if len(_TOPICS) >= _TOPIC_CACHE_MAX:
            _TOPICS.clear()
        _TOPICS[topic] = where
    return where


def validate_message(topic: str, payload: bytes, received_at: dt.datetime, limits: Limits) -> Event | Rejection:
    """The whole contract for one message whose topic is already text."""
    try:
        where = _topic(topic)
    except TopicError as exc:
        return _reject(topic, payload, received_at, exc.reason, exc.detail)
    return _validate_payload(topic, where, _decoder(where), payload, received_at, limits)


def _decoder(where: Topic) -> msgspec.json.Decoder | None:
    return DECODERS.get((where.device_type, where.stream))


def validate_publish(topic: bytes, payload: bytes, received_at: dt.datetime, limits: Limits) -> Event | Rejection:
    """The whole contract for one message as it came off the wire (the gateway's hot path).

    Topics repeat (a few per device), so the UTF-8 decoding and the parsing are
    cached by the raw bytes, with the payload decoder the topic selects.
    """
    known = _RAW_TOPICS.get(topic)
    if known is None:
        try:
            text = topic.decode("utf-8")
        except UnicodeDecodeError:  # MQTT topics are UTF-8; a broker should never pass this on
            text = topic.decode("utf-8", "replace")
            return _reject(text, payload, received_at, "bad_topic", "topic is not valid UTF-8")
        try:
            where = _topic(text)
        except TopicError as exc:
            return _reject(text, payload, received_at, exc.reason, exc.detail)
        if len(_RAW_TOPICS) >= _TOPIC_CACHE_MAX:
            _RAW_TOPICS.clear()
        known = _RAW_TOPICS[topic] = (text, where, _decoder(where))
    text, where, decoder = known
    return _validate_payload(text, where, decoder, payload, received_at, limits)


def _validate_payload(
    topic: str,
    where: Topic,
    decoder: msgspec.json.Decoder | None,
    payload: bytes,
    received_at: dt.datetime,
    limits: Limits,
) -> Event | Rejection:
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
    if b"\\u0000" in payload and _escapes_nul(payload):
        # PostgreSQL text cannot hold U+0000: such a message would be refused by every
        # attempt to store its batch, and hold up the valid messages with it.
        return _reject(
            topic,
            payload,
            received_at,
            "invalid_payload",
            "a string contains \\u0000 (NUL), which cannot be stored",
            cid,
            did,
        )
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
    if payload.count(b"[") + payload.count(b"{") > limits.max_depth and _depth(payload) > limits.max_depth:
        return _reject(topic, payload, received_at, "invalid_payload",
                       f"arrays and objects are nested deeper than {limits.max_depth} levels", cid, did)
    try:
        body: Payload = decoder.decode(payload)
    except RecursionError:  # past the depth check only if it is wrong; never a traceback per message
        return _reject(topic, payload, received_at, "invalid_payload", "nested too deep to decode", cid, did)
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
    raw_ts = body.ts
    try:
        if type(raw_ts) is int and raw_ts >= EPOCH_MS_MIN:
            ts = _fromtimestamp(raw_ts / 1000, UTC)  # the common case, without event_time's checks
        else:
            ts = event_time(raw_ts)
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
    tag, value_field = _TYPE_INFO.get(type(body)) or _type_info(type(body))
    fields = _asdict(body)
    del fields["id"], fields["ts"], fields["device_id"]  # COMMON_FIELDS: stored in their own columns
    value = fields[value_field] if value_field else None
    return Event(
        community_id=cid,
        device_type=where.device_type,
        device_id=did,
        stream=where.stream,
        msg_id=body.id,
        type=tag,
        ts=ts,
        received_at=received_at,
        fields=fields,
        value=float(value) if value is not None else None,
    )


def _depth(payload: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings do not count).

    Only run on a payload with more brackets than the limit allows, which the contract's flat payloads never have.
    """
    deepest = depth = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _escapes_nul(payload: bytes) -> bool:
    """Whether the JSON text has a ``\\u0000`` escape (and not the literal text ``\\u0000``,
    written ``\\\\u0000``): an even number of backslashes before it means the last
    one starts the escape."""
    at = payload.find(b"\\u0000")
    while at >= 0:
        before = at
        while before > 0 and payload[before - 1] == 0x5C:
            before -= 1
        if (at - before) % 2 == 0:
            return True
        at = payload.find(b"\\u0000", at + 1)
    return False


def _payload_types() -> list[type[Payload]]:
    found, todo = [], list(Payload.__subclasses__())
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    return found


def _type_info(kind: type[Payload]) -> tuple[str, str | None]:
    info = _TYPE_INFO[kind] = (kind.__struct_config__.tag, PRIMARY_VALUE.get(kind))  # type: ignore[assignment]
    return info


# Per payload class: its ``type`` tag and the field that is its primary value (filled
# at import; a class defined later is added on first sight).
_TYPE_INFO: dict[type, tuple[str, str | None]] = {}
for _kind in _payload_types():
    _type_info(_kind)
assert COMMON_FIELDS == {"id", "ts", "device_id"}, "update the del in _validate_payload"


__all__ = ["Limits", "Rejection", "REJECT_REASONS", "validate_message", "validate_publish", "event_time"]
