"""The pure parts: who is on call, and what a due step does (tables of state and time, no I/O)."""

from __future__ import annotations

import datetime as dt

import pytest

from oncall.escalation import decide
from oncall.model import (
    Directory,
    IncidentState,
    MaintenanceWindow,
    Override,
    PendingStep,
    Policy,
    Rotation,
    Schedule,
    Step,
    Target,
)
from oncall.schedule import on_call, resolve_targets, silencing_window

UTC = dt.UTC
H = dt.timedelta(hours=1)
MIN = dt.timedelta(minutes=1)
HANDOFF = dt.datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 Beijing

DAILY = Rotation(layer=0, handoff_at=HANDOFF, shift=24 * H, participants=("a", "b", "c"))
WEEKEND = Rotation(
    layer=1, handoff_at=HANDOFF - 24 * H, shift=7 * 24 * H, participants=("w",),
    active_from=dt.datetime(2026, 3, 7, 0, 0, tzinfo=UTC), active_until=dt.datetime(2026, 3, 9, 0, 0, tzinfo=UTC),
)  # fmt: skip
SCHEDULE = Schedule("eng", rotations=(DAILY, WEEKEND))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (HANDOFF - MIN, None),  # before the first hand-off
        (HANDOFF, "a"),
        (HANDOFF + 24 * H - MIN, "a"),  # one minute before the hand-off
        (HANDOFF + 24 * H, "b"),  # at the hand-off instant
        (HANDOFF + 3 * 24 * H, "a"),  # the rotation wraps
        (dt.datetime(2026, 3, 7, 12, 0, tzinfo=UTC), "w"),  # the weekend layer is above the daily one
        (dt.datetime(2026, 3, 9, 0, 0, tzinfo=UTC), "c"),  # and ends (day 8 of a 3-person rotation)
    ],
)
def test_rotation_and_layers(at: dt.datetime, expected: str | None) -> None:
    assert on_call(SCHEDULE, at)[0] == expected


def test_latest_override_wins_while_it_lasts() -> None:
    start = HANDOFF + 2 * H
    schedule = Schedule(
        "eng", rotations=(DAILY,),
        overrides=(Override(1, "x", start, start + 4 * H), Override(2, "y", start + H, start + 2 * H)),
    )  # fmt: skip
    assert on_call(schedule, start) == ("x", "override #1 of schedule eng")
    assert on_call(schedule, start + H)[0] == "y"
    assert on_call(schedule, start + 2 * H)[0] == "x"
    assert on_call(schedule, start + 4 * H)[0] == "a"


def test_targets_resolve_once_per_person() -> None:
    directory = Directory(schedules={"eng": SCHEDULE}, teams={"sec": ("a", "g")})
    people, notes = resolve_targets(
        (Target("schedule", "eng"), Target("team", "sec"), Target("staff", "z"), Target("schedule", "nope")),
        directory, HANDOFF,
    )  # fmt: skip
    assert [p for p, _ in people] == ["a", "g", "z"]
    assert notes == ["unknown schedule nope"]


POLICY = Policy(
    policy_id="p1", community_id="c1", tier=1, repeat=1,
    steps=(Step((Target("schedule", "eng"),), 5 * MIN), Step((Target("staff", "sup"),), 10 * MIN)),
    ack_renotify_after=30 * MIN, reminder_every=15 * MIN,
)  # fmt: skip
DIRECTORY = Directory(schedules={"eng": SCHEDULE})
T = HANDOFF + 2 * H
OPEN = IncidentState(incident_id=7, community_id="c1", tier=1, status="open", building_id="b1", device_ids=("lift-1",))


def pending(kind: str = "step", step: int = 0, repeat: int = 0, due: dt.datetime = T) -> PendingStep:
    return PendingStep(pending_id=1, incident_id=7, round=1, kind=kind, step=step, repeat=repeat, due_at=due)  # type: ignore[arg-type]


def test_step_notifies_and_schedules_the_next_from_its_due_time() -> None:
    d = decide(pending(), OPEN, POLICY, DIRECTORY, (), T + 40 * dt.timedelta(seconds=1))
    assert d.outcome == "fired"
    assert [n.staff_id for n in d.notify] == ["a"]
    assert [(n.kind, n.step, n.repeat, n.due_at) for n in d.next] == [("step", 1, 0, T + 5 * MIN)]
    assert "on call for schedule eng" in d.reason


def test_last_step_repeats_the_chain_then_reminds() -> None:
    d = decide(pending(step=1), OPEN, POLICY, DIRECTORY, (), T)
    assert [(n.kind, n.step, n.repeat, n.due_at) for n in d.next] == [("step", 0, 1, T + 10 * MIN)]
    d = decide(pending(step=1, repeat=1), OPEN, POLICY, DIRECTORY, (), T)
    assert [(n.kind, n.step, n.due_at) for n in d.next] == [("reminder", 0, T + 15 * MIN)]
    d = decide(pending(kind="reminder", step=3), OPEN, POLICY, DIRECTORY, (), T)
    assert [n.staff_id for n in d.notify] == ["sup"]  # the last step's people
    assert [(n.kind, n.step, n.due_at) for n in d.next] == [("reminder", 4, T + 15 * MIN)]


def test_reminders_missed_during_downtime_collapse_into_the_latest() -> None:
    # Reminder 4 (step 3) was due at T; the scheduler comes back at T + 47 min: 4, 5, 6 and 7 were due.
    d = decide(pending(kind="reminder", step=3), OPEN, POLICY, DIRECTORY, (), T + 47 * MIN)
    assert [n.staff_id for n in d.notify] == ["sup"]  # one reminder, not four
    assert d.reason.startswith("reminder 7: tier 1 alert still unacknowledged")
    assert "3 earlier reminders missed while the scheduler was down" in d.reason
    assert [(n.kind, n.step, n.due_at) for n in d.next] == [("reminder", 7, T + 60 * MIN)]  # the grid, after now
    on_time = decide(pending(kind="reminder", step=3), OPEN, POLICY, DIRECTORY, (), T + 14 * MIN)
    assert "missed" not in on_time.reason and [n.due_at for n in on_time.next] == [T + 15 * MIN]
    # The owner's re-notify collapses the same way.
    acked = IncidentState(**{**OPEN.__dict__, "status": "acknowledged", "acknowledged_by": "a", "acknowledged_at": T})
    r = decide(pending(kind="ack_renotify", due=T + 30 * MIN), acked, POLICY, DIRECTORY, (), T + 125 * MIN)
    assert [n.staff_id for n in r.notify] == ["a"] and "(re-notify 4)" in r.reason
    assert [(n.kind, n.step, n.due_at) for n in r.next] == [("ack_renotify", 4, T + 150 * MIN)]
    # The last step fired late: its people were told now; the first reminder is on the grid after now.
    late = decide(pending(step=1, repeat=1), OPEN, POLICY, DIRECTORY, (), T + 32 * MIN)
    assert [(n.kind, n.step, n.due_at) for n in late.next] == [("reminder", 0, T + 45 * MIN)]


def test_nobody_on_call_moves_on_at_once() -> None:
    empty = Directory(schedules={"eng": Schedule("eng")})
    d = decide(pending(), OPEN, POLICY, empty, (), T + MIN)
    assert d.notify == () and "nobody on call for schedule eng" in d.reason
    assert [(n.step, n.due_at) for n in d.next] == [(1, T + MIN)]


def test_acknowledged_stops_the_chain_and_times_the_renotify_from_the_ack() -> None:
    acked = IncidentState(**{**OPEN.__dict__, "status": "acknowledged", "acknowledged_by": "a", "acknowledged_at": T + MIN})
    d = decide(pending(step=1, due=T + 5 * MIN), acked, POLICY, DIRECTORY, (), T + 5 * MIN)
    assert d.outcome == "cancelled" and d.notify == () and "acknowledged by a" in d.reason
    assert [(n.kind, n.due_at) for n in d.next] == [("ack_renotify", T + 31 * MIN)]
    r = decide(pending(kind="ack_renotify", due=T + 31 * MIN), acked, POLICY, DIRECTORY, (), T + 31 * MIN)
    assert [n.staff_id for n in r.notify] == ["a"]
    assert [(n.kind, n.step, n.due_at) for n in r.next] == [("ack_renotify", 1, T + 61 * MIN)]


@pytest.mark.parametrize("status", ["resolved"])
def test_resolved_stops_everything(status: str) -> None:
    done = IncidentState(**{**OPEN.__dict__, "status": status})
    for kind in ("step", "reminder", "ack_renotify"):
        d = decide(pending(kind=kind), done, POLICY, DIRECTORY, (), T)
        assert (d.outcome, d.notify, d.next) == ("cancelled", (), ())


def test_maintenance_defers_level2_to_the_window_end_but_never_level1() -> None:
    window = MaintenanceWindow(3, "c1", "building", "b1", T - H, T + H, "pump swap")
    level2 = IncidentState(**{**OPEN.__dict__, "tier": 2})
    d = decide(pending(), level2, POLICY, DIRECTORY, (window,), T)
    assert (d.outcome, d.defer_until, d.notify) == ("deferred", T + H, ())
    assert "maintenance window #3" in d.reason
    assert decide(pending(), OPEN, POLICY, DIRECTORY, (window,), T).outcome == "fired"
    # A device window silences only an incident all of whose devices it covers.
    device_window = MaintenanceWindow(4, "c1", "device", "lift-1", T - H, T + H)
    assert silencing_window(level2, (device_window,), T) == device_window
    two_devices = IncidentState(**{**level2.__dict__, "device_ids": ("lift-1", "lift-2"), "building_id": None})
    assert silencing_window(two_devices, (device_window,), T) is None
    other_community = MaintenanceWindow(5, "c2", "building", "b1", T - H, T + H)
    assert silencing_window(level2, (other_community,), T) is None


def test_missing_incident_or_policy_cancels_with_a_reason() -> None:
    assert decide(pending(), None, POLICY, DIRECTORY, (), T).reason == "incident 7 not found"
    assert "no escalation policy" in decide(pending(), OPEN, None, DIRECTORY, (), T).reason


def test_community_and_family_windows() -> None:
    level2 = IncidentState(**{**OPEN.__dict__, "tier": 2, "device_types": ("water",)})
    whole = MaintenanceWindow(6, "c1", "community", "c1", T - H, T + 2 * H)
    lifts_only = MaintenanceWindow(7, "c1", "building", "b1", T - H, T + 3 * H, device_type="elevator")
    water_only = MaintenanceWindow(8, "c1", "building", "b1", T - H, T + H, device_type="water")
    assert silencing_window(level2, (whole,), T) == whole
    assert silencing_window(level2, (lifts_only,), T) is None
    assert silencing_window(level2, (lifts_only, water_only), T) == water_only
    assert silencing_window(level2, (whole, water_only), T) == whole  # wait for the longest covering window
    assert silencing_window(level2, (whole,), T + 2 * H) is None  # ended


def test_why_you_is_codes_read_in_the_persons_language() -> None:
    """The message says why this person, in their language and with names: not the English decision sentence."""
    from oncall.templates import render

    named = Directory(schedules={"eng": Schedule("eng", rotations=(DAILY, WEEKEND), name="工程部值班")},
                      teams={"sec": ("g",)}, team_names={"sec": "秩序维护部"})
    policy = Policy(policy_id="p1", community_id="c1", tier=1, name="一级告警",
                    steps=(Step((Target("schedule", "eng"), Target("team", "sec")), 5 * MIN),), repeat=0)
    d = decide(pending(), OPEN, policy, named, (), T)
    assert [n.staff_id for n in d.notify] == ["a", "g"]
    assert d.notify[0].reason == "policy p1 step 1/1 (pass 1/1); on call for schedule eng (layer 0)"  # as stored
    message = {"kind": "step", "tier": 1, "condition": "entrapment", "title": "trapped", "incident_id": 7}
    for notify, zh, en in (
        (d.notify[0], "升级策略“一级告警”第 1/1 步（第 1/1 轮）；您正在“工程部值班”值班",
         "policy 一级告警 step 1/1 (pass 1/1); on call for schedule 工程部值班 (layer 0)"),
        (d.notify[1], "升级策略“一级告警”第 1/1 步（第 1/1 轮）；您是“秩序维护部”班组成员",
         "policy 一级告警 step 1/1 (pass 1/1); member of team 秩序维护部"),
    ):
        why = [w.to_json() for w in notify.why]
        assert f"通知原因：{zh}\n" in render("zh-CN", {**message, "why": why}, ack_url="a", resolve_url="r").text
        assert f"Why you: {en}\n" in render("en", {**message, "why": why}, ack_url="a", resolve_url="r").text
    # A reminder after downtime, in Chinese.
    r = decide(pending(kind="reminder", step=3), OPEN, POLICY, DIRECTORY, (), T + 47 * MIN)
    text = render("zh-CN", {**message, "kind": "reminder", "why": [w.to_json() for w in r.notify[0].why]},
                  ack_url="a", resolve_url="r").text
    assert "通知原因：第 7 次提醒：1级告警仍无人确认（系统停机期间漏发的 3 次提醒合并为本次）；升级策略中指定了您" in text
