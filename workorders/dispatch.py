"""Auto-dispatch (派单): which team kind, then which person. Pure.

Team kind comes from the condition when it has its own rule, else from the
device family (``TEAM_BY_FAMILY``), else engineering. The person is chosen
among the active staff of the community's active teams of that kind, ranked
by, in order:

1. room for more work (open orders below ``max_open_orders``),
2. covering the order's building (an explicit building before "whole community";
   people who cover neither are considered only when nobody covers it),
3. having the skill the work needs (the device family or the condition),
4. fewest open orders (current load),
5. staff id (so the choice is deterministic).

The decision carries the reason it was taken, as codes with parameters
(``workorders.why``: rendered in each reader's language) and as the English
sentence they make; both are stored in the order's timeline.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import msgspec

from workorders.why import Why, render


class TeamKind(enum.StrEnum):
    ENGINEERING = "engineering"
    SECURITY = "security"
    CLEANING = "cleaning"
    ELDERLY_CARE = "elderly_care"
    CUSTOMER_SERVICE = "customer_service"
    MANAGEMENT = "management"


TEAM_BY_FAMILY: Mapping[str, TeamKind] = {
    "elevator": TeamKind.ENGINEERING,
    "water": TeamKind.ENGINEERING,
    "access": TeamKind.SECURITY,
    "elderly": TeamKind.ELDERLY_CARE,
}

# Conditions whose work belongs to another team than their device family's.
# Matched on the condition name, or its prefix before the first '.' or ':'.
TEAM_BY_CONDITION: Mapping[str, TeamKind] = {
    "offline": TeamKind.ENGINEERING,
    "device_offline": TeamKind.ENGINEERING,
    "battery_low": TeamKind.ENGINEERING,
    "stuck_sensor": TeamKind.ENGINEERING,
    "reader_offline": TeamKind.ENGINEERING,
    "flooding": TeamKind.CLEANING,
}


def team_kind_for(
    *, device_family: str | None, condition: str | None, requested: str | None = None
) -> tuple[TeamKind, Why]:
    """The team kind for a piece of work and why."""
    if requested is not None:
        return TeamKind(requested), Why("team_requested", {"team": requested})
    if condition:
        for key in (condition, condition.split(".")[0], condition.split(":")[0]):
            if key in TEAM_BY_CONDITION:
                return TEAM_BY_CONDITION[key], Why("team_by_condition",
                                                   {"condition": condition, "team": TEAM_BY_CONDITION[key].value})
    if device_family in TEAM_BY_FAMILY:
        kind = TEAM_BY_FAMILY[device_family]
        return kind, Why("team_by_family", {"family": device_family, "team": kind.value})
    return TeamKind.ENGINEERING, Why("team_default")


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    staff_id: str
    team_id: str
    skills: frozenset[str] = frozenset()
    buildings: frozenset[str] = frozenset()  # empty: the whole community
    open_orders: int = 0
    max_open_orders: int = 5
    # On call now in one of the community's schedules (True), in a rotation but off shift (False), or in no
    # rotation at all (None: no preference either way).
    on_duty: bool | None = None


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    team_kind: TeamKind
    staff_id: str | None
    team_id: str | None
    why: tuple[Why, ...]

    @property
    def reason(self) -> str:
        """The reason in English (the timeline keeps it next to ``why`` for readers without the templates)."""
        return render(self.why, "en")

    def why_json(self) -> list[dict[str, object]]:
        return [w.to_json() for w in self.why]


def choose(
    *,
    team_kind: TeamKind,
    team_reason: Why,
    candidates: Sequence[Candidate],
    building_id: str | None,
    skills: Sequence[str],
) -> Decision:
    """Pick the person for the work among ``candidates`` (active staff of ``team_kind``)."""
    if not candidates:
        return Decision(team_kind=team_kind, staff_id=None, team_id=None,
                        why=(team_reason, Why("nobody_active", {"team": team_kind.value})))
    wanted = {s for s in skills if s}

    def coverage(c: Candidate) -> int:
        if building_id is None:
            return 1
        if building_id in c.buildings:
            return 0
        return 1 if not c.buildings else 2

    def rank(c: Candidate) -> tuple[int, int, int, int, int, str]:
        # Somebody on shift before somebody at home; then who covers the building, has the skill, is least loaded.
        return (int(c.open_orders >= c.max_open_orders), int(c.on_duty is False), coverage(c),
                int(not (wanted & c.skills)), c.open_orders, c.staff_id)

    best = min(candidates, key=rank)
    notes = [Why("at_capacity_all") if best.open_orders >= best.max_open_orders else Why("has_capacity")]
    if best.on_duty is not None:
        notes.append(Why("on_duty") if best.on_duty else Why("off_shift"))
    cover = coverage(best)
    if building_id is not None:
        notes.append({0: Why("covers_building", {"building": building_id}), 1: Why("covers_community"),
                      2: Why("nobody_covers", {"building": building_id})}[cover])
    matched = sorted(wanted & best.skills)
    notes.append(Why("skill", {"skills": matched}) if matched else Why("no_skill"))
    notes.append(Why("open_orders", {"count": best.open_orders}))
    return Decision(team_kind=team_kind, staff_id=best.staff_id, team_id=best.team_id,
                    why=(team_reason, Why("chosen", {"staff": best.staff_id}), *notes))
