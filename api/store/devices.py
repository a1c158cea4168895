"""Device registry reads and writes for the API, always within the caller's communities."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from domain.devices import Device
from ingest.registry import check_device, upsert_devices


@dataclass(frozen=True)
class DeviceRow:
    device_id: str
    community_id: str
    device_type: str
    kind: str
    building_id: str | None
    unit_id: str | None
    name: str
    attributes: dict[str, Any]
    status: str
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    battery: float | None
    has_credentials: bool


_SELECT = (
    "SELECT d.device_id, d.community_id, d.device_type, d.kind, d.building_id, d.unit_id, d.name, d.attributes, "
    "d.status, d.created_at, d.last_seen_at, d.battery, "
    "EXISTS (SELECT 1 FROM device_credentials c WHERE c.device_id = d.device_id AND c.revoked_at IS NULL) "
    "FROM devices d "
)


def list_devices(conn: psycopg.Connection, *, communities: list[str], building_id: str | None = None,
                 device_type: str | None = None, status: str | None = None, after: str | None = None,
                 limit: int = 100) -> list[DeviceRow]:
    rows = conn.execute(
        _SELECT + "WHERE d.community_id = ANY(%(c)s) "
        "AND (%(b)s::text IS NULL OR d.building_id = %(b)s) AND (%(t)s::text IS NULL OR d.device_type = %(t)s) "
        "AND (%(s)s::text IS NULL OR d.status = %(s)s) AND (%(after)s::text IS NULL OR d.device_id > %(after)s) "
        "ORDER BY d.device_id LIMIT %(limit)s",
        {"c": communities, "b": building_id, "t": device_type, "s": status, "after": after, "limit": limit},
    ).fetchall()
    return [DeviceRow(*r) for r in rows]


def get_device(conn: psycopg.Connection, *, device_id: str, communities: list[str] | frozenset[str],
               for_update: bool = False) -> DeviceRow | None:
    row = conn.execute(
        _SELECT + "WHERE d.device_id = %s AND d.community_id = ANY(%s)" + (" FOR UPDATE OF d" if for_update else ""),
        (device_id, list(communities)),
    ).fetchone()
    return DeviceRow(*row) if row else None


def device_exists_anywhere(conn: psycopg.Connection, *, device_id: str) -> bool:
    return conn.execute("SELECT 1 FROM devices WHERE device_id = %s", (device_id,)).fetchone() is not None


def create_device(conn: psycopg.Connection, *, device: Device) -> None:
    check_device(device)
    upsert_devices(conn, [device])


def update_device(conn: psycopg.Connection, *, device_id: str, changes: dict[str, Any]) -> None:
    """Apply the given registry fields (kind, building_id, unit_id, name, attributes)."""
    allowed = {"kind", "building_id", "unit_id", "name", "attributes"}
    sets, values = [], []
    for key, value in changes.items():
        if key not in allowed:
            raise ValueError(f"{key} cannot be changed")
        sets.append(f"{key} = %s")
        values.append(Jsonb(value) if key == "attributes" else value)
    if sets:
        conn.execute(f"UPDATE devices SET {', '.join(sets)} WHERE device_id = %s", (*values, device_id))


def retire_device(conn: psycopg.Connection, *, device_id: str) -> None:
    conn.execute("UPDATE devices SET status = 'retired' WHERE device_id = %s", (device_id,))


def last_status(conn: psycopg.Connection, *, device_id: str) -> tuple[str, dt.datetime] | None:
    """The type and time of the device's latest message on its ``status`` stream (heartbeat/online/offline)."""
    row = conn.execute(
        "SELECT type, time FROM events WHERE device_id = %s AND stream = 'status' ORDER BY time DESC LIMIT 1",
        (device_id,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def store_credentials(conn: psycopg.Connection, *, device_id: str, username: str, password_hash: str) -> dt.datetime:
    row = conn.execute(
        "INSERT INTO device_credentials (device_id, username, password_hash) VALUES (%s, %s, %s) "
        "ON CONFLICT (device_id) DO UPDATE SET username = EXCLUDED.username, password_hash = EXCLUDED.password_hash, "
        "issued_at = now(), revoked_at = NULL RETURNING issued_at",
        (device_id, username, password_hash),
    ).fetchone()
    assert row is not None
    return row[0]


def revoke_credentials(conn: psycopg.Connection, *, device_id: str) -> str | None:
    """Mark the device's credentials revoked; returns the MQTT username that must leave the broker."""
    row = conn.execute(
        "UPDATE device_credentials SET revoked_at = now() WHERE device_id = %s AND revoked_at IS NULL RETURNING username",
        (device_id,),
    ).fetchone()
    return row[0] if row else None


def active_credential_hashes(conn: psycopg.Connection) -> dict[str, str]:
    """username → Mosquitto hash of every active device credential (to rebuild a password file)."""
    rows = conn.execute(
        "SELECT c.username, c.password_hash FROM device_credentials c JOIN devices d USING (device_id) "
        "WHERE c.revoked_at IS NULL AND d.status = 'active' ORDER BY c.username"
    ).fetchall()
    return {r[0]: r[1] for r in rows}
