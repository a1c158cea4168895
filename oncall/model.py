"""On-call domain types: schedules, policies, maintenance windows, pending steps and decisions.

Plain frozen records: the pure decision functions take and return them, the
store loads and saves them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

TargetKind = Literal["staff", "schedule", "team"]
PendingKind = Literal["step", "reminder", "ack_renotify"]
Channel = Literal["webhook", "email", "push"]
CHANNELS: tuple[Channel, ...] = ("webhook", "email", "push")
LOCALES = ("zh-CN", "en")


@dataclass(frozen=True)
class Target:
    """Whom a policy step notifies: a person, whoever is on call for a schedule, or a whole team."""

    kind: TargetKind
    id: str


@dataclass(frozen=True)
class Step:
    targets: tuple[Target, ...]
    delay: dt.timedelta  # wait after this step before the next one


@dataclass(frozen=True)
class Policy:
    policy_id: str
    community_id: str
    tier: int | None
    steps: tuple[Step, ...]
    repeat: int = 0  # how many times the whole chain runs again after the first pass
    ack_renotify_after: dt.timedelta = dt.timedelta(minutes=30)
    reminder_every: dt.timedelta = dt.timedelta(minutes=15)
    name: str = ""


@dataclass(frozen=True)
class Rotation:
    """Participants take turns of ``shift`` length, the first turn starting at ``handoff_at``."""

    layer: int
    handoff_at: dt.datetime
    shift: dt.timedelta
    participants: tuple[str, ...]
    active_from: dt.datetime | None = None
    active_until: dt.datetime | None = None


@dataclass(frozen=True)
class Override:
    override_id: int
    staff_id: str
    starts_at: dt.datetime
    ends_at: dt.datetime


@dataclass(frozen=True)
class Schedule:
    schedule_id: str
    rotations: tuple[Rotation, ...] = ()
    overrides: tuple[Override, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class Directory:
    """Everything needed to turn targets into people at one instant."""

    schedules: dict[str, Schedule] = field(default_factory=dict)
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    team_names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MaintenanceWindow:
    """A row of ``maintenance_windows``: silences a device, a building or a community, maybe one family."""

    window_id: int
    community_id: str
    scope: Literal["device", "building", "community"]
    scope_id: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str = ""
    device_type: str | None = None  # None: every device family in the scope


@dataclass(frozen=True)
class IncidentState:
    """What escalation needs to know about an incident, read from its stored row."""

    incident_id: int
    community_id: str
    tier: int
    status: Literal["open", "acknowledged", "resolved"]
    title: str = ""
    condition: str = ""
    building_id: str | None = None
    device_ids: tuple[str, ...] = ()
    device_types: tuple[str, ...] = ()  # families of device_ids, for family-specific windows
    acknowledged_by: str | None = None
    acknowledged_at: dt.datetime | None = None


@dataclass(frozen=True)
class PendingStep:
    pending_id: int
    incident_id: int
    round: int
    kind: PendingKind
    step: int
    repeat: int
    due_at: dt.datetime


@dataclass(frozen=True)
class Notify:
    staff_id: str
    reason: str
    # The same reason as codes (oncall.why): what fired, then why this person; rendered in their language.
    why: tuple[Any, ...] = ()


@dataclass(frozen=True)
class NextPending:
    kind: PendingKind
    step: int
    repeat: int
    due_at: dt.datetime
    reason: str


@dataclass(frozen=True)
class Decision:
    """What to do with one due pending step, and why.

    ``outcome``: ``fired`` (notifications sent, maybe a next step), ``cancelled``
    (the chain stops: acknowledged, resolved, superseded), ``deferred`` (the same
    step is due again at ``defer_until``, e.g. while a maintenance window lasts).
    """

    outcome: Literal["fired", "cancelled", "deferred"]
    reason: str
    notify: tuple[Notify, ...] = ()
    next: tuple[NextPending, ...] = ()
    defer_until: dt.datetime | None = None
