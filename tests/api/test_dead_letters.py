"""``/dead-letters`` names the device a rejected message came from, by its name in the letter's own community."""

from __future__ import annotations

import datetime as dt

import psycopg
from fastapi.testclient import TestClient

from tests.api.conftest import OTHER, OWN, T0, World


def test_a_dead_letter_names_its_device_within_its_community_only(world: World, client: TestClient) -> None:
    with psycopg.connect(world.dsn) as conn:
        conn.execute("UPDATE devices SET name = '0101 户水表' WHERE device_id = %s", (world.meters[OWN],))
        conn.execute("UPDATE devices SET name = 'far meter' WHERE device_id = %s", (world.meters[OTHER],))
        # A topic of this community naming the other community's device: its name must not show here.
        conn.execute(
            "INSERT INTO dead_letters (received_at, topic, reason, detail, community_id, device_id, payload,"
            " payload_size) VALUES (%s, %s, 'device_mismatch', 'x', %s, %s, %s, 3)",
            (T0 + dt.timedelta(seconds=1), f"community/{OWN}/water/{world.meters[OTHER]}/telemetry", OWN,
             world.meters[OTHER], b"{x}"))
    r = client.get("/dead-letters", headers=world.headers(f"admin-{OWN}"))
    assert r.status_code == 200, r.text
    named = {(d["device_id"], d["device_name"]) for d in r.json()["data"]}
    assert named == {(world.meters[OWN], "0101 户水表"), (world.meters[OTHER], None)}
    assert "far meter" not in r.text
