"""Door access: forced doors, doors held open, brute-force credentials, access at
hours unusual for the door *and* the credential, reader tamper, tailgating.

The door contact is **debounced**: a contact state counts once it has held for
``door_bounce_s`` (a door that rebounds off its frame, closed - open 0.3 s -
closed, is one closing; a close of a fraction of a second while a door is held
is not a closing either). Decisions are made on the debounced state, at the
moment it is confirmed, against the door's own access events.

Conditions and tiers:

- ``door_forced`` (Level 2): the door opens with no granted access or exit
  button from ``access_grant_window_s`` before the opening until it is
  confirmed (a reader and a contact report separately: the grant may arrive a
  moment after the contact). A ``fire_door`` has no reader and is opened by
  hand all day: it counts as forced only at night (``night_start``..
  ``night_end``), and then it is Level 1.
- ``door_held_open`` (Level 3; a ``fire_door`` propped open is Level 2): open
  for longer than ``door_held_open_s`` / ``fire_door_held_open_s`` since the
  opening or the last sign that somebody is using the door (a granted
  credential, the exit button, a people count): a door in use during a move is
  attended, a door left open is not. Never later than ``door_attended_max_s``
  after the opening: residents badging through a door that stands open are
  passers-by, and at a busy lobby their grants would otherwise keep a door left
  open quiet all day. Clears when closed.
- ``repeated_denied`` (Level 2): ``denied_attempts`` denied credentials within
  ``denied_window_s`` on one reader; clears after 10 quiet minutes.
- ``unusual_hour_access`` (Level 3): a credential this door does not know
  (not granted here in the last two to four weeks: a lost or copied card, a
  former tenant's card never revoked, a contractor's card out of hours) in an
  hour that is unusual for the door (fewer than ``unusual_hour_rate`` entries a
  day, learned over at least ``unusual_hour_learn_days``; before that the fixed
  ``quiet_hours``). A resident whose card the door knows, coming home at 02:00,
  is not unusual; nor is a night-shift worker's card after its first night. Not
  checked: the exit button (somebody leaving), the property's own staff (shift
  work the roster knows), a visitor's QR code (an invitation a resident issued
  for that time). Clears when an access in that hour is usual again or after
  ``unusual_hour_clear_s`` without another.
- ``tamper`` (Level 2): reader tamper switch active; clears when released.
- ``tailgating`` (Level 3): a door with a people counter (``passage`` events)
  lets more people in during one opening than credentials were granted for it.
  Doors without a counter never raise it.
"""

from __future__ import annotations

import datetime as dt
import zlib
from array import array

import msgspec

from domain.events import Event
from detectors.base import Changes, Ctx, Raised, clear, earliest, once, raise_
from detectors.config import in_window

DENIED_QUIET_S = 600.0
SEEN_BITS = 2048  # per generation: ~200 credentials a door knows at a 1.6 % false "known" rate (3 hashes)
SEEN_GENERATION_DAYS = 14  # a credential unseen for 2-4 weeks is a stranger again


class AccessState(msgspec.Struct, array_like=True):
    last_grant: float = 0.0  # last granted access or exit button
    open_since: float | None = None  # debounced opening
    held_fired: bool = False
    denied: list[float] = msgspec.field(default_factory=list)
    hours: bytes = b""  # 24 x uint16: granted accesses by local hour (halved when full)
    hours_since: float = 0.0  # counting since (moved forward when the counts are halved)
    raised: dict[str, Raised] = msgspec.field(default_factory=dict)
    grants_open: int = 0  # credentials granted for the current (or coming) opening
    contact: str = "closed"  # the last raw contact state
    contact_since: float = 0.0  # ...reported at
    confirmed: str = "closed"  # the debounced state
    attended: float = 0.0  # last sign of somebody using the door while it is open
    unusual_at: float | None = None  # last unusual access (the incident clears after a quiet period)
    seen: bytes = b""  # two Bloom filters of SEEN_BITS: the credentials this door has granted lately
    seen_day: int = 0  # local day the younger filter was started


def _held_limit(ctx: Ctx) -> float:
    return ctx.th.fire_door_held_open_s if ctx.device.kind == "fire_door" else ctx.th.door_held_open_s


def _held_due(st: AccessState, ctx: Ctx) -> float | None:
    if st.open_since is None or st.held_fired:
        return None
    limit = _held_limit(ctx)
    cap = st.open_since + max(limit, ctx.th.door_attended_max_s)
    return min(max(st.open_since, st.attended) + limit, cap)


def _contact_due(st: AccessState, ctx: Ctx) -> float | None:
    return st.contact_since + ctx.th.door_bounce_s if st.contact != st.confirmed else None


def next_deadline(st: AccessState, ctx: Ctx) -> float | None:
    quiet = st.denied[-1] + DENIED_QUIET_S if "repeated_denied" in st.raised and st.denied else None
    unusual = st.unusual_at + ctx.th.unusual_hour_clear_s if st.unusual_at is not None else None
    return earliest(_contact_due(st, ctx), _held_due(st, ctx), quiet, unusual)


def on_tick(st: AccessState, ctx: Ctx, now: float) -> tuple[AccessState, Changes]:
    out: Changes = []
    due = _contact_due(st, ctx)
    if due is not None and now >= due:
        out += _confirm(st, ctx, due)
    held = _held_due(st, ctx)
    if held is not None and now >= held:
        st.held_fired = True
        fire = ctx.device.kind == "fire_door"
        title = "Fire door propped open" if fire else "Door held open too long"
        out += raise_(st.raised, ctx, "door_held_open", 2 if fire else 3, held, title,
                      detail={"open_since": st.open_since, "limit_s": _held_limit(ctx)})
    if "repeated_denied" in st.raised and st.denied and now >= st.denied[-1] + DENIED_QUIET_S:
        out += clear(st.raised, ctx, "repeated_denied", st.denied[-1] + DENIED_QUIET_S, "No more denied attempts")
        st.denied = []
    if st.unusual_at is not None and now >= st.unusual_at + ctx.th.unusual_hour_clear_s:
        out += clear(st.raised, ctx, "unusual_hour_access", st.unusual_at + ctx.th.unusual_hour_clear_s,
                     "No more access at unusual hours")
        st.unusual_at = None
    return st, out


def _confirm(st: AccessState, ctx: Ctx, at: float) -> Changes:
    """The contact has held its state for the debounce window: the door really changed."""
    th = ctx.th
    st.confirmed = st.contact
    changed_at = st.contact_since
    out: Changes = []
    if st.confirmed == "open":
        st.open_since, st.held_fired, st.attended = changed_at, False, 0.0
        covered = changed_at - th.access_grant_window_s <= st.last_grant <= at
        if not covered:
            st.grants_open = 0  # a grant nobody used in time does not cover this opening
        night = in_window(_hour(changed_at, ctx), th.night_start, th.night_end)
        fire = ctx.device.kind == "fire_door"
        if not covered and (night or not fire):
            tier = 1 if fire else 2
            title = "Fire door forced at night" if tier == 1 else "Door forced: opened without a valid access"
            out += once(ctx, "door_forced", tier, at, title, detail={"night": night, "opened_at": changed_at})
    else:
        st.open_since, st.held_fired = None, False
        st.grants_open = 0
        out += clear(st.raised, ctx, "door_held_open", changed_at, "Door closed")
    return out


def _hour(ts: float, ctx: Ctx) -> int:
    return dt.datetime.fromtimestamp(ts, ctx.th.zone).hour


def on_event(st: AccessState, ctx: Ctx, ev: Event) -> tuple[AccessState, Changes]:
    th = ctx.th
    ts = ev.ts.timestamp()
    st, out = on_tick(st, ctx, ts)
    f = ev.fields
    if ev.type == "access":
        if f["result"] == "granted":
            st.last_grant = ts
            st.grants_open += 1
            st.attended = ts
            out += _unusual_hour(st, ctx, ts, f)
        else:
            st.denied = [d for d in st.denied if ts - d <= th.denied_window_s][-(th.denied_attempts - 1):] + [ts]
            if len(st.denied) >= th.denied_attempts:
                out += raise_(st.raised, ctx, "repeated_denied", 2, ts, "Repeated denied credentials at a reader (brute force?)",
                              detail={"attempts": len(st.denied), "window_s": th.denied_window_s})
    elif ev.type == "door":
        state = f["state"]
        if state != st.contact:
            st.contact, st.contact_since = state, ts
    elif ev.type == "passage":
        st.attended = ts
        if f.get("direction", "in") == "in" and f["count"] > st.grants_open:
            out += once(ctx, "tailgating", 3, ts, "Tailgating: more people entered than credentials were granted",
                        detail={"entered": f["count"], "granted": st.grants_open})
    elif ev.type == "tamper":
        if f.get("active", True):
            out += raise_(st.raised, ctx, "tamper", 2, ts, "Reader tamper switch triggered")
        else:
            out += clear(st.raised, ctx, "tamper", ts, "Reader tamper switch released")
    st, more = on_tick(st, ctx, ts)
    return st, out + more


# --- unusual hours -----------------------------------------------------------------------------


def _bits(credential: str) -> list[int]:
    data = credential.encode()
    h1, h2 = zlib.crc32(data), zlib.adler32(data) | 1
    return [(h1 + i * h2) % SEEN_BITS for i in range(3)]


def _known(st: AccessState, bits: list[int]) -> bool:
    """Has this door granted this credential (its ``_bits``) in the last two to four weeks?"""
    seen = st.seen
    if not seen:
        return False
    half = SEEN_BITS // 8
    return any(all(seen[g * half + b // 8] >> (b % 8) & 1 for b in bits) for g in (0, 1))


def _remember(st: AccessState, bits: list[int], day: int) -> None:
    half = SEEN_BITS // 8
    roll = day - st.seen_day >= SEEN_GENERATION_DAYS
    if st.seen and not roll and all(st.seen[half + b // 8] >> (b % 8) & 1 for b in bits):
        return  # already in the newer filter: nothing changes
    seen = bytearray(st.seen or bytes(2 * half))
    if roll:  # the older filter goes, a fresh one starts
        seen = seen[half:] + bytearray(half)
        st.seen_day = day
    for b in bits:
        seen[half + b // 8] |= 1 << (b % 8)
    st.seen = bytes(seen)


def _unusual_hour(st: AccessState, ctx: Ctx, ts: float, f: dict) -> Changes:
    th = ctx.th
    hours = array("H", st.hours or bytes(48))
    if not st.hours_since:
        st.hours_since = ts
    local = dt.datetime.fromtimestamp(ts, th.zone)
    h = local.hour
    days = (ts - st.hours_since) / 86400.0
    learned = days >= th.unusual_hour_learn_days
    rate = hours[h] / days if days > 0 else 0.0
    door_unusual = rate < th.unusual_hour_rate if learned else in_window(h, *th.quiet_hours)
    # The exit button is somebody leaving; staff work shifts the roster knows; a visitor's
    # QR code is an invitation a resident issued for that very time.
    exempt = f.get("method") in ("button", "qr") or f.get("role") == "staff"
    credential = str(f.get("credential", ""))
    day = local.toordinal()  # config.local_day, from the same local time
    bits = _bits(credential)
    unusual = door_unusual and not exempt and not _known(st, bits)
    if not exempt:
        _remember(st, bits, day)
    out: Changes = []
    if unusual:
        st.unusual_at = ts
        out = raise_(st.raised, ctx, "unusual_hour_access", 3, ts, f"Access at an unusual hour for this door ({h:02d}:00)",
                     detail={"hour": h, "per_day": round(rate, 3), "role": f.get("role"), "learned": learned})
    else:
        if "unusual_hour_access" in st.raised and not door_unusual:
            st.unusual_at = None
            out = clear(st.raised, ctx, "unusual_hour_access", ts, "Access hours back to usual for this door")
    if not unusual and not exempt:
        # The door's hours learn from entries that were not flagged (an exit, or a staff
        # shift, says nothing about when people come in).
        if hours[h] == 65535:
            hours = array("H", (c // 2 for c in hours))
            st.hours_since = ts - (ts - st.hours_since) / 2
        hours[h] += 1
    st.hours = hours.tobytes()
    return out
