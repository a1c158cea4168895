"""What every detector shares: the context it is called with and the bookkeeping
of the conditions it has raised.

A detector is a set of pure functions ``(state, ctx, event) -> (state, changes)``
and ``(state, ctx, now) -> (state, changes)``: no I/O, no clock (time is the
event's ``ts`` or the tick's ``now``, as epoch seconds), deterministic. The
state is a small msgspec struct owned by the caller; a step updates it and
returns it, so the runtime can snapshot it with ``msgspec.msgpack``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import msgspec

from domain.devices import Device
from domain.incidents import IncidentChange, Tier
from detectors.config import Thresholds

UTC = dt.timezone.utc
Changes = list[IncidentChange]


@dataclass(slots=True)
class Ctx:
    """What a step knows besides its own state: the device, its thresholds, whether it
    is silenced right now (maintenance window, away notice) and facts from other
    devices that the engine gathered (a wet floor in the same unit...)."""

    device: Device
    th: Thresholds
    suppressed: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


def utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, UTC)


class Raised(msgspec.Struct, array_like=True):
    """A condition this device has raised and not cleared: its tier and severity.

    ``paged`` is False while the condition is known only from late data (nobody was
    notified yet); the engine pages it once the device's data is current again and
    the condition still holds."""

    tier: int
    severity: int
    since: float
    paged: bool = True


def change(
    kind: str,
    ctx: Ctx,
    condition: str,
    tier: int,
    ts: float,
    title: str,
    *,
    severity: int = 1,
    work_order: bool = False,
    detail: dict[str, Any] | None = None,
) -> IncidentChange:
    d = ctx.device
    return IncidentChange(
        kind=kind,  # type: ignore[arg-type]
        dedup_key=f"{d.device_id}:{condition}",
        community_id=d.community_id,
        scope="device",
        scope_id=d.device_id,
        condition=condition,
        tier=Tier(tier),
        ts=utc(ts),
        title=title,
        device_ids=(d.device_id,),
        severity=severity,
        work_order=work_order,
        detail={"building_id": d.building_id, "unit_id": d.unit_id, **(detail or {})},
    )


def raise_(
    raised: dict[str, Raised],
    ctx: Ctx,
    condition: str,
    tier: int,
    ts: float,
    title: str,
    *,
    severity: int = 1,
    work_order: bool = False,
    detail: dict[str, Any] | None = None,
) -> Changes:
    """Open a condition, or escalate/raise its severity when it is already open.

    Silenced devices open nothing; the condition opens later if it still holds
    when the silence ends (the detector re-evaluates it)."""
    cur = raised.get(condition)
    if cur is None:
        if ctx.suppressed:
            return []
        raised[condition] = Raised(tier, severity, ts)
        return [change("opened", ctx, condition, tier, ts, title, severity=severity, work_order=work_order, detail=detail)]
    if tier < cur.tier:
        cur.tier, cur.severity = tier, max(severity, cur.severity)
        return [change("escalated", ctx, condition, tier, ts, title, severity=cur.severity, work_order=work_order, detail=detail)]
    if severity > cur.severity:
        cur.severity = severity
        return [change("updated", ctx, condition, cur.tier, ts, title, severity=severity, work_order=work_order, detail=detail)]
    return []


def once(
    ctx: Ctx,
    condition: str,
    tier: int,
    ts: float,
    title: str,
    *,
    severity: int = 1,
    detail: dict[str, Any] | None = None,
) -> Changes:
    """A condition that has no "normal again" (an SOS press, a forced door): every
    occurrence is an "opened"; the store folds repeats into the open incident."""
    if ctx.suppressed:
        return []
    return [change("opened", ctx, condition, tier, ts, title, severity=severity, detail=detail)]


def clear(raised: dict[str, Raised], ctx: Ctx, condition: str, ts: float, title: str, detail: dict[str, Any] | None = None) -> Changes:
    cur = raised.pop(condition, None)
    if cur is None:
        return []
    return [change("cleared", ctx, condition, cur.tier, ts, title, severity=cur.severity, detail=detail)]


def earliest(*candidates: float | None) -> float | None:
    found = [c for c in candidates if c is not None]
    return min(found) if found else None
