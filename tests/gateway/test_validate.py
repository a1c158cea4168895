"""Validation of single messages (pure: a table of payloads, no broker, no database)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from domain.events import Event, Rejection
from gateway.validate import Limits, validate_message
from tests.gateway.helpers import BASE_TS

NOW = dt.datetime.fromtimestamp(BASE_TS / 1000, dt.timezone.utc)
TOPIC = "community/c1/water/wm00000/telemetry"


def _flow(**extra: object) -> bytes:
    return json.dumps({"id": "m1", "ts": BASE_TS, "type": "flow", "flow_lpm": 1.5, **extra}).encode()


@pytest.mark.parametrize(
    "payload",
    [
        _flow(id="a\u0000b"),  # json.dumps writes the escape \u0000
        b'{"id": "m1", "ts": %d, "type": "flow", "flow_lpm": 1.5, "extra": "\\\\\\u0000"}' % BASE_TS,
        b'{"id": "m1", "ts": %d, "type": "flow", "flow_lpm": 1.5, "k\\u0000": 1}' % BASE_TS,
    ],
)
def test_a_nul_character_anywhere_is_refused_with_its_reason(payload: bytes) -> None:
    result = validate_message(TOPIC, payload, NOW, Limits())
    assert isinstance(result, Rejection)
    assert result.reason == "invalid_payload" and "NUL" in result.detail


def test_the_text_backslash_u0000_is_not_a_nul() -> None:
    result = validate_message(TOPIC, _flow(id="a\\u0000b"), NOW, Limits())  # a backslash, then "u0000"
    assert isinstance(result, Event)
    assert result.msg_id == "a\\u0000b"
