"""The topic grammar: ``community/{community_id}/{device_type}/{device_id}/{stream}``."""

from __future__ import annotations

import re

import msgspec

from domain.devices import DeviceType, Stream

TOPIC_PREFIX = "community"
# "#" rather than +/+/+/+ so that a malformed topic reaches the gateway and is dead-lettered.
SUBSCRIPTION = "community/#"
# fullmatch, never match + "$": "$" also matches before a trailing newline ("m1\n").
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


class Topic(msgspec.Struct, frozen=True):
    community_id: str
    device_type: DeviceType
    device_id: str
    stream: Stream


class TopicError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def topic_for(community_id: str, device_type: str, device_id: str, stream: str) -> str:
    return f"{TOPIC_PREFIX}/{community_id}/{device_type}/{device_id}/{stream}"


def parse_topic(topic: str) -> Topic:
    """Split and check a topic; raises `TopicError` with a reason code and a message."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != TOPIC_PREFIX:
        raise TopicError(
            "bad_topic", f"topic {topic!r} is not community/{{community_id}}/{{device_type}}/{{device_id}}/{{stream}}"
        )
    _, community_id, device_type, device_id, stream = parts
    if not IDENTIFIER.fullmatch(community_id):
        raise TopicError("bad_topic", f"community_id {community_id!r} must be 1-64 of A-Z a-z 0-9 _ . -")
    if not IDENTIFIER.fullmatch(device_id):
        raise TopicError("bad_topic", f"device_id {device_id!r} must be 1-64 of A-Z a-z 0-9 _ . -")
    try:
        dtype = DeviceType(device_type)
    except ValueError:
        raise TopicError(
            "unknown_device_type", f"device_type {device_type!r} is not one of {', '.join(DeviceType)}"
        ) from None
    try:
        dstream = Stream(stream)
    except ValueError:
        raise TopicError("unknown_stream", f"stream {stream!r} is not one of {', '.join(Stream)}") from None
    return Topic(community_id, dtype, device_id, dstream)
