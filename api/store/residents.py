"""Residents' personal data: kept apart from devices, shown unmasked only to roles that need it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import psycopg


@dataclass(frozen=True)
class ResidentRow:
    id: int
    community_id: str
    building_id: str | None
    unit_id: str | None
    device_id: str | None
    full_name: str
    phone: str
    emergency_contact_name: str
    emergency_contact_phone: str
    care_notes: str
    created_at: dt.datetime
    updated_at: dt.datetime
    masked: bool = False


_COLUMNS = ("id, community_id, building_id, unit_id, device_id, full_name, phone, emergency_contact_name, "
            "emergency_contact_phone, care_notes, created_at, updated_at")
EDITABLE = ("building_id", "unit_id", "device_id", "full_name", "phone", "emergency_contact_name",
            "emergency_contact_phone", "care_notes")


def mask_name(name: str) -> str:
    return name[:1] + "**" if name else ""  # fixed length: the length would tell too much


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    return "*" * max(len(digits) - 4, 3) + digits[-4:] if len(digits) > 4 else ("*" * len(digits))


def masked(resident: ResidentRow) -> ResidentRow:
    """What a role without the personal-data permission sees: where, not who."""
    return replace(
        resident,
        full_name=mask_name(resident.full_name),
        phone=mask_phone(resident.phone),
        emergency_contact_name=mask_name(resident.emergency_contact_name),
        emergency_contact_phone=mask_phone(resident.emergency_contact_phone),
        care_notes="",
        masked=True,
    )


def list_residents(conn: psycopg.Connection, *, communities: list[str], device_id: str | None = None,
                   after_id: int | None = None, limit: int = 100) -> list[ResidentRow]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM residents WHERE community_id = ANY(%(c)s) "
        "AND (%(d)s::text IS NULL OR device_id = %(d)s) AND (%(a)s::bigint IS NULL OR id > %(a)s) "
        "ORDER BY id LIMIT %(limit)s",
        {"c": communities, "d": device_id, "a": after_id, "limit": limit},
    ).fetchall()
    return [ResidentRow(*r) for r in rows]


def get_resident(conn: psycopg.Connection, *, resident_id: int, communities: list[str] | frozenset[str]) -> ResidentRow | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM residents WHERE id = %s AND community_id = ANY(%s)",
                       (resident_id, list(communities))).fetchone()
    return ResidentRow(*row) if row else None


def create_resident(conn: psycopg.Connection, *, community_id: str, values: dict[str, Any]) -> ResidentRow:
    cols = [k for k in EDITABLE if k in values]
    row = conn.execute(
        f"INSERT INTO residents (community_id, {', '.join(cols)}) VALUES (%s, {', '.join(['%s'] * len(cols))}) "
        f"RETURNING {_COLUMNS}",
        (community_id, *[values[c] for c in cols]),
    ).fetchone()
    assert row is not None
    return ResidentRow(*row)


def update_resident(conn: psycopg.Connection, *, resident_id: int, values: dict[str, Any]) -> ResidentRow:
    cols = [k for k in EDITABLE if k in values]
    row = conn.execute(
        f"UPDATE residents SET {''.join(f'{c} = %s, ' for c in cols)}updated_at = now() WHERE id = %s "
        f"RETURNING {_COLUMNS}",
        (*[values[c] for c in cols], resident_id),
    ).fetchone()
    assert row is not None
    return ResidentRow(*row)


def residents_for_devices(conn: psycopg.Connection, *, device_ids: list[str]) -> list[ResidentRow]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM residents WHERE device_id = ANY(%s) ORDER BY id",
                        (device_ids,)).fetchall()
    return [ResidentRow(*r) for r in rows]
