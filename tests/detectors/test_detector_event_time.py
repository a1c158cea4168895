"""Event time, late data and paging, with the production defaults (2 s reorder window,
a silent device's clock running on for 6 minutes): tables of messages with their
own receive times."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from domain.devices import DeviceType
from domain.incidents import IncidentChange
from detectors.config import DetectorConfig, Thresholds
from detectors.engine import Engine
from dtables import at, device, event

DOOR = device("door1", DeviceType.ACCESS, "entrance")
HUB = device("hub1", DeviceType.ELDERLY, "home_hub", unit="u1")
LIFT = device("lift1", DeviceType.ELEVATOR, "lift")
METER = device("m1", DeviceType.WATER, "meter", unit="u1")
NOW = at(14)
UTC = dt.timezone.utc


def engine(*devices: Any, **thresholds: Any) -> Engine:
    return Engine(DetectorConfig(defaults=Thresholds(**thresholds)), {d.device_id: d for d in devices})


def received(dev: Any, type_: str, ts: float, rx: float, **fields: Any):
    return msgspec.structs.replace(event(dev, type_, ts, **fields), received_at=dt.datetime.fromtimestamp(rx, UTC))


def feed(eng: Engine, steps: list) -> list[IncidentChange]:
    """(receive time, event) or (receive time, None) for a tick; ticks every second in between."""
    out: list[IncidentChange] = []
    clock = steps[0][0]
    for rx, ev in steps:
        while clock < rx:
            out += eng.advance(clock)
            clock += 1.0
        out += eng.advance(rx)
        if ev is not None:
            out += eng.on_event(ev)
    return out


def summary(changes: list[IncidentChange]) -> list[tuple]:
    return [(c.kind, c.condition, round(c.ts.timestamp() - NOW, 1), c.pages) for c in changes]


def test_the_issues_case_a_door_opened_two_hours_ago_closed_three_seconds_later() -> None:
    """Opened at now - 2 h (payload time), closed 3 s later: no held-open, nothing before it opened."""
    eng = engine(DOOR)
    t0 = NOW - 7200
    got = feed(eng, [(NOW - 5, received(DOOR, "access", t0 - 2, NOW - 5, result="granted", credential="r-1")),
                     (NOW, received(DOOR, "door", t0, NOW, state="open")),
                     (NOW + 3, received(DOOR, "door", t0 + 3, NOW + 3, state="closed")), (NOW + 600, None)])
    assert [c for c in got if c.condition != "offline"] == []


def test_a_past_held_open_is_recorded_with_its_true_times_and_pages_nobody() -> None:
    eng = engine(DOOR)
    t0 = NOW - 7200
    got = feed(eng, [(NOW, received(DOOR, "access", t0 - 2, NOW, result="granted", credential="r-1")),
                     (NOW, received(DOOR, "door", t0, NOW, state="open")),
                     (NOW + 1, received(DOOR, "door", t0 + 400, NOW + 1, state="closed")),
                     (NOW + 10, received(DOOR, "heartbeat", NOW + 10, NOW + 10, battery=90.0)), (NOW + 30, None)])
    assert summary([c for c in got if c.condition == "door_held_open"]) == [
        ("opened", "door_held_open", -7200 + 300, False), ("cleared", "door_held_open", -7200 + 400, True)]


def test_late_data_about_a_condition_still_true_pages_once_the_device_is_current() -> None:
    eng = engine(DOOR)
    t0 = NOW - 3600
    got = feed(eng, [(NOW, received(DOOR, "access", t0 - 2, NOW, result="granted", credential="r-1")),
                     (NOW, received(DOOR, "door", t0, NOW, state="open")),
                     (NOW + 1, received(DOOR, "heartbeat", t0 + 900, NOW + 1, battery=90.0)),
                     (NOW + 20, received(DOOR, "heartbeat", NOW + 20, NOW + 20, battery=90.0)), (NOW + 40, None)])
    held = [(c.kind, c.pages, c.detail.get("late_s") is not None or c.detail.get("late") is True)
            for c in got if c.condition == "door_held_open"]
    # opened from the backlog (nobody paged: not known to be still true), then paged as soon as
    # the reader's data is current and the door is still open, with its age
    assert held == [("opened", False, True), ("updated", True, True)]


def test_a_late_sos_pages_at_once_with_its_age() -> None:
    eng = engine(HUB)
    got = feed(eng, [(NOW, received(HUB, "sos", NOW - 7200, NOW))])
    [sos] = [c for c in got if c.condition == "sos"]
    assert sos.pages and sos.ts.timestamp() == NOW - 7200 and sos.detail["late_s"] == 7200


def test_sos_and_entrapment_codes_do_not_wait_for_the_reorder_window() -> None:
    eng = engine(HUB, LIFT)
    assert summary(eng.on_event(received(HUB, "sos", NOW, NOW))) == [("opened", "sos", 0.0, True)]
    got = eng.on_event(received(LIFT, "fault", NOW, NOW, code=7, active=True))
    assert summary(got) == [("opened", "entrapment", 0.0, True)]
    # a fault that needs its 5 s confirmation waits for the window as usual
    assert eng.on_event(received(LIFT, "fault", NOW + 1, NOW + 1, code=10, active=True)) == []
    assert [c.condition for c in eng.advance(NOW + 8)] == ["fault.10"]


def test_a_device_s_own_messages_out_of_order_within_the_window_are_applied_in_order() -> None:
    """The contact reports the opening before the reader reports the grant, and the grant
    message arrives last: not a forced door."""
    eng = engine(DOOR)
    got = feed(eng, [(NOW + 0.2, received(DOOR, "door", NOW, NOW + 0.2, state="open")),
                     (NOW + 1.5, received(DOOR, "access", NOW - 0.5, NOW + 1.5, result="granted", credential="r-1")),
                     (NOW + 9, received(DOOR, "door", NOW + 8, NOW + 9, state="closed")), (NOW + 30, None)])
    assert got == []


def test_a_silent_devices_clock_runs_on_for_its_timers_and_then_stops() -> None:
    """A door opened and said nothing more: its held-open fires at its deadline (the clock
    runs on); a hub whose uplink died says nothing: no inactivity, only offline."""
    eng = engine(DOOR)
    got = feed(eng, [(NOW - 3, received(DOOR, "access", NOW - 3, NOW - 3, result="granted", credential="r-1")),
                     (NOW, received(DOOR, "door", NOW, NOW, state="open")), (NOW + 320, None)])
    assert summary(got) == [("opened", "door_held_open", 300.0, True)]
    eng = engine(HUB, inactivity_fixed_s=3600.0)
    got = feed(eng, [(NOW, received(HUB, "motion", NOW, NOW, room="kitchen")), (NOW + 3 * 3600, None)])
    assert [c.condition for c in got] == ["offline"]  # at NOW + 900: the hub, not the resident


def test_a_gap_in_a_devices_own_times_is_offline_even_when_the_data_came_late() -> None:
    eng = engine(METER)
    t0 = NOW - 7200
    got = feed(eng, [(NOW, received(METER, "heartbeat", t0, NOW, battery=90.0)),
                     (NOW + 0.5, received(METER, "heartbeat", t0 + 2000, NOW + 0.5, battery=90.0)), (NOW + 10, None)])
    assert summary(got) == [("opened", "offline", -7200 + 900, False), ("cleared", "offline", -7200 + 2000, True)]


def test_the_receiver_being_away_is_not_device_silence() -> None:
    eng = engine(METER)
    feed(eng, [(NOW, received(METER, "heartbeat", NOW, NOW, battery=90.0)), (NOW + 100, None)])
    eng.resume(NOW + 3600)  # the gateway was down for an hour; the broker kept the backlog
    backlog = [(NOW + 3600 + k * 0.01, received(METER, "heartbeat", NOW + 300 * k, NOW + 3600 + k * 0.01, battery=90.0))
               for k in range(1, 13)]
    assert feed(eng, backlog + [(NOW + 3700, None)]) == []
