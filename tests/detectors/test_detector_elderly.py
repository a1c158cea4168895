"""Elderly resident detector: SOS, falls, learned inactivity (in bed and up), night wandering, bathroom."""

from __future__ import annotations

from domain.devices import DeviceType
from detectors.engine import Silence
from dtables import at, device, engine, kinds, play

HUB = device("hub1", DeviceType.ELDERLY, "home_hub", unit="u1")


def motion(t: float, room: str) -> tuple:
    return (t, HUB, "motion", {"room": room})


def bed(t: float, occupied: bool) -> tuple:
    return (t, HUB, "bed", {"occupied": occupied})


def door(t: float, state: str, name: str = "entrance") -> tuple:
    return (t, HUB, "door", {"door": name, "state": state})


def normal_day(day: int, *, wake: float = 6.5, bedtime: float = 22.0, night_trip: bool = True) -> list:
    """Up at ``wake``, bathroom, kitchen, an outing 09:00-10:30, living room, to bed at ``bedtime``."""
    s = []
    if night_trip:
        t = at(3, day=day)
        s += [bed(t, False), motion(t + 20, "bedroom"), motion(t + 60, "bathroom"), motion(t + 300, "bathroom"),
              motion(t + 420, "bedroom"), bed(t + 480, True)]
    t = at(wake, day=day)
    s += [bed(t, False), motion(t + 30, "bedroom"), motion(t + 300, "bathroom"), motion(t + 600, "bathroom"),
          motion(t + 900, "kitchen")]
    t = at(7, 30, day=day)
    while t < at(9, day=day):
        s.append(motion(t, "living_room"))
        t += 300
    s += [door(at(9, day=day), "open"), door(at(9, 0, 8, day=day), "closed"), door(at(10, 30, day=day), "open"),
          door(at(10, 30, 8, day=day), "closed"), motion(at(10, 31, day=day), "hall")]
    t = at(10, 35, day=day)
    while t < at(bedtime, day=day) - 1200:
        s.append(motion(t, "living_room" if int(t // 3600) % 3 else "kitchen"))
        t += 420
    t = at(bedtime, day=day) - 900
    s += [motion(t, "bathroom"), motion(t + 400, "bathroom"), motion(t + 660, "bedroom"), bed(at(bedtime, day=day), True)]
    return s


def learned_engine(days: int = 5):
    eng = engine(HUB)
    steps = []
    for d in range(days):
        steps += normal_day(d)
    assert play(eng, steps) == []  # normal days raise nothing
    return eng


def test_sos_and_fall_are_level_1_at_once() -> None:
    t = at(12)
    got = play(engine(HUB), [(t, HUB, "sos", {}), (t + 1, HUB, "fall", {"confidence": 0.3}), (t + 60, HUB, "fall", {"confidence": 0.9})])
    assert got == [(t, "opened", "sos", 1), (t + 60, "opened", "fall", 1)]


def test_fixed_floor_while_learning() -> None:
    got = play(engine(HUB), normal_day(0)[:-1] + [bed(at(22), True), (at(12, day=1), "tick")])
    assert got == [(at(10, day=1), "opened", "inactivity", 2)]  # 12 h after going to bed


def test_not_up_in_the_morning_after_learning() -> None:
    eng = learned_engine()
    got = play(eng, [(at(12, day=5), "tick"), motion(at(12, 30, day=5), "hall")])
    assert kinds(got) == [("opened", "inactivity", 2), ("cleared", "inactivity", 2)]
    # usually up at 06:30 after 8.5 h: raised 2.5 h (sleep_margin_s) past both, long before noon
    assert got[0][0] == at(9, day=5)


def test_hard_negative_late_night_late_morning() -> None:
    eng = learned_engine()
    steps = normal_day(5)[:-1]  # the usual day, but not to bed at 22:00...
    steps += [motion(at(21, 50, day=5) + i * 600, "living_room") for i in range(17)]  # ...up until 00:40
    steps += [bed(at(0, 40, day=6), True), bed(at(10, 0, day=6), False), motion(at(10, 1, day=6), "bedroom")]
    assert play(eng, steps) == []


def test_collapse_during_the_day_is_caught_by_the_hourly_profile() -> None:
    eng = learned_engine()
    day = normal_day(5)
    up_to_noon = [s for s in day if s[0] <= at(12, day=5)]
    got = play(eng, up_to_noon + [(at(20, day=5), "tick")])
    assert kinds(got) == [("opened", "inactivity", 2)]
    assert got[0][0] < at(16, day=5)  # well before the 12-hour floor


def test_hard_negative_resident_away_with_notice() -> None:
    eng = learned_engine()
    eng.set_silences([Silence("device", "hub1", at(9, day=5), at(17, day=6), reason="away")])
    steps = [s for s in normal_day(5) if s[0] <= at(9, 0, 8, day=5)] + [(at(17, day=6), "tick"), door(at(17, 5, day=6), "open"),
                                                                         motion(at(17, 6, day=6), "hall")]
    assert play(eng, steps) == []


def test_night_wandering() -> None:
    t = at(2)
    got = play(engine(HUB), [bed(t - 120, False), motion(t - 60, "hall"), door(t, "open"), door(t + 15, "closed"),
                             door(t + 1800, "open"), door(t + 1815, "closed"), motion(t + 1900, "hall")])
    # the resident left: nobody moved inside for 5 minutes after the door was last used
    assert got == [(t + 15 + 300, "opened", "night_wandering", 2), (t + 1900, "cleared", "night_wandering", 2)]


def test_hard_negative_a_guest_leaving_at_night_is_not_wandering() -> None:
    t = at(1, 30)
    asleep = [bed(t - 3600, True), door(t, "open"), door(t + 10, "closed"), (t + 1200, "tick")]
    assert play(engine(HUB), asleep) == []  # the resident stayed in bed
    seen_out = [bed(t - 300, False), motion(t - 200, "hall"), door(t, "open"), door(t + 10, "closed"),
                motion(t + 40, "hall"), motion(t + 120, "bedroom"), bed(t + 200, True), (t + 1200, "tick")]
    assert play(engine(HUB), seen_out) == []  # saw the guest out, went back to bed


def test_long_bathroom_stay_at_night_against_the_learned_stays() -> None:
    eng = learned_engine()
    t = at(23, day=5)
    steps = normal_day(5) + [bed(t, False), motion(t + 20, "bedroom")] + [motion(t + 60 + k * 120, "bathroom") for k in range(20)]
    steps += [motion(t + 2500, "bedroom")]
    got = play(eng, steps)
    # learned: longest normal stay ~11 min -> limit max(15 min, 1.25 x 11 + 5 = 18.75 min)
    assert kinds(got) == [("opened", "long_bathroom_stay", 2), ("cleared", "long_bathroom_stay", 2)]
    assert 15 * 60 <= got[0][0] - (t + 60) <= 20 * 60


def test_hard_negative_evening_bathroom_before_bed() -> None:
    t = at(22, 5)
    assert play(engine(HUB), [motion(t, "bathroom"), motion(t + 400, "bathroom"), motion(t + 840, "bedroom")]) == []


def test_hard_negative_a_long_outing_is_not_inactivity() -> None:
    eng = learned_engine()
    day = [s for s in normal_day(5) if s[0] < at(9, day=5)]
    day += [motion(at(9, day=5) - 30, "hall"), door(at(9, day=5), "open"), door(at(9, 0, 8, day=5), "closed")]
    day += [(at(15, day=5), "tick"), door(at(15, 10, day=5), "open"), door(at(15, 10, 8, day=5), "closed"),
            motion(at(15, 11, day=5), "hall")]
    assert play(eng, day) == []  # out for six hours (learned outings last 90 minutes)


def test_motion_elsewhere_means_out_of_bed_even_if_the_bed_sensor_missed_it() -> None:
    eng = learned_engine()
    day = [s for s in normal_day(5) if s[0] < at(12, day=5)]
    day += [bed(at(12, day=5), True), motion(at(13, day=5), "living_room")]  # nap; the bed exit was never reported
    day += [motion(at(13, 5, day=5) + k * 420, "living_room") for k in range(70)]
    day += [motion(at(21, 50, day=5), "bedroom"), bed(at(22, day=5), True), (at(4, day=6), "tick")]
    assert play(eng, day) == []  # the night is judged from 22:00, not from the nap at noon


def test_hard_negative_early_morning_bathroom_routine() -> None:
    eng = learned_engine()  # usually up at 06:30
    t = at(5, 40, day=5)
    steps = [bed(t, False), motion(t + 30, "bedroom")] + [motion(t + 120 + k * 100, "bathroom") for k in range(14)]
    steps += [motion(t + 1700, "kitchen")]
    assert [c for c in play(eng, steps) if c[2] == "long_bathroom_stay"] == []  # 26 minutes, but it is the morning


def test_quiet_in_the_usual_night_without_a_bed_report_is_sleep() -> None:
    eng = learned_engine()
    day = [s for s in normal_day(5) if s[0] < at(21, 30, day=5)]  # the bed report is missed
    day += [motion(at(21, 50, day=5), "bedroom"), (at(5, day=6), "tick"), bed(at(6, 30, day=6), False)]
    assert play(eng, day) == []


def test_silence_right_after_getting_up_at_night_is_not_sleep() -> None:
    eng = learned_engine()
    day = normal_day(5) + [bed(at(4, 50, day=6), False), motion(at(4, 51, day=6), "hall"), (at(9, day=6), "tick")]
    got = play(eng, day)
    assert kinds(got) == [("opened", "inactivity", 2)]
    assert got[0][0] <= at(7, day=6)


def test_hard_negative_a_holiday_without_a_notice_is_not_inactivity() -> None:
    eng = learned_engine()
    t = at(10, day=5)
    steps = [s for s in normal_day(5) if s[0] < at(8, 50, day=5)]
    steps += [motion(t - 60, "hall"), door(t, "open"), door(t + 10, "closed")] + [(t + h * 3600, "tick") for h in range(1, 80)]
    back = at(16, day=8)
    steps += [door(back, "open"), door(back + 10, "closed"), motion(back + 30, "hall"), motion(back + 300, "kitchen")]
    assert play(eng, steps) == []


def test_coming_home_then_silence_is_judged_as_home() -> None:
    """The door opens while the resident was out: somebody is back; if nothing moves after
    that, the inactivity rules run again (the fixed floor here, as while learning)."""
    t = at(10)
    steps = [motion(t - 60, "hall"), door(t, "open"), door(t + 10, "closed"), door(t + 7200, "open"),
             door(t + 7210, "closed"), (t + 7210 + 13 * 3600, "tick")]
    got = play(engine(HUB), steps)
    assert kinds(got) == [("opened", "inactivity", 2)] and got[0][0] == t + 7210 + 12 * 3600


def test_rooms_and_doors_named_in_chinese() -> None:
    """Installers in a Chinese community name sensors in Chinese (主卫生间, 入户门): a holiday
    through the 入户门 is being out (no inactivity), a night exit through it is wandering,
    and the names match words inside them, not whole tokens. A 阳台门 (balcony) is not
    the entrance."""
    from detectors.elderly import named
    from detectors.config import Thresholds

    th = Thresholds()
    assert named("主卫生间", th.bathroom_rooms) and named("卫生间2", th.bathroom_rooms) and not named("厨房", th.bathroom_rooms)
    assert named("入户门", th.entrance_doors) and not named("阳台门", th.entrance_doors)
    eng = engine(HUB)
    t = at(10)
    away = [motion(t - 60, "客厅"), door(t, "open", "入户门"), door(t + 10, "closed", "入户门")] + [(t + h * 3600, "tick") for h in range(1, 30)]
    assert play(eng, away) == []
    n = at(2, day=3)
    got = play(engine(HUB), [bed(n - 120, False), motion(n - 60, "走廊"), door(n, "open", "入户门"), door(n + 15, "closed", "入户门"),
                             (n + 600, "tick")])
    assert got == [(n + 15 + 300, "opened", "night_wandering", 2)]
