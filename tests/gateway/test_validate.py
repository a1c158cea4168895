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


# --- hostile payloads (issue 17, Why 9) ---------------------------------------------------------------------


@pytest.mark.parametrize("ts", ["1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59+00:00",
                                "2000-01-01T07:59:59+08:00", 0, 946_684_799_999])
def test_ts_before_2000_is_refused_in_both_forms(ts: object) -> None:
    result = validate_message(TOPIC, _flow(ts=ts), NOW, Limits())
    assert isinstance(result, Rejection), ts
    assert result.reason == "invalid_payload" and "before 2000-01-01" in result.detail and "$.ts" in result.detail


def test_ts_from_2000_is_taken_in_both_forms() -> None:
    for ts in ("2000-01-01T08:00:00+08:00", 946_684_800_000):
        assert isinstance(validate_message(TOPIC, _flow(ts=ts), NOW, Limits()), Event), ts


@pytest.mark.parametrize("nested", [
    b"[" * 5000 + b"]" * 5000,  # 10 KB of brackets, as the fuzz run sent (a stack trace per message then)
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b"[" * 33 + b"]" * 33,  # one past the documented limit
])
def test_nesting_past_the_limit_is_invalid_payload_without_a_traceback(nested: bytes,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    payload = b'{"id": "m1", "ts": %d, "type": "flow", "flow_lpm": 1.5, "extra": %s}' % (BASE_TS, nested)
    with caplog.at_level("DEBUG"):
        result = validate_message(TOPIC, payload, NOW, Limits())
    assert isinstance(result, Rejection)
    assert result.reason == "invalid_payload" and "nested deeper than 32 levels" in result.detail
    assert not [r for r in caplog.records if r.exc_info]


def test_nesting_within_the_limit_and_brackets_in_strings_are_fine() -> None:
    within = b"[" * 31 + b"]" * 31
    payload = b'{"id": "m1", "ts": %d, "type": "flow", "flow_lpm": 1.5, "extra": %s, "s": "%s"}' % (
        BASE_TS, within, b"[{" * 500)
    assert isinstance(validate_message(TOPIC, payload, NOW, Limits()), Event)


@pytest.mark.parametrize("topic", ["community/c1/water/wm00000\n/telemetry", "community/c1\n/water/wm00000/telemetry",
                                   "community/c1/water/wm00000/telemetry\n", "community/c1/water/\nwm00000/telemetry"])
def test_an_id_with_a_trailing_newline_is_a_bad_topic(topic: str) -> None:
    result = validate_message(topic, _flow(), NOW, Limits())
    assert isinstance(result, Rejection) and result.reason in ("bad_topic", "unknown_stream"), result
    assert result.community_id is None and result.device_id is None
