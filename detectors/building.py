"""One incident for a building whose water devices lose pressure together.

A condition that spans devices cannot be decided on any one device's clock:
their messages arrive in any order. So each device contributes a *low
interval* (the event time its pressure went low, and the time it came back),
and the engine evaluates the building at its community's watermark (the event
time up to which every live device of the community has reported, see
`detectors.engine`). The evaluation walks the interval boundaries in event
time, so the incident opens at the instant the ``min_devices``-th device had
been low for ``confirm_s`` and clears when the last one recovered, whatever
order the readings came in.

Intervals that arrive after the watermark passed them (a device's late upload)
count from the watermark on: what was already decided stays decided.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from domain.incidents import IncidentChange, Tier
from detectors.base import Changes, Raised, utc

OPEN = -1.0  # an interval that has not ended (yet)
CONDITION = "supply_interruption"


class BuildingState(msgspec.Struct, array_like=True):
    community_id: str
    building_id: str
    # device -> [since, until, since, until, ...]: its low intervals not yet evaluated (until
    # is OPEN while it lasts). More than one when a device recovers and drops again before
    # the watermark has passed the first.
    low: dict[str, list[float]] = msgspec.field(default_factory=dict)
    raised: Raised | None = None
    reported: int = 0  # devices low when the incident was last reported
    through: float = 0.0  # evaluated up to this event time

    def set_low(self, device_id: str, since: float) -> None:
        since = max(since, self.through)  # late news counts from the watermark on
        cur = self.low.setdefault(device_id, [])
        if cur and cur[-1] == OPEN:
            return
        if cur:
            since = max(since, cur[-1])
        cur += [since, OPEN]

    def set_ok(self, device_id: str, at: float) -> None:
        cur = self.low.get(device_id)
        if cur and cur[-1] == OPEN:
            cur[-1] = max(at, self.through, cur[-2])

    def low_now(self) -> int:
        return sum(1 for iv in self.low.values() if iv and iv[-1] == OPEN)

    def intervals(self) -> list[tuple[str, float, float]]:
        return [(d, iv[i], iv[i + 1]) for d, iv in self.low.items() for i in range(0, len(iv), 2)]

    def pending(self) -> bool:
        """Does the building need evaluating (anything low, or an incident open)?"""
        return bool(self.low) or self.raised is not None


def grouped(b: BuildingState | None, min_devices: int) -> bool:
    """Is this building's pressure loss (about to be) one building incident?"""
    return b is not None and (b.raised is not None or b.low_now() >= min_devices)


def _change(b: BuildingState, kind: str, tier: int, severity: int, at: float, title: str, devices: list[str]) -> IncidentChange:
    return IncidentChange(
        kind=kind,  # type: ignore[arg-type]
        dedup_key=f"{b.building_id}:{CONDITION}", community_id=b.community_id, scope="building",
        scope_id=b.building_id, condition=CONDITION, tier=Tier(tier), ts=utc(at), title=title,
        device_ids=tuple(sorted(devices)), severity=severity, detail={"devices_low": len(devices)},
    )


def evaluate(b: BuildingState, upto: float, *, min_devices: int, confirm_s: float,
             suppressed: Callable[[float], bool] = lambda t: False) -> Changes:
    """Open, grow or clear the building's incident at every interval boundary in
    (``b.through``, ``upto``], stamped with that boundary's event time (``suppressed(t)``:
    is the building silenced at event time t)."""
    if upto <= b.through:
        return []
    intervals = b.intervals()
    times = set()
    for _, since, until in intervals:
        times.add(since + confirm_s)
        times.add(since)
        if until != OPEN:
            times.add(until)
    if b.low and b.raised is None:
        times.add(upto)  # a silence that ended while devices are still low
    out: Changes = []
    for t in sorted(x for x in times if b.through < x <= upto):
        low = sorted({d for d, since, until in intervals if since <= t and (until == OPEN or until > t)})
        if b.raised is None:
            confirmed = {d for d, since, until in intervals if since + confirm_s <= t and (until == OPEN or until > t)}
            if len(confirmed) >= min_devices and not suppressed(t):
                b.raised, b.reported = Raised(2, 1, t), len(low)
                out.append(_change(b, "opened", 2, 1, t, f"Water supply interruption: {len(low)} devices of building "
                                                           f"{b.building_id} lost pressure", low))
        elif not low:
            out.append(_change(b, "cleared", 2, b.raised.severity, t, "Water pressure restored in the building", []))
            b.raised, b.reported = None, 0
        elif len(low) >= 2 * b.reported:
            b.reported = len(low)
            b.raised.severity += 1
            out.append(_change(b, "updated", 2, b.raised.severity, t,
                               f"Water supply interruption spreading: {len(low)} devices", low))
    b.through = upto
    for d in list(b.low):  # intervals that ended and were evaluated go
        iv = b.low[d]
        keep = [x for i in range(0, len(iv), 2) for x in iv[i:i + 2] if iv[i + 1] == OPEN or iv[i + 1] > upto]
        if keep:
            b.low[d] = keep
        else:
            del b.low[d]
    return out
