"""Load teams, staff, contacts, schedules, escalation policies and maintenance windows from TOML (or a dict).

Validated with a message naming the field (``$.policies[0].steps[1].targets[0]``)
and, for a file, its line, before anything is written. Every reference (a
member's team, a contact's person, a rotation's participants, a policy's
targets) must be defined in the same file or already stored, in the same
community. Applying is an upsert in dependency order — teams, staff, contacts,
schedules, policies, windows — in the caller's one transaction: a schedule's
rotations and a policy's steps are replaced by the file's.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec
import psycopg


class ConfigError(ValueError):
    """The on-call configuration is invalid; the message names the field (and the line, for a file)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path or _path_in(message)
        self.line = line


_PATH = re.compile(r"(\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+)")


def _path_in(message: str) -> str | None:
    found = _PATH.search(message)
    return found.group(1) if found else None


TEAM_KINDS = ("engineering", "security", "cleaning", "elderly_care", "customer_service", "management")
STAFF_ROLES = ("operator", "technician", "guard", "steward", "cleaner", "team_lead", "supervisor", "manager")


class TeamConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    community_id: str
    kind: Literal["engineering", "security", "cleaning", "elderly_care", "customer_service", "management"]
    name: str
    skills: list[str] = []
    buildings: list[str] = []
    lead: str | None = None
    active: bool = True


class StaffConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    community_id: str
    name: str
    team: str | None = None
    role: Literal["operator", "technician", "guard", "steward", "cleaner", "team_lead", "supervisor",
                  "manager"] = "technician"
    skills: list[str] = []
    buildings: list[str] = []
    phone: str | None = None
    email: str | None = None
    max_open_orders: int = 5
    active: bool = True


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
    teams: list[TeamConfig] = []
    staff: list[StaffConfig] = []
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
    for i, st in enumerate(config.staff):
        if not 1 <= st.max_open_orders <= 100:
            raise ConfigError(f"$.staff[{i}].max_open_orders: must be from 1 to 100")
        if not st.name.strip():
            raise ConfigError(f"$.staff[{i}].name: must not be empty")
    for i, tm in enumerate(config.teams):
        if not tm.name.strip():
            raise ConfigError(f"$.teams[{i}].name: must not be empty")
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


def load_text(text: str, *, source: str | None = "on-call file") -> OnCallConfig:
    """Parse and validate TOML text; a ConfigError carries the line of the offending field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"{source}: {exc}" if source else str(exc),
                          line=int(found.group(1)) if found else None) from None
    try:
        return validate(doc)
    except ConfigError as exc:
        raise with_line(exc, text, source) from None


def with_line(exc: ConfigError, text: str, source: str | None) -> ConfigError:
    """The same error with the line of its field in ``text``: ``source:LINE: message``, or
    ``line LINE: message`` without a source."""
    line = locate(text, exc.path) if exc.path else None
    if source is None:
        return ConfigError(f"line {line}: {exc}" if line else str(exc), path=exc.path, line=line)
    where = f"{source}:{line}" if line else source
    return ConfigError(f"{where}: {exc}", path=exc.path, line=line)


def load_file(path: Path) -> OnCallConfig:
    return load_text(path.read_text(encoding="utf-8"), source=str(path))


_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.]+)\s*\]\]")
_ANY_HEADER = re.compile(r"^\s*\[")


def locate(text: str, path: str) -> int | None:
    """The 1-based line of ``$.section[i].sub[j].key`` in TOML written with ``[[section]]`` /
    ``[[section.sub]]`` headers (the header's line when the key is not written out)."""
    steps = re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?", path)
    lines = text.splitlines()
    start, end, prefix, found = 0, len(lines), "", None
    for name, index in steps:
        table = f"{prefix}.{name}" if prefix else name
        if index == "":
            key = re.compile(rf"^\s*{re.escape(name)}\s*=")
            for n in range(start, end):
                if key.match(lines[n]):
                    return n + 1
                if n > start and _ANY_HEADER.match(lines[n]) and not lines[n].lstrip().startswith(f"[[{prefix}."):
                    break
            return found
        seen = -1
        hit = None
        for n in range(start, end):
            m = _HEADER.match(lines[n])
            if m and m.group(1) == table:
                seen += 1
                if seen == int(index):
                    hit = n
                    break
        if hit is None:
            key = re.compile(rf"^\s*{re.escape(name)}\s*=")  # an inline array: the key's line
            for n in range(start, end):
                if key.match(lines[n]):
                    return n + 1
            return found
        stop = end
        for n in range(hit + 1, end):
            m = _HEADER.match(lines[n])
            if m and (m.group(1) == table or not m.group(1).startswith(table + ".")):
                stop = n
                break
        start, end, prefix, found = hit, stop, table, hit + 1
    return found


def check_references(conn: psycopg.Connection, config: OnCallConfig) -> None:
    """Every id the file refers to is defined in it or stored, in the same community."""

    def stored(sql: str, ident: str) -> str | None:
        row = conn.execute(sql, (ident,)).fetchone()
        return row[0] if row else None

    teams = {t.id: t.community_id for t in config.teams}
    staff = {p.id: p.community_id for p in config.staff}
    schedules = {s.id: s.community_id for s in config.schedules}

    def community_of(kind: str, ident: str) -> str | None:
        local = {"team": teams, "staff": staff, "schedule": schedules}[kind]
        if ident in local:
            return local[ident]
        return stored({"team": "SELECT community_id FROM teams WHERE team_id = %s",
                       "staff": "SELECT community_id FROM staff WHERE staff_id = %s",
                       "schedule": "SELECT community_id FROM oncall_schedules WHERE schedule_id = %s"}[kind], ident)

    def need(kind: str, ident: str, community: str | None, where: str) -> None:
        found = community_of(kind, ident)
        if found is None:
            raise ConfigError(f"{where}: no {kind} {ident!r} in this file or in the database")
        if community is not None and community != "*" and found != community:
            raise ConfigError(f"{where}: {kind} {ident!r} belongs to community {found!r}, not {community!r}")

    for i, t in enumerate(config.teams):
        if t.lead is not None:
            need("staff", t.lead, t.community_id, f"$.teams[{i}].lead")
    for i, p in enumerate(config.staff):
        if p.team is not None:
            need("team", p.team, p.community_id, f"$.staff[{i}].team")
    for i, c in enumerate(config.contacts):
        need("staff", c.staff_id, None, f"$.contacts[{i}].staff_id")
    for i, s in enumerate(config.schedules):
        for j, r in enumerate(s.rotations):
            for k, who in enumerate(r.participants):
                need("staff", who, s.community_id, f"$.schedules[{i}].rotations[{j}].participants[{k}]")
        for j, o in enumerate(s.overrides):
            need("staff", o.staff_id, s.community_id, f"$.schedules[{i}].overrides[{j}].staff_id")
    for i, p in enumerate(config.policies):
        for j, st in enumerate(p.steps):
            for k, text in enumerate(st.targets):
                target = parse_target(text, f"$.policies[{i}].steps[{j}].targets[{k}]")
                need(target["kind"], target["id"], p.community_id, f"$.policies[{i}].steps[{j}].targets[{k}]")


def apply_config(conn: psycopg.Connection, config: OnCallConfig) -> dict[str, int]:
    """Write a validated config in the caller's transaction; return counts per section.

    References are checked first (`check_references`), then everything is
    written in dependency order; the team-lead foreign key is deferred, so a
    team may name a lead defined further down.
    """
    check_references(conn, config)
    minutes = lambda m: dt.timedelta(minutes=m)
    for t in config.teams:
        conn.execute(
            "INSERT INTO teams (team_id, community_id, kind, name, skills, buildings, lead_staff_id, active)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (team_id) DO UPDATE SET"
            " community_id = EXCLUDED.community_id, kind = EXCLUDED.kind, name = EXCLUDED.name,"
            " skills = EXCLUDED.skills, buildings = EXCLUDED.buildings, lead_staff_id = EXCLUDED.lead_staff_id,"
            " active = EXCLUDED.active",
            (t.id, t.community_id, t.kind, t.name, t.skills, t.buildings, t.lead, t.active),
        )
    for p in config.staff:
        conn.execute(
            "INSERT INTO staff (staff_id, community_id, team_id, name, role, skills, buildings, phone, email,"
            " max_open_orders, active) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (staff_id) DO UPDATE SET community_id = EXCLUDED.community_id,"
            " team_id = EXCLUDED.team_id, name = EXCLUDED.name, role = EXCLUDED.role, skills = EXCLUDED.skills,"
            " buildings = EXCLUDED.buildings, phone = EXCLUDED.phone, email = EXCLUDED.email,"
            " max_open_orders = EXCLUDED.max_open_orders, active = EXCLUDED.active",
            (p.id, p.community_id, p.team, p.name, p.role, p.skills, p.buildings, p.phone, p.email,
             p.max_open_orders, p.active),
        )
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
        "teams": len(config.teams),
        "staff": len(config.staff),
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
