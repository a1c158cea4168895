"""Who is on call now: pure functions of a schedule and an instant."""

from __future__ import annotations

import datetime as dt

from oncall.model import Directory, IncidentState, MaintenanceWindow, Rotation, Schedule, Target
from oncall.why import Reason


def rotation_on_call(rotation: Rotation, now: dt.datetime) -> str | None:
    """The participant whose turn covers ``now``, or None outside the rotation's active span."""
    if now < rotation.handoff_at:
        return None
    if rotation.active_from is not None and now < rotation.active_from:
        return None
    if rotation.active_until is not None and now >= rotation.active_until:
        return None
    turns = int((now - rotation.handoff_at) // rotation.shift)
    return rotation.participants[turns % len(rotation.participants)]


def on_call(schedule: Schedule, now: dt.datetime) -> tuple[str | None, str]:
    """The person on call for ``schedule`` at ``now`` and the reason (override or which layer)."""
    person, why = on_call_why(schedule, now)
    return person, str(why)


def on_call_why(schedule: Schedule, now: dt.datetime) -> tuple[str | None, Reason | str]:
    """``on_call`` with the reason as a ``Reason`` (code and parameters, for the person's own language)."""
    names = {"schedule": schedule.schedule_id, "schedule_name": schedule.name or schedule.schedule_id}
    live = [o for o in schedule.overrides if o.starts_at <= now < o.ends_at]
    if live:
        chosen = max(live, key=lambda o: o.override_id)  # the latest override wins
        return chosen.staff_id, Reason("override", {**names, "override": chosen.override_id})
    for rotation in sorted(schedule.rotations, key=lambda r: r.layer, reverse=True):
        person = rotation_on_call(rotation, now)
        if person is not None:
            return person, Reason("on_call", {**names, "layer": rotation.layer})
    return None, f"nobody on call for schedule {schedule.schedule_id}"


def resolve_targets(
    targets: tuple[Target, ...], directory: Directory, now: dt.datetime
) -> tuple[list[tuple[str, Reason]], list[str]]:
    """People (staff id, reason) for ``targets`` at ``now``, each once, plus notes on empty targets."""
    people: dict[str, Reason] = {}
    notes: list[str] = []
    for target in targets:
        if target.kind == "staff":
            people.setdefault(target.id, Reason("named"))
        elif target.kind == "schedule":
            schedule = directory.schedules.get(target.id)
            if schedule is None:
                notes.append(f"unknown schedule {target.id}")
                continue
            person, why = on_call_why(schedule, now)
            if person is None or not isinstance(why, Reason):
                notes.append(str(why))
            else:
                people.setdefault(person, why)
        else:
            members = directory.teams.get(target.id, ())
            if not members:
                notes.append(f"team {target.id} has no members")
            for member in members:
                people.setdefault(member, Reason("team_member", {
                    "team": target.id, "team_name": directory.team_names.get(target.id) or target.id}))
    return list(people.items()), notes


def silencing_window(
    incident: IncidentState, windows: tuple[MaintenanceWindow, ...], now: dt.datetime
) -> MaintenanceWindow | None:
    """The maintenance window that silences ``incident`` at ``now``; Level 1 is never silenced.

    A community or building window covers the incidents in it (of its device
    family, when it names one); device windows silence an incident only when
    they cover every device it groups. The window returned is the one whose end
    the step waits for: the longest covering area window, or else the device
    window that ends first (then the step looks again).
    """
    if incident.tier == 1:
        return None
    live = [w for w in windows if w.community_id == incident.community_id and w.starts_at <= now < w.ends_at]

    def family_ok(w: MaintenanceWindow) -> bool:
        return w.device_type is None or (bool(incident.device_types) and set(incident.device_types) == {w.device_type})

    areas = [
        w for w in live
        if family_ok(w) and (
            (w.scope == "community" and w.scope_id == incident.community_id)
            or (w.scope == "building" and incident.building_id is not None and w.scope_id == incident.building_id)
        )
    ]  # fmt: skip
    if areas:
        return max(areas, key=lambda w: w.ends_at)
    device_windows: dict[str, MaintenanceWindow] = {}
    for w in live:
        if w.scope == "device":
            best = device_windows.get(w.scope_id)
            if best is None or w.ends_at > best.ends_at:
                device_windows[w.scope_id] = w
    if incident.device_ids and all(d in device_windows for d in incident.device_ids):
        return min((device_windows[d] for d in incident.device_ids), key=lambda w: w.ends_at)
    return None
