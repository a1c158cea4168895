"""Payload builders and waits shared by the gateway tests."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from domain.devices import Device, DeviceType
from gateway.service import EventSink, Gateway, GatewayConfig
from ingest.registry import upsert_devices

BASE_TS = 1_795_000_000_000  # epoch ms, 2026-11-18


def flow(device: str, i: int, *, community: str = "c1", ts_ms: int | None = None) -> tuple[str, bytes]:
    payload = {
        "id": f"m{i}",
        "ts": ts_ms if ts_ms is not None else BASE_TS + i,
        "type": "flow",
        "flow_lpm": (i % 50) / 10,
        "total_l": 1000 + i,
    }
    return f"community/{community}/water/{device}/telemetry", json.dumps(payload).encode()


def register_meters(dsn: str, n: int, community: str = "c1") -> list[str]:
    ids = [f"wm{i:05d}" for i in range(n)]
    with psycopg.connect(dsn) as conn:
        upsert_devices(
            conn,
            [
                Device(
                    device_id=d, community_id=community, device_type=DeviceType.WATER, kind="meter", building_id="b1"
                )
                for d in ids
            ],
        )
    return ids


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``condition`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def count(dsn: str, sql: str, *args: object) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute(sql, args).fetchone()[0])  # type: ignore[index]


def now_ms() -> int:
    """The wall clock, for streams into real worker processes (their clock is this machine's):
    a test of one in-process gateway sets its clock instead (GATEWAY_NOW)."""
    return int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)


# Where a test gateway's clock stands (Gateway(clock=...)): a day after BASE_TS, never this machine's time.
GATEWAY_NOW = dt.datetime.fromtimestamp(BASE_TS / 1000 + 86_400, dt.timezone.utc)
GATEWAY_NOW_MS = BASE_TS + 86_400_000


@contextmanager
def running_gateway(config: GatewayConfig, sink: EventSink | None = None) -> Iterator[Gateway]:
    """A started gateway, connected to its broker; stopped (drained) on the way out."""
    gw = Gateway(config, sink=sink).start()
    try:
        wait_for(lambda: gw.status()["broker_connected"], 10, "the gateway to connect")
        yield gw
    finally:
        gw.stop()
