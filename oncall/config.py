"""Load contacts, schedules, escalation policies and maintenance windows from a TOML file (or a dict).

Validated with a message naming the field (``$.policies[0].steps[1].targets[0]``)
before anything is written; applying is an upsert: a schedule's rotations and
a policy's steps are replaced by the file's.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec
import psycopg


class ConfigError(ValueError):
    """The on-call configuration is invalid; the message names the field."""


class Contact(msgspec.Struct, forbid_unknown_fields=True):
    staff_id: str
    channel: Literal["webhook", "email", "push"]
    address: str = ""
    locale: Literal["zh-CN", "en"] = "zh-CN"
    enabled: bool = True


class RotationConfig(msgspec.Struct, forbid_unknown_fields=True):
    handoff_at: dt.datetime
    shift_hours: float
    participants: list[str]
    layer: int = 0
    active_from: dt.datetime | None = None
    active_until: dt.datetime | None = None


class OverrideConfig(msgspec.Struct, forbid_unknown_fields=True):
    staff_id: str
    starts_at: dt.datetime
    ends_at: dt.datetime


class ScheduleConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    community_id: str
    rotations: list[RotationConfig]
    name: str = ""
    overrides: list[OverrideConfig] = []


class StepConfig(msgspec.Struct, forbid_unknown_fields=True):
    targets: list[str]  # "staff:ID", "schedule:ID" or "team:ID"
    delay_minutes: float


class PolicyConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    community_id: str
    steps: list[StepConfig]
    tier: int | None = None
    name: str = ""
    repeat: int = 0
    ack_renotify_minutes: float = 30
    reminder_minutes: float = 15


class WindowConfig(msgspec.Struct, forbid_unknown_fields=True):
    community_id: str
    scope: Literal["device", "building", "community"]
    scope_id: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str = "maintenance"
    created_by: str = "config"
    device_type: str | None = None


class OnCallConfig(msgspec.Struct, forbid_unknown_fields=True):
    contacts: list[Contact] = []
    schedules: list[ScheduleConfig] = []
    policies: list[PolicyConfig] = []
    maintenance: list[WindowConfig] = []


def parse_target(text: str, where: str) -> dict[str, str]:
    kind, sep, ident = text.partition(":")
    if not sep or kind not in ("staff", "schedule", "team") or not ident:
        raise ConfigError(f"{where}: expected 'staff:ID', 'schedule:ID' or 'team:ID', got {text!r}")
    return {"kind": kind, "id": ident}


def _aware(value: dt.datetime | None, where: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ConfigError(f"{where}: needs a UTC offset (e.g. 2026-11-23T08:00:00+08:00)")


def validate(doc: dict[str, Any]) -> OnCallConfig:
    """Check a parsed document; raise ConfigError naming the first wrong field."""
    try:
        config = msgspec.convert(doc, OnCallConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"on-call config: {exc}") from None
    for i, s in enumerate(config.schedules):
        for j, r in enumerate(s.rotations):
            where = f"$.schedules[{i}].rotations[{j}]"
            _aware(r.handoff_at, f"{where}.handoff_at")
            _aware(r.active_from, f"{where}.active_from")
            _aware(r.active_until, f"{where}.active_until")
            if r.shift_hours <= 0:
                raise ConfigError(f"{where}.shift_hours: must be > 0")
            if not r.participants:
                raise ConfigError(f"{where}.participants: needs at least one staff id")
        for j, o in enumerate(s.overrides):
            where = f"$.schedules[{i}].overrides[{j}]"
            _aware(o.starts_at, f"{where}.starts_at")
            _aware(o.ends_at, f"{where}.ends_at")
            if o.ends_at <= o.starts_at:
                raise ConfigError(f"{where}.ends_at: must be after starts_at")
    for i, p in enumerate(config.policies):
        where = f"$.policies[{i}]"
        if p.tier is not None and p.tier not in (1, 2, 3):
            raise ConfigError(f"{where}.tier: must be 1, 2 or 3")
        if not 0 <= p.repeat <= 10:
            raise ConfigError(f"{where}.repeat: must be between 0 and 10")
        if not p.steps:
            raise ConfigError(f"{where}.steps: needs at least one step")
        if p.ack_renotify_minutes < 0 or p.reminder_minutes < 0:
            raise ConfigError(f"{where}: ack_renotify_minutes and reminder_minutes must be >= 0 (0 turns them off)")
        for j, st in enumerate(p.steps):
            if st.delay_minutes < 0:
                raise ConfigError(f"{where}.steps[{j}].delay_minutes: must be >= 0")
            if not st.targets:
                raise ConfigError(f"{where}.steps[{j}].targets: needs at least one target")
            for k, t in enumerate(st.targets):
                parse_target(t, f"{where}.steps[{j}].targets[{k}]")
    for i, w in enumerate(config.maintenance):
        where = f"$.maintenance[{i}]"
        _aware(w.starts_at, f"{where}.starts_at")
        _aware(w.ends_at, f"{where}.ends_at")
        if w.ends_at <= w.starts_at:
            raise ConfigError(f"{where}.ends_at: must be after starts_at")
    return config


def load_file(path: Path) -> OnCallConfig:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return validate(doc)


def apply_config(conn: psycopg.Connection, config: OnCallConfig) -> dict[str, int]:
    """Write a validated config in the caller's transaction; return counts per section."""
    minutes = lambda m: dt.timedelta(minutes=m)
    for c in config.contacts:
        conn.execute(
            "INSERT INTO oncall_contacts (staff_id, channel, address, locale, enabled) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (staff_id, channel) DO UPDATE SET address = EXCLUDED.address, locale = EXCLUDED.locale,"
            " enabled = EXCLUDED.enabled",
            (c.staff_id, c.channel, c.address, c.locale, c.enabled),
        )
    for s in config.schedules:
        conn.execute(
            "INSERT INTO oncall_schedules (schedule_id, community_id, name) VALUES (%s, %s, %s)"
            " ON CONFLICT (schedule_id) DO UPDATE SET community_id = EXCLUDED.community_id, name = EXCLUDED.name",
            (s.id, s.community_id, s.name),
        )
        conn.execute("DELETE FROM oncall_rotations WHERE schedule_id = %s", (s.id,))
        for r in s.rotations:
            conn.execute(
                "INSERT INTO oncall_rotations (schedule_id, layer, handoff_at, shift, participants, active_from,"
                " active_until) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (s.id, r.layer, r.handoff_at, dt.timedelta(hours=r.shift_hours), r.participants, r.active_from,
                 r.active_until),
            )  # fmt: skip
        for o in s.overrides:
            add_override(conn, schedule_id=s.id, staff_id=o.staff_id, starts_at=o.starts_at, ends_at=o.ends_at)
    for p in config.policies:
        conn.execute(
            "INSERT INTO oncall_policies (policy_id, community_id, tier, name, repeat, ack_renotify_after,"
            " reminder_every) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (policy_id) DO UPDATE SET"
            " community_id = EXCLUDED.community_id, tier = EXCLUDED.tier, name = EXCLUDED.name,"
            " repeat = EXCLUDED.repeat, ack_renotify_after = EXCLUDED.ack_renotify_after,"
            " reminder_every = EXCLUDED.reminder_every",
            (p.id, p.community_id, p.tier, p.name, p.repeat, minutes(p.ack_renotify_minutes), minutes(p.reminder_minutes)),
        )
        conn.execute("DELETE FROM oncall_policy_steps WHERE policy_id = %s", (p.id,))
        for position, st in enumerate(p.steps):
            targets = [parse_target(t, "target") for t in st.targets]
            conn.execute(
                "INSERT INTO oncall_policy_steps (policy_id, position, targets, delay) VALUES (%s, %s, %s, %s)",
                (p.id, position, json.dumps(targets), minutes(st.delay_minutes)),
            )
    for w in config.maintenance:
        add_maintenance_window(
            conn, community_id=w.community_id, scope=w.scope, scope_id=w.scope_id, starts_at=w.starts_at,
            ends_at=w.ends_at, reason=w.reason, created_by=w.created_by, device_type=w.device_type,
        )  # fmt: skip
    return {
        "contacts": len(config.contacts),
        "schedules": len(config.schedules),
        "policies": len(config.policies),
        "maintenance": len(config.maintenance),
    }


def add_override(
    conn: psycopg.Connection, *, schedule_id: str, staff_id: str, starts_at: dt.datetime, ends_at: dt.datetime
) -> int:
    """Put ``staff_id`` on call for a schedule between two instants (beats every rotation layer)."""
    (override_id,) = conn.execute(
        "INSERT INTO oncall_overrides (schedule_id, staff_id, starts_at, ends_at) VALUES (%s, %s, %s, %s)"
        " RETURNING override_id",
        (schedule_id, staff_id, starts_at, ends_at),
    ).fetchone()  # type: ignore[misc]
    return int(override_id)


def add_maintenance_window(
    conn: psycopg.Connection,
    *,
    community_id: str,
    scope: Literal["device", "building", "community"],
    scope_id: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str = "maintenance",
    created_by: str = "system",
    device_type: str | None = None,
) -> int:
    """Silence a device, building or community between two instants (never a Level 1 alert).

    Writes the detectors' ``maintenance_windows`` table, so detection and
    paging are silenced by the same row.
    """
    if ends_at <= starts_at:
        raise ConfigError("maintenance window: ends_at must be after starts_at")
    (window_id,) = conn.execute(
        "INSERT INTO maintenance_windows (community_id, scope, scope_id, device_type, starts_at, ends_at, reason,"
        " created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (community_id, scope, scope_id, device_type, starts_at, ends_at, reason, created_by),
    ).fetchone()  # type: ignore[misc]
    return int(window_id)
