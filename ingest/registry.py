"""The device registry: which devices exist, in which community, building and unit."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from domain.devices import DEVICE_KINDS, Device, DeviceType

_COLUMNS = "device_id, community_id, device_type, kind, building_id, unit_id, name, attributes"


def check_device(device: Device) -> None:
    """Refuse a device record the rest of the system could not use, naming the field."""
    kinds = DEVICE_KINDS[DeviceType(device.device_type)]
    if device.kind not in kinds:
        raise ValueError(f"kind {device.kind!r} is not one of {sorted(kinds)} for {device.device_type} devices")


def upsert_devices(conn: psycopg.Connection, devices: Iterable[Device]) -> int:
    """Register devices, or update them in place; a retired device stays retired."""
    rows = []
    for d in devices:
        check_device(d)
        rows.append(
            (
                d.device_id,
                d.community_id,
                str(d.device_type),
                d.kind,
                d.building_id,
                d.unit_id,
                d.name,
                Jsonb(d.attributes),
            )
        )
    if not rows:
        return 0
    # In id order: two transactions registering the same devices then lock them in the
    # same order and cannot deadlock (the gateway's writers run side by side).
    rows.sort(key=lambda row: row[0])
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO devices ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (device_id) DO UPDATE SET community_id = EXCLUDED.community_id, "
            "device_type = EXCLUDED.device_type, kind = EXCLUDED.kind, building_id = EXCLUDED.building_id, "
            "unit_id = EXCLUDED.unit_id, name = EXCLUDED.name, attributes = EXCLUDED.attributes",
            rows,
        )
    return len(rows)


def load_active_devices(
    conn: psycopg.Connection, only: Iterable[str] | None = None, *, communities: Iterable[str] | None = None
) -> dict[str, Device]:
    """Every active device by id (the gateway's registry cache), those of ``only``, or
    those of ``communities`` (a shard's)."""
    out: dict[str, Device] = {}
    if only is None and communities is not None:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM devices WHERE status = 'active' AND community_id = ANY(%s)", (list(communities),)
        )
    elif only is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM devices WHERE status = 'active'")
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM devices WHERE status = 'active' AND device_id = ANY(%s)", (list(only),)
        )
    for row in rows:
        device = Device(
            device_id=row[0],
            community_id=row[1],
            device_type=DeviceType(row[2]),
            kind=row[3],
            building_id=row[4],
            unit_id=row[5],
            name=row[6],
            attributes=row[7] or {},
        )
        out[device.device_id] = device
    return out


def device_from_json(raw: bytes | str) -> Device:
    return msgspec.json.decode(raw, type=Device)
