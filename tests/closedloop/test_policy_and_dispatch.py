"""Pure SLA policy and dispatch decisions."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from workorders import dispatch, sla, why
from workorders.why import Why
from workorders.errors import InvalidInput

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.timezone.utc)
M = dt.timedelta(minutes=1)
TEST = Why("auto_dispatch")


@pytest.mark.parametrize(
    ("tier", "grade", "simple", "ack", "respond", "complete"),
    [
        (1, None, False, 5, 30, None),
        (2, None, False, 15, 30, None),
        (3, None, False, None, None, 24 * 60),
        (3, None, True, None, None, 120),
        (None, "A", False, None, 120, None),
        (None, "B", False, None, 8 * 60, None),
        (None, "C", False, None, 24 * 60, None),
    ],
)
def test_default_deadlines_follow_domain_md(tier, grade, simple, ack, respond, complete) -> None:
    due = sla.deadlines(sla.DEFAULT_POLICY.limits(tier=tier, complaint_grade=grade, simple=simple), T0)
    expected = {sla.Milestone.ACK: ack, sla.Milestone.RESPOND: respond, sla.Milestone.COMPLETE: complete}
    assert due == {m: None if v is None else T0 + v * M for m, v in expected.items()}


def test_community_overrides_apply_and_keep_the_rest() -> None:
    policy = sla.policy_from_overrides(
        {"tier_1": {"respond_minutes": 60}, "complaint_A": {"respond_minutes": 90, "complete_minutes": 600},
         "warn_fraction": 0.5, "repeat_window_days": 14, "tier_3_simple_complete_minutes": 60}
    )
    assert policy.tiers[1] == sla.Limits(ack=5 * M, respond=60 * M)
    assert policy.complaints["A"] == sla.Limits(respond=90 * M, complete=600 * M)
    assert policy.limits(tier=3, complaint_grade=None, simple=True).complete == 60 * M
    assert (policy.warn_fraction, policy.repeat_window) == (0.5, dt.timedelta(days=14))
    assert policy.tiers[2] == sla.DEFAULT_POLICY.tiers[2]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tier_4": {}}, "sla.tier_4"),
        ({"tier_1": {"ack_minutes": -5}}, "sla.tier_1.ack_minutes"),
        ({"tier_1": {"ack_minutes": "5"}}, "sla.tier_1.ack_minutes"),
        ({"tier_1": {"ack_seconds": 5}}, "sla.tier_1.ack_seconds"),
        ({"tier_1": 5}, "sla.tier_1"),
        ({"warn_fraction": 1.5}, "sla.warn_fraction"),
        ({"repeat_window_days": 0}, "sla.repeat_window_days"),
        ({"tier_3_simple_complete_minutes": None}, "sla.tier_3_simple_complete_minutes"),
    ],
)
def test_bad_overrides_are_refused_naming_the_field(overrides, field) -> None:
    with pytest.raises(InvalidInput) as error:
        sla.policy_from_overrides(overrides)
    assert error.value.field == field


def test_clock_states_from_stored_times() -> None:
    due = {sla.Milestone.ACK: T0 + 5 * M, sla.Milestone.RESPOND: T0 + 30 * M, sla.Milestone.COMPLETE: None}

    def status(now, met=None, stopped=None):
        return [(c.milestone.value, c.status.value, c.late_by) for c in
                sla.clocks(created_at=T0, due=due, met=met or {}, now=now, warn_fraction=0.8, stopped_at=stopped)]

    assert status(T0 + 3 * M) == [("ack", "running", None), ("respond", "running", None)]
    assert status(T0 + 4 * M) == [("ack", "due_soon", None), ("respond", "running", None)]
    assert status(T0 + 7 * M, {sla.Milestone.ACK: T0 + 6 * M}) == [("ack", "met_late", M), ("respond", "running", None)]
    assert status(T0 + 31 * M, {sla.Milestone.ACK: T0 + 2 * M}) == [("ack", "met", None), ("respond", "overdue", M)]
    # Cancelled at 10 min: the ack breach it had stays, the respond clock stops.
    assert status(T0 + 60 * M, stopped=T0 + 10 * M) == [("ack", "overdue", 5 * M), ("respond", "stopped", None)]


def cand(staff_id: str, **kw) -> dispatch.Candidate:
    return dispatch.Candidate(staff_id=staff_id, team_id="eng", **kw)


def test_team_kind_by_condition_then_family() -> None:
    assert dispatch.team_kind_for(device_family="elevator", condition="entrapment")[0] is dispatch.TeamKind.ENGINEERING
    assert dispatch.team_kind_for(device_family="access", condition="door_forced")[0] is dispatch.TeamKind.SECURITY
    assert dispatch.team_kind_for(device_family="elderly", condition="inactivity")[0] is dispatch.TeamKind.ELDERLY_CARE
    assert dispatch.team_kind_for(device_family="access", condition="battery_low")[0] is dispatch.TeamKind.ENGINEERING
    assert dispatch.team_kind_for(device_family=None, condition=None)[0] is dispatch.TeamKind.ENGINEERING
    assert dispatch.team_kind_for(device_family="water", condition="x", requested="cleaning")[0] is dispatch.TeamKind.CLEANING


@pytest.mark.parametrize(
    ("candidates", "chosen"),
    [
        # building coverage beats skill; skill beats load
        ([cand("a", buildings=frozenset({"b2"}), skills=frozenset({"elevator"})), cand("b")], "b"),
        ([cand("a", buildings=frozenset({"b1"})), cand("b", skills=frozenset({"elevator"}))], "a"),
        ([cand("a", open_orders=3, skills=frozenset({"elevator"})), cand("b", open_orders=0)], "a"),
        # among equals, the least loaded, then the smallest id
        ([cand("a", open_orders=2), cand("b", open_orders=1)], "b"),
        ([cand("b"), cand("a")], "a"),
        # a full person is passed over while someone has room, even without skill
        ([cand("a", open_orders=5, skills=frozenset({"elevator"})), cand("b", open_orders=4)], "b"),
        # nobody covers the building: anyone rather than nobody
        ([cand("a", buildings=frozenset({"b9"}))], "a"),
    ],
)
def test_person_by_capacity_building_skill_load(candidates, chosen) -> None:
    decision = dispatch.choose(team_kind=dispatch.TeamKind.ENGINEERING, team_reason=TEST, candidates=candidates,
                               building_id="b1", skills=["elevator", "entrapment"])
    assert decision.staff_id == chosen
    assert decision.reason.startswith(f"auto-dispatch; {chosen}: ")


def test_nobody_to_dispatch_to_says_so() -> None:
    decision = dispatch.choose(team_kind=dispatch.TeamKind.SECURITY, team_reason=TEST, candidates=[],
                               building_id=None, skills=[])
    assert decision.staff_id is None and "nobody active in a security team" in decision.reason


def test_somebody_on_shift_is_chosen_before_somebody_at_home() -> None:
    day, night = (dispatch.Candidate(staff_id=s, team_id="eng", skills=frozenset({"water"}), open_orders=n, on_duty=d)
                  for s, n, d in (("s-day", 0, False), ("s-night", 3, True)))
    decision = dispatch.choose(team_kind=dispatch.TeamKind.ENGINEERING, team_reason=TEST, candidates=[day, night],
                               building_id=None, skills=["water"])
    assert decision.staff_id == "s-night" and "on duty" in decision.reason
    # Off shift is still better than nobody; somebody in no rotation at all is neither preferred nor passed over.
    alone = dispatch.choose(team_kind=dispatch.TeamKind.ENGINEERING, team_reason=TEST, candidates=[day],
                            building_id=None, skills=["water"])
    assert alone.staff_id == "s-day" and "off shift" in alone.reason
    free = dispatch.Candidate(staff_id="s-free", team_id="eng", skills=frozenset({"water"}), open_orders=1)
    assert dispatch.choose(team_kind=dispatch.TeamKind.ENGINEERING, team_reason=TEST, candidates=[free, night],
                           building_id=None, skills=["water"]).staff_id == "s-free"


def test_the_reason_is_codes_with_parameters_rendered_in_each_language() -> None:
    """The "why you" an operator reads: the same decision in English and Chinese, names given by the reader."""
    kind, team = dispatch.team_kind_for(device_family="elevator", condition="door_wear")
    person = dispatch.Candidate(staff_id="s-wang", team_id="eng", skills=frozenset({"elevator"}),
                                buildings=frozenset({"b1"}), open_orders=2, on_duty=True)
    decision = dispatch.choose(team_kind=kind, team_reason=team, candidates=[person], building_id="b1",
                               skills=["elevator", "door_wear"])
    assert decision.why_json()[1:3] == [{"code": "chosen", "params": {"staff": "s-wang"}},
                                        {"code": "has_capacity", "params": {}}]
    assert decision.reason == ("work on elevator goes to engineering; s-wang: has capacity, on duty, covers building b1,"
                               " skill elevator, 2 open order(s)")
    names = {"s-wang": "王建国", "b1": "1号楼"}
    zh = why.render(decision.why_json(), "zh-CN",
                    lambda k, v: names.get(v, v) if k in ("staff", "building") else why.default_namer("zh-CN")(k, v))
    assert zh == "电梯设备由工程处理；王建国：尚有余量，正在值班，负责1号楼，具备技能：电梯，手上 2 张未完成工单"
    nobody = dispatch.choose(team_kind=dispatch.TeamKind.CLEANING, team_reason=Why("auto_dispatch"), candidates=[],
                             building_id=None, skills=[])
    assert why.render(nobody.why, "zh-CN") == "自动派单；保洁班组没有在岗人员：暂未派单"
    # Every code reads in both languages with the same parameters.
    assert set(why.TEMPLATES["en"]) == set(why.TEMPLATES["zh-CN"])
    for code, text in why.TEMPLATES["en"].items():
        assert sorted(re.findall(r"{(\w+)}", text)) == sorted(re.findall(r"{(\w+)}", why.TEMPLATES["zh-CN"][code]))
