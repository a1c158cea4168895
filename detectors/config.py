"""Detector thresholds: DOMAIN.md's figures as defaults, overridable per community,
building and device.

A `DetectorConfig` holds the defaults and a list of overrides keyed
``community:<id>``, ``building:<id>`` or ``device:<id>``; a device's thresholds
are the defaults, then its community's, its building's and its own overrides,
in that order. Unknown threshold names are refused at load time with the name.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from domain.devices import Device


class Thresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every number a detector compares with. Times in seconds, flows in L/min."""

    timezone: str = "Asia/Shanghai"  # local time for night windows and hour-of-day profiles

    # --- event time (see detectors/README.md, "Event time") ---
    # A device's own messages may arrive this much out of order: each is applied once
    # the device's data is complete up to its time (its newest message minus this, or
    # this long after it arrived). MQTT keeps one connection's order; a hub merging its
    # sensors' reports or a QoS 1 redelivery does not, by a second or two.
    allowed_lateness_s: float = 2.0
    # A silent device's clock keeps running with the wall clock for this long after its
    # last message (a little more than its 5-minute heartbeat): its timers (a door held
    # open, a car stopped between floors) fire without another message. Beyond it the
    # device is not heard from; its timers wait for its next message, and only the
    # receive-time offline rule runs.
    silent_clock_s: float = 360.0

    # --- elevators (GB/T 24476) ---
    fault_confirm_s: float = 5.0  # a fault must persist this long (field practice: ~5 s)
    # Codes 7/8 are already the controller's own entrapment conclusion: no extra wait.
    entrapment_code_confirm_s: float = 0.0
    alarm_presses_for_entrapment: int = 3
    alarm_press_window_s: float = 120.0
    alarm_presses_for_alert: int = 2  # one momentary press (a child) is not an alert; a second one is
    # Inferred entrapment: only a car that cannot release its passengers (detectors/README.md).
    # In the door zone, shut, idle and continuously occupied: far beyond any ride (a full-height
    # ride in a residential building takes under a minute; slow riders stand 12-30 s before
    # pressing a button) and still a tenth of the 30-minute legal rescue time.
    inferred_entrapment_s: float = 180.0
    inferred_entrapment_outside_zone_s: float = 5.0  # between floors the doors cannot open at all
    door_open_fail_s: float = 10.0  # doors "opening" that never reach "open" (a door operator opens in 2-4 s)
    # Nobody walks into a shut car: occupancy first reported longer than this after the doors
    # shut at a floor is a sensor (a flicker, a drifting load cell), not a passenger. A camera
    # or load cell reports a passenger at once, a PIR within its few seconds of hold time.
    entrapment_boarding_s: float = 30.0
    entrapment_evidence_s: float = 90.0  # the car's latest status must be this recent when inference decides
    # An occupancy sensor that said "occupied" in every report for this long, through rides
    # and door openings, before the doors shut is stuck (a jammed PIR, a load cell stuck
    # high): a residential car in use is empty between rides many times an hour, even at
    # the morning peak (it goes back up empty). Its "occupied" decides no entrapment until
    # it reports an empty car again.
    occupancy_stuck_s: float = 1800.0
    fault_rate_min_per_day: int = 3  # proactive order when a day's faults reach this...
    fault_rate_factor: float = 3.0  # ...and this many times the learned daily rate
    door_reopen_min_ratio: float = 0.3  # reopens per trip, short-term average
    door_reopen_factor: float = 3.0  # times the lift's learned ratio
    door_learn_trips: int = 200
    # Short-term average over about the last 100 trips: re-opens are rare (one ride in 10-20),
    # so 20 trips hold one or two and a chance cluster of five looked like a worn door
    # (seed 53: two false work orders in 30 lift-days); 100 trips hold 5-10.
    door_trend_alpha: float = 0.01
    vibration_factor: float = 1.6  # short-term vibration over learned baseline
    vibration_learn_samples: int = 500

    # --- water ---
    flow_zero_lpm: float = 0.05  # below this a meter counts as "no flow"
    continuous_flow_s: float = 20 * 60.0  # the home rule: >= 20 minutes...
    continuous_flow_l: float = 23.0  # ...and >= 6 gallons
    continuous_flow_max_learned_s: float = 3 * 3600.0  # learned limit never above this
    continuous_flow_learn_runs: int = 8  # long runs seen before the limit adapts
    # A leak is a trickle under the draws: the run must spend this share of its time
    # below `trickle_lpm`; a long run of high flow (a shower, a bath) is judged by the
    # fixture rule instead, against the dwelling's longest normal runs.
    trickle_lpm: float = 4.0
    trickle_share: float = 0.5
    fixture_run_s: float = 90 * 60.0
    flood_volume_l: float = 1000.0  # a leak that keeps flowing becomes a flood (Level 1)
    leak_severity_step_s: float = 30 * 60.0  # severity +1 for every step a condition persists
    burst_flow_lpm: float = 40.0  # beyond what a household draws, even with every fixture open
    burst_confirm_s: float = 5.0
    burst_jump_lpm: float = 30.0  # more than any one fixture: taps, showers, washers add 2-12 L/min each
    burst_sustained_s: float = 600.0  # a spike built up by many draws must last this long
    night_start_hour: int = 2
    night_end_hour: int = 4
    night_flow_fixed_lpm: float = 0.1  # minimum night flow limit while learning
    night_flow_margin_lpm: float = 0.05
    night_flow_nights: int = 1  # consecutive nights above baseline before raising
    night_flow_learn_nights: int = 3
    pressure_low_kpa: float = 100.0
    pressure_high_kpa: float = 800.0
    pressure_confirm_s: float = 600.0  # one device out of band: a routine order, no hurry
    building_pressure_confirm_s: float = 60.0
    building_pressure_min_devices: int = 3  # this many low in one building = one building incident
    leak_flood_s: float = 30 * 60.0  # a leak sensor wet this long escalates to Level 1
    tank_low_pct: float = 10.0
    tank_high_pct: float = 98.0  # the booster pump stops near 92 % and may overshoot a few points

    # --- door access ---
    # A contact state counts once it has held this long: a door rebounding off its frame
    # (closed, open 0.3 s, closed) is one closing. Reed contacts bounce for milliseconds,
    # a door leaf for well under a second; a real opening lasts seconds.
    door_bounce_s: float = 2.0
    # Held open: since the opening or the last sign of somebody using the door (a grant,
    # the exit button, a people count). A lobby door in use (a pram, a delivery, a move)
    # stays open a minute or three; five minutes with nobody badging is a door left open.
    door_held_open_s: float = 300.0
    # ... but never longer than this after the opening: residents badging through a door
    # that stands open (a wedge, a broken closer) are passers-by, not somebody holding it,
    # and at a busy lobby their grants would keep a door left open quiet all day. Twice
    # the limit lets a real attended use (a delivery trolley, a pram) finish.
    door_attended_max_s: float = 600.0
    fire_door_held_open_s: float = 60.0  # a fire door must never be propped (closers; GB 50016)
    access_grant_window_s: float = 15.0  # a door may open this long after a valid access
    denied_attempts: int = 5
    denied_window_s: float = 120.0
    night_start: int = 22  # local hour: "at night" for fire doors and access hours
    night_end: int = 6
    unusual_hour_rate: float = 0.1  # accesses per day in that hour, learned: rarer is unusual
    unusual_hour_learn_days: float = 7.0  # a sparse hour needs days of history to be told from zero
    quiet_hours: tuple[int, int] = (2, 5)  # the floor rule while a door's hours are learned
    unusual_hour_memory_days: int = 28  # a credential seen at that hour within this is on its habit
    unusual_hour_clear_s: float = 3600.0  # an unusual-hour incident clears after this without another

    # --- elderly residents ---
    inactivity_fixed_s: float = 12 * 3600.0  # the fixed floor rule: no activity for N
    inactivity_min_s: float = 2 * 3600.0  # a learned limit is never below this
    inactivity_margin_s: float = 3600.0
    inactivity_factor: float = 1.25
    inactivity_learn_days: int = 3
    sleep_margin_s: float = 2.5 * 3600.0  # in bed: past the learned wake-up by this much
    sleep_learn_nights: int = 3
    sleep_min_s: float = 3 * 3600.0  # a bed session this long is a night's sleep, not a nap
    sleep_trip_s: float = 45 * 60.0  # out of bed shorter than this: a night trip, still asleep
    fall_min_confidence: float = 0.5
    wander_start_hour: int = 0
    wander_end_hour: int = 5
    wander_confirm_s: float = 300.0  # after the door was last used: nobody moved inside, bed empty
    bathroom_night_s: float = 15 * 60.0  # the floor; learned: 1.25 x longest normal stay + 5 min
    bathroom_learn_stays: int = 5
    # words in a room's or door's name (any decoration: "front_door", "Bathroom 2")
    # (and in Chinese, as installers in a Chinese community name them: 卫生间, 入户门...)
    bathroom_rooms: tuple[str, ...] = ("bathroom", "toilet", "washroom", "wc", "restroom", "shower", "bath",
                                       "卫生间", "浴室", "厕所", "洗手间", "淋浴", "卫浴")
    entrance_doors: tuple[str, ...] = ("entrance", "front", "main", "entry", "apartment", "home",
                                       "入户门", "进户门", "户门", "大门", "正门", "玄关")

    # --- every device ---
    offline_after_s: float = 900.0  # no message for this long = offline (3 missed 5-min heartbeats)...
    # ...or this many of the device's own (learned) heartbeat periods, when it beats more slowly
    # (a battery meter every 30 min), at most offline_max_s (3 missed daily reports)
    offline_missed_beats: int = 3
    offline_max_s: float = 3 * 86400.0
    # After a last-will "offline" (the connection dropped): a reboot, a firmware update or a
    # radio hiccup is back within minutes; this is still three times faster than the
    # heartbeat rule for a Level 3 work order.
    offline_grace_s: float = 300.0
    battery_low_pct: float = 20.0
    battery_ok_pct: float = 25.0
    stuck_after_s: float = 6 * 3600.0
    stuck_min_readings: int = 20
    stuck_fields: tuple[str, ...] = ("pressure_kpa", "level_pct")
    # Numeric payload fields the learned baseline watches on every device
    # (opt-in: e.g. ["vibration_mg", "pressure_kpa"]); see statistical.py.
    anomaly_fields: tuple[str, ...] = ()
    anomaly_learn_s: float = 3 * 86400.0  # no decision before a stream has shown its daily pattern 3 times
    anomaly_raise_at: float = 0.62  # one reading this surprising opens (surprise ~5: one in 100,000)
    anomaly_slack: float = 0.4  # ...or readings above this (one in 100) add up
    anomaly_evidence: float = 0.45  # ...to this much excess (statistical.Decision)
    anomaly_clear_after: int = 6  # readings in a row below statistical.Decision.clear_at that clear it
    # Fields whose cycle does not follow the clock (a tank refills when drawn down to the pump's start
    # level, at a different hour every day): no time-of-day profile, no run rule (telemetry_health.py).
    anomaly_unclocked_fields: tuple[str, ...] = ("level_pct",)
    anomaly_jump_factor: float = 2.0  # a step > this x the fastest normal rate of change is not the process
    anomaly_jumps: int = 3  # ...and this many of them (a glitch out and back is 2)
    anomaly_jump_window_s: float = 3600.0  # ...within this long: an erratic sensor
    anomaly_envelope_half_life_s: float = 7 * 86400.0  # the fastest rate learned fades by half in a week
    anomaly_run_spreads: float = 3.0  # a reading this many typical deviations off the usual for its hour...
    anomaly_run_s: float = 1500.0  # ...with every reading since, on the same side, for this long...
    anomaly_run_readings: int = 6  # ...and at least this many readings: a lasting offset (a drifted load cell)
    anomaly_run_hold_s: float = 86400.0  # a run lasting this long is a new normal (learned, no longer holds)
    anomaly_run_rest: int = 200  # readings after an incident before a run may start (2 / level_alpha)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


_FIELDS = set(Thresholds.__struct_fields__)


def check_overrides(values: dict[str, Any], where: str) -> None:
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown threshold(s) {', '.join(unknown)}")


class DetectorConfig(msgspec.Struct, kw_only=True, dict=True):
    """Defaults plus overrides by scope (``community:c1``, ``building:b1``, ``device:d1``)."""

    defaults: Thresholds = msgspec.field(default_factory=Thresholds)
    overrides: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    reopen_window_s: float = 30 * 60.0  # a condition back within this reopens its incident
    # A condition that became true longer ago than this when the engine learned of it
    # (late data) pages nobody unless it is Level 1 or still true once the device's data
    # is current again; it is recorded with its true times either way.
    page_late_s: float = 60.0
    # A device whose latest message arrived more than this after its event time is
    # delivering late data (a store-and-forward upload, a drained backlog): it does not
    # hold back its community's watermark, and its late readings count from the
    # watermark on for conditions that span devices.
    watermark_lateness_s: float = 30.0
    silence_grace_s: float = 600.0  # a silence lasts this much longer (readings lag its end)

    def __post_init__(self) -> None:
        for key, values in self.overrides.items():
            scope = key.split(":", 1)[0]
            if scope not in ("community", "building", "device") or ":" not in key:
                raise ValueError(f"override key {key!r} must be community:<id>, building:<id> or device:<id>")
            check_overrides(values, f"override {key!r}")
            try:
                msgspec.convert({**msgspec.structs.asdict(self.defaults), **values}, Thresholds)
            except msgspec.ValidationError as exc:
                raise ValueError(f"override {key!r}: {exc}") from None
        self._cache: dict[tuple[str, str | None, str], Thresholds] = {}

    def for_device(self, device: Device) -> Thresholds:
        key = (device.community_id, device.building_id, device.device_id)
        found = self._cache.get(key)
        if found is not None:
            return found
        merged: dict[str, Any] = {}
        for scope_key in (f"community:{device.community_id}", f"building:{device.building_id}", f"device:{device.device_id}"):
            merged.update(self.overrides.get(scope_key, {}))
        found = msgspec.structs.replace(self.defaults, **merged) if merged else self.defaults
        self._cache[key] = found
        return found

    @classmethod
    def from_file(cls, path: str) -> DetectorConfig:
        """A JSON file: {"defaults": {...}, "overrides": {"building:b1": {...}}}."""
        with open(path, "rb") as fh:
            raw = msgspec.json.decode(fh.read())
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: the detector configuration must be a JSON object")
        check_overrides(raw.get("defaults", {}), f"{path} defaults")
        try:
            return msgspec.convert(raw, DetectorConfig)
        except msgspec.ValidationError as exc:
            raise ValueError(f"{path}: {exc}") from None


def local_hour(ts: float, zone: ZoneInfo) -> float:
    """Hour of the local day as a float (7.5 is 07:30)."""
    t = dt.datetime.fromtimestamp(ts, zone)
    return t.hour + t.minute / 60 + t.second / 3600


def local_day(ts: float, zone: ZoneInfo) -> int:
    """Days since the epoch in local time (changes at local midnight)."""
    t = dt.datetime.fromtimestamp(ts, zone)
    return t.toordinal()


def in_window(hour: float, start: float, end: float) -> bool:
    """Is ``hour`` in [start, end), a window that may wrap midnight (22 -> 6)."""
    if start <= end:
        return start <= hour < end
    return hour >= start or hour < end


CONFIG_ENV = "STEWARD_DETECTOR_CONFIG"


def load_config(environ: dict[str, str] | None = None) -> DetectorConfig:
    """The detector configuration of this process: the JSON file named by
    ``STEWARD_DETECTOR_CONFIG`` when set, else DOMAIN.md's defaults."""
    path = (environ if environ is not None else os.environ).get(CONFIG_ENV)
    if not path:
        return DetectorConfig()
    try:
        return DetectorConfig.from_file(path)
    except OSError as exc:
        raise ValueError(f"{CONFIG_ENV}={path}: cannot read: {exc}") from None
