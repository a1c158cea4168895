"""What detectors emit: incident changes, with the three response tiers of DOMAIN.md."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Literal

import msgspec


class Tier(enum.IntEnum):
    """三级响应: 1 is the most severe."""

    LIFE_SAFETY = 1  # 一级, red: entrapment, SOS, fall, burst with flooding...
    URGENT = 2  # 二级, orange: leak, door forced, elderly inactivity...
    ROUTINE = 3  # 三级, yellow: device offline, battery low, predictive maintenance


ChangeKind = Literal["opened", "updated", "escalated", "cleared"]
Scope = Literal["device", "building", "community"]


class IncidentChange(msgspec.Struct, frozen=True, kw_only=True):
    """One change to an incident, decided by a detector from event time only.

    ``dedup_key`` is ``"{scope_id}:{condition}"``: one open incident per
    (device, condition), or per (building, condition) for a building-wide one.
    """

    kind: ChangeKind
    dedup_key: str
    community_id: str
    scope: Scope
    scope_id: str
    condition: str
    tier: Tier
    ts: dt.datetime
    title: str
    device_ids: tuple[str, ...] = ()
    severity: int = 0
    work_order: bool = False  # a proactive work order rather than an alert
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    # False for a change decided from late data about a condition that was already
    # over, or not yet known to be still true, when its data arrived: it is recorded
    # (a past incident, with its true times) and notifies nobody. Level 1 always pages.
    pages: bool = True


class StoredChange(msgspec.Struct, frozen=True, kw_only=True):
    """An incident change after it was written: the incident row's id and the change."""

    incident_id: int
    change: IncidentChange
    reopened: bool = False
