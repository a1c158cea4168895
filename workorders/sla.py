"""SLA policy: deadlines per tier and complaint grade, and the state of each clock.

Pure: deadlines are computed from an order's stored ``created_at`` and the
policy, and a clock's state from stored milestone times and an explicit
``now``, so a restart cannot change an answer.

Three milestones can carry a limit:

- ``ack``: the assignee accepted the order (``accepted_at``);
- ``respond``: somebody is on site / handling it (``on_site_at``);
- ``complete``: the work is reported done (``completed_at``).

Defaults (DOMAIN.md): Level 1 ack 5 min, on site 30 min; Level 2 ack 15 min,
respond 30 min; Level 3 complete in 24 h (2 h when marked simple); complaints
A/B/C respond within 2 h / 8 h / 24 h. A community overrides any of them with
a JSON object, see :func:`policy_from_overrides` and the README.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

import msgspec

from workorders.errors import InvalidInput


class Milestone(enum.StrEnum):
    ACK = "ack"
    RESPOND = "respond"
    COMPLETE = "complete"


# Which stored order time meets each milestone.
MILESTONE_FIELD: Mapping[Milestone, str] = {
    Milestone.ACK: "accepted_at",
    Milestone.RESPOND: "on_site_at",
    Milestone.COMPLETE: "completed_at",
}

COMPLAINT_GRADES = ("A", "B", "C")


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    ack: dt.timedelta | None = None
    respond: dt.timedelta | None = None
    complete: dt.timedelta | None = None

    def for_milestone(self, milestone: Milestone) -> dt.timedelta | None:
        return getattr(self, milestone.value)


def _minutes(m: float) -> dt.timedelta:
    return dt.timedelta(minutes=m)


class SlaPolicy(msgspec.Struct, frozen=True, kw_only=True):
    tiers: dict[int, Limits]
    tier_3_simple_complete: dt.timedelta
    complaints: dict[str, Limits]
    # A running clock warns ("due_soon") once this share of its time is used.
    warn_fraction: float = 0.8
    # Same device, same fault again within this window is a repeat failure.
    repeat_window: dt.timedelta = dt.timedelta(days=7)

    def limits(self, *, tier: int | None, complaint_grade: str | None, simple: bool = False) -> Limits:
        if complaint_grade is not None:
            return self.complaints[complaint_grade]
        if tier is None:
            raise InvalidInput("tier", "an order needs a tier or a complaint grade")
        limits = self.tiers[tier]
        if simple and tier == 3:
            return msgspec.structs.replace(limits, complete=self.tier_3_simple_complete)
        return limits


DEFAULT_POLICY = SlaPolicy(
    tiers={
        1: Limits(ack=_minutes(5), respond=_minutes(30)),
        2: Limits(ack=_minutes(15), respond=_minutes(30)),
        3: Limits(complete=_minutes(24 * 60)),
    },
    tier_3_simple_complete=_minutes(120),
    complaints={
        "A": Limits(respond=_minutes(2 * 60)),
        "B": Limits(respond=_minutes(8 * 60)),
        "C": Limits(respond=_minutes(24 * 60)),
    },
)

_LIMIT_KEYS = {"ack_minutes": "ack", "respond_minutes": "respond", "complete_minutes": "complete"}


def _positive_minutes(field: str, value: Any) -> dt.timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InvalidInput(field, f"must be a positive number of minutes or null, got {value!r}")
    return _minutes(value)


def _limits_override(field: str, base: Limits, value: Any) -> Limits:
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must be an object with {', '.join(_LIMIT_KEYS)}, got {value!r}")
    changes: dict[str, dt.timedelta | None] = {}
    for key, item in value.items():
        if key not in _LIMIT_KEYS:
            raise InvalidInput(f"{field}.{key}", f"unknown setting; known: {', '.join(_LIMIT_KEYS)}")
        changes[_LIMIT_KEYS[key]] = _positive_minutes(f"{field}.{key}", item)
    return msgspec.structs.replace(base, **changes)


def policy_from_overrides(overrides: Mapping[str, Any] | None, base: SlaPolicy = DEFAULT_POLICY) -> SlaPolicy:
    """The policy of a community: ``base`` with ``overrides`` applied, validated.

    Keys: ``tier_1``/``tier_2``/``tier_3`` and ``complaint_A``/``_B``/``_C``
    (objects with ``ack_minutes``, ``respond_minutes``, ``complete_minutes``;
    null removes a limit), ``tier_3_simple_complete_minutes``,
    ``warn_fraction`` (0 < x < 1), ``repeat_window_days`` (> 0).
    """
    if overrides is None:
        return base
    if not isinstance(overrides, Mapping):
        raise InvalidInput("sla", f"must be a JSON object, got {type(overrides).__name__}")
    tiers = dict(base.tiers)
    complaints = dict(base.complaints)
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        field = f"sla.{key}"
        if key in ("tier_1", "tier_2", "tier_3"):
            tier = int(key[-1])
            tiers[tier] = _limits_override(field, tiers[tier], value)
        elif key in ("complaint_A", "complaint_B", "complaint_C"):
            grade = key[-1]
            complaints[grade] = _limits_override(field, complaints[grade], value)
        elif key == "tier_3_simple_complete_minutes":
            minutes = _positive_minutes(field, value)
            if minutes is None:
                raise InvalidInput(field, "must be a positive number of minutes")
            changes["tier_3_simple_complete"] = minutes
        elif key == "warn_fraction":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise InvalidInput(field, f"must be a number between 0 and 1 (exclusive), got {value!r}")
            changes["warn_fraction"] = float(value)
        elif key == "repeat_window_days":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidInput(field, f"must be a positive number of days, got {value!r}")
            changes["repeat_window"] = dt.timedelta(days=value)
        else:
            known = "tier_1, tier_2, tier_3, complaint_A, complaint_B, complaint_C, tier_3_simple_complete_minutes, warn_fraction, repeat_window_days"
            raise InvalidInput(field, f"unknown setting; known: {known}")
    return msgspec.structs.replace(base, tiers=tiers, complaints=complaints, **changes)


def deadlines(limits: Limits, created_at: dt.datetime) -> dict[Milestone, dt.datetime | None]:
    """The due time of each milestone, from the order's creation time."""
    out: dict[Milestone, dt.datetime | None] = {}
    for milestone in Milestone:
        limit = limits.for_milestone(milestone)
        out[milestone] = None if limit is None else created_at + limit
    return out


class ClockStatus(enum.StrEnum):
    MET = "met"
    MET_LATE = "met_late"
    RUNNING = "running"
    DUE_SOON = "due_soon"  # the warning: most of the time is used
    OVERDUE = "overdue"
    STOPPED = "stopped"  # the order was cancelled before the milestone


class Clock(msgspec.Struct, frozen=True, kw_only=True):
    milestone: Milestone
    due_at: dt.datetime
    met_at: dt.datetime | None
    status: ClockStatus
    late_by: dt.timedelta | None  # how late (met late, or overdue as of now)

    @property
    def breached(self) -> bool:
        return self.status in (ClockStatus.MET_LATE, ClockStatus.OVERDUE)


def clocks(
    *,
    created_at: dt.datetime,
    due: Mapping[Milestone, dt.datetime | None],
    met: Mapping[Milestone, dt.datetime | None],
    now: dt.datetime,
    warn_fraction: float,
    stopped_at: dt.datetime | None = None,
) -> list[Clock]:
    """The clocks of one order as of ``now``; milestones without a limit have none.

    A cancelled order (``stopped_at``) keeps the breaches it had when cancelled
    and never becomes overdue afterwards.
    """
    out = []
    for milestone in Milestone:
        due_at = due.get(milestone)
        if due_at is None:
            continue
        met_at = met.get(milestone)
        if met_at is not None:
            late = met_at - due_at
            status = ClockStatus.MET_LATE if late > dt.timedelta(0) else ClockStatus.MET
            out.append(Clock(milestone=milestone, due_at=due_at, met_at=met_at, status=status,
                             late_by=late if late > dt.timedelta(0) else None))
            continue
        as_of = min(now, stopped_at) if stopped_at is not None else now
        if as_of > due_at:
            status, late_by = ClockStatus.OVERDUE, as_of - due_at
        elif stopped_at is not None and stopped_at <= now:
            status, late_by = ClockStatus.STOPPED, None
        elif as_of >= created_at + (due_at - created_at) * warn_fraction:
            status, late_by = ClockStatus.DUE_SOON, None
        else:
            status, late_by = ClockStatus.RUNNING, None
        out.append(Clock(milestone=milestone, due_at=due_at, met_at=None, status=status, late_by=late_by))
    return out
