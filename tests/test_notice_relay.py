"""The demo relays the simulated community's announcements into maintenance windows."""

from __future__ import annotations

import datetime as dt

import psycopg

from ingest.registry import upsert_devices
from simulators import build_fleet
from simulators.engine import Simulation
from simulators.scenarios import NOTICE_FAMILY
from steward.app import NoticeRelay


def test_each_notice_becomes_a_maintenance_window_once(database_url: str) -> None:
    fleet = build_fleet(seed=1, preset="building")
    with psycopg.connect(database_url) as conn:
        upsert_devices(conn, fleet.devices)
    simulation = Simulation(fleet, seed=1, duration=dt.timedelta(days=2))
    assert simulation.notices, "the simulation announced nothing: the test would prove nothing"
    relay = NoticeRelay(simulation, database_url)
    assert relay.relay_once() == len(simulation.notices)
    assert relay.relay_once() == 0  # nothing twice
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT scope, scope_id, device_type, starts_at, ends_at, reason FROM maintenance_windows"
        ).fetchall()
    expected = set()
    for n in simulation.notices:
        scopes = [("device", d) for d in n.device_ids] if n.scope == "device" else [(n.scope, n.scope_id)]
        for scope, scope_id in scopes:
            expected.add(
                (
                    scope,
                    scope_id,
                    NOTICE_FAMILY[n.type],
                    dt.datetime.fromtimestamp(n.start_ms / 1000, dt.timezone.utc),
                    dt.datetime.fromtimestamp(n.end_ms / 1000, dt.timezone.utc),
                    n.type,
                )
            )
    assert set(rows) == expected and len(rows) == len(expected)
    water = [r for r in rows if r[5] == "water_shutdown"]
    assert water and all(r[0] == "building" and r[2] == "water" for r in water)
