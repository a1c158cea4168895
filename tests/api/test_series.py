"""``/devices/{id}/series`` charts one quantity: one field of one event type on one stream.

A water meter's ``value`` is its flow on ``telemetry``/``flow`` and its battery on
``status``/``heartbeat``: averaging the two (what the default ``field=value`` did)
means nothing. Runs in the server's storage mode (``time_bucket`` on TimescaleDB,
``date_bin`` otherwise)."""

from __future__ import annotations

import datetime as dt

import psycopg
from tests.api.conftest import OWN, T0, World
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

RANGE = {"from": T0.isoformat(), "to": (T0 + dt.timedelta(hours=1)).isoformat(), "bucket": "1h"}


def _heartbeats(world: World, meter: str) -> None:
    """Two heartbeats in the second minute, beside the meter's twelve flow readings (0..11 from conftest)."""
    with psycopg.connect(world.dsn) as conn:
        for i, battery in enumerate((87.0, 85.0)):
            at = T0 + dt.timedelta(seconds=90 + 15 * i)
            conn.execute(
                "INSERT INTO events (time, received_at, community_id, device_id, device_type, stream, type, "
                "msg_id, value, fields) VALUES (%s, %s, %s, %s, 'water', 'status', 'heartbeat', %s, %s, %s)",
                (at, at, OWN, meter, f"hb{i}", battery, Jsonb({"battery": battery})))


def _get(client: TestClient, world: World, **params: str) -> dict:
    meter = world.meters[OWN]
    r = client.get(f"/devices/{meter}/series", params={**RANGE, **params},
                   headers=world.headers(f"operator-{OWN}"))
    return {"status": r.status_code, **r.json()}


def test_several_quantities_under_one_field_must_be_chosen_between(client: TestClient, world: World) -> None:
    _heartbeats(world, world.meters[OWN])
    mixed = _get(client, world)
    assert mixed["status"] == 422
    assert mixed["error"]["field"] == "query.type"
    assert "flow (telemetry)" in mixed["error"]["message"] and "heartbeat (status)" in mixed["error"]["message"]

    flow = _get(client, world, type="flow")
    assert (flow["status"], flow["stream"], flow["type"]) == (200, "telemetry", "flow")
    assert [(p["count"], p["min"], p["max"], p["avg"]) for p in flow["points"]] == [(12, 0.0, 11.0, 5.5)]

    battery = _get(client, world, type="heartbeat")
    assert (battery["stream"], battery["type"]) == ("status", "heartbeat")
    assert [(p["count"], p["min"], p["max"], p["avg"]) for p in battery["points"]] == [(2, 85.0, 87.0, 86.0)]

    by_stream = _get(client, world, stream="status")
    assert (by_stream["status"], by_stream["type"]) == (200, "heartbeat")


def test_a_field_only_one_type_carries_is_inferred(client: TestClient, world: World) -> None:
    _heartbeats(world, world.meters[OWN])
    flow = _get(client, world, field="flow_lpm")
    assert (flow["status"], flow["stream"], flow["type"]) == (200, "telemetry", "flow")
    assert flow["points"][0]["count"] == 12
    battery = _get(client, world, field="battery")
    assert (battery["stream"], battery["type"], battery["points"][0]["avg"]) == ("status", "heartbeat", 86.0)
    # Without heartbeats in the range, value is the flow alone and needs no choice.
    quiet = _get(client, world, **{"from": (T0 + dt.timedelta(minutes=2)).isoformat()})
    assert (quiet["status"], quiet["type"], quiet["points"][0]["count"]) == (200, "flow", 10)


def test_a_range_without_readings_is_empty_not_an_error(client: TestClient, world: World) -> None:
    empty = _get(client, world, **{"from": (T0 - dt.timedelta(days=2)).isoformat(),
                                   "to": (T0 - dt.timedelta(days=1)).isoformat()})
    assert (empty["status"], empty["stream"], empty["type"], empty["points"]) == (200, None, None, [])
    wrong = _get(client, world, stream="sideways")
    assert wrong["status"] == 422 and wrong["error"]["field"] == "query.stream"
