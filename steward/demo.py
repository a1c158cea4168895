"""The demo's working control room: people, places, logins, a phone and a first few minutes that show the loop.

`steward run` calls `DemoControlRoom` from one place (``Stack``) unless it is
given ``--no-demo-data``:

- `seed` loads ``demo_data/roster.toml`` (teams, staff, day/night shifts,
  contacts, escalation policies per tier) through the same import as
  ``steward oncall load``, names the community, its buildings and units, and
  creates demo logins linked to staff members (operator, supervisor, and one
  technician login for every field worker: ``LOGINS``), all upserts, so a
  restart changes nothing;
- `placements` scripts the first minutes: a Level 3 battery-low work order, a
  Level 1 SOS and a Level 2 reader tamper, each a few tens of seconds after the
  start, on the simulator's public `Placement` API;
- `oncall_overrides` points the on-call webhook channel at the demo's own
  receiver (``/demo/phone/inbox``), with a secret made for the run;
- `Responder` plays the on-duty guard: it acknowledges Level 2 pages from the
  link in the message after a while, as a person would from the phone; a
  Level 1 page is left for the newcomer to acknowledge from the phone panel.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

log = logging.getLogger(__name__)

ROSTER = Path(__file__).resolve().parent / "demo_data" / "roster.toml"
COMMUNITY_NAMES = {"c01": "星河湾"}
# Demo logins: (username, role, staff member they are). Every member of a field team (engineering, security,
# elderly care) has one, so whoever a work order is dispatched to can accept it from the page: an order of a
# person without a login could only wait for a supervisor and went overdue (刘芳's Level 1 SOS orders did).
# tests/test_demo.py checks that no field worker of the roster is left without one.
LOGINS = (("operator", "operator", "s-xu"), ("supervisor", "supervisor", "s-zhao"), ("technician", "technician", "s-wang"),
          ("liming", "technician", "s-li"), ("zhouqiang", "technician", "s-zhou"),
          ("chengang", "technician", "s-chen"), ("sunlei", "technician", "s-sun"),
          ("liufang", "technician", "s-liu"), ("hejing", "technician", "s-he"))
FIELD_TEAM_KINDS = ("engineering", "security", "elderly_care")


# The simulator's English device names, as a Chinese property's staff say them.
DEVICE_NAMES_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), r) for p, r in (
    (r"^community gate$", "小区大门门禁"), (r"^garage barrier$", "车库道闸"), (r"^lift (\d+)$", r"\1号电梯"),
    (r"^lobby entrance$", "单元门禁"), (r"^stairwell fire door (\S+)$", r"楼梯间防火门 \1"),
    (r"^inlet pressure$", "进水压力表"), (r"^roof tank$", "屋顶水箱"), (r"^booster pump$", "二次供水加压泵"),
    (r"^riser (\S+) top$", r"\1号立管顶部压力表"), (r"^water meter$", "户水表"), (r"^unit pressure$", "户内水压表"),
    (r"^kitchen leak sensor$", "厨房漏水探测器"), (r"^elderly home hub$", "居家养老呼叫器"),
))


def device_name_zh(name: str | None) -> str | None:
    for pattern, chinese in DEVICE_NAMES_ZH:
        if name and pattern.match(name):
            return pattern.sub(chinese, name)
    return None


@dataclass(frozen=True)
class DemoTiming:
    """When the scripted first incidents start, after the simulator starts (seconds)."""

    battery_low_s: float = 15.0
    sos_s: float = 30.0
    tamper_s: float = 50.0
    responder_delay_s: float = 40.0  # the guard acknowledges a Level 2 page this long after it arrived


class DemoControlRoom:
    def __init__(self, database_url: str, data_dir: Path, *, timing: DemoTiming | None = None) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.timing = timing or DemoTiming()
        self.sink_secret = secrets.token_urlsafe(32)  # per run: only this process's on-call signs for the phone
        self.logins_password: str | None = None
        self._responder: Responder | None = None

    # --- data -------------------------------------------------------------------------------------

    def seed(self, fleet: Any, logins_password: str) -> None:
        from api.security import Role
        from api.users import create_user, get_user, set_communities
        from oncall.config import apply_config, load_file

        config = load_file(ROSTER)
        with psycopg.connect(self.database_url) as conn:
            apply_config(conn, config)
            self._places(conn, fleet)
            self._device_names(conn, fleet)
            for username, role, staff_id in LOGINS:
                user = get_user(conn, username=username)
                if user is None:
                    user = create_user(conn, username=username, password=logins_password, role=Role(role),
                                       community_ids=sorted(COMMUNITY_NAMES), display_name=username)
                else:
                    set_communities(conn, user_id=user.id, community_ids=sorted(set(user.communities)
                                                                              | set(COMMUNITY_NAMES)))
                conn.execute("UPDATE api_users SET staff_id = %s WHERE id = %s AND staff_id IS NULL",
                             (staff_id, user.id))
        self.logins_password = logins_password

    @staticmethod
    def _places(conn: psycopg.Connection, fleet: Any) -> None:
        from api.store.people import PlaceRecord, upsert_places

        places = [PlaceRecord(c, c, "community", None, name) for c, name in COMMUNITY_NAMES.items()]
        for i, building in enumerate(fleet.buildings, start=1):
            community = building.building_id.split("-")[0]
            places.append(PlaceRecord(building.building_id, community, "building", community, f"{i}号楼"))
            for unit in building.units:
                places.append(PlaceRecord(unit.unit_id, community, "unit", building.building_id,
                                          f"{unit.floor:02d}{unit.position:02d}"))
        upsert_places(conn, places)

    @staticmethod
    def _device_names(conn: psycopg.Connection, fleet: Any) -> None:
        """The demo community is Chinese: its devices are named as its staff name them (the simulator's
        fleet names them in English)."""
        for device in fleet.devices:
            name = device_name_zh(device.name)
            if name is not None and name != device.name:
                conn.execute("UPDATE devices SET name = %s WHERE device_id = %s", (name, device.device_id))

    # --- the first minutes ------------------------------------------------------------------------

    def placements(self, fleet: Any, start: dt.datetime) -> list[Any]:
        from simulators import Placement

        def first(kind: str) -> str:
            return next(d.device_id for d in fleet.devices if d.kind == kind and d.building_id)

        t = self.timing
        at = lambda s: start + dt.timedelta(seconds=s)  # noqa: E731
        return [
            Placement(type="battery_low", at=at(t.battery_low_s), target=first("leak"), minutes=600),
            Placement(type="elderly_sos", at=at(t.sos_s), target=first("home_hub")),
            Placement(type="reader_tamper", at=at(t.tamper_s), target=first("entrance"), minutes=20),
        ]

    # --- the phone --------------------------------------------------------------------------------

    def oncall_overrides(self, api_base_url: str) -> dict[str, Any]:
        return {"webhook_url": f"{api_base_url}/demo/phone/inbox", "webhook_secret": self.sink_secret,
                "backoff_base_s": 2.0}

    def start_responder(self) -> None:
        self._responder = Responder(self.database_url, delay=dt.timedelta(seconds=self.timing.responder_delay_s))
        self._responder.start()

    def stop(self) -> None:
        if self._responder is not None:
            self._responder.stop()


class Responder:
    """The on-duty guard of the demo: acknowledges Level 2 pages from the phone's link."""

    def __init__(self, database_url: str, *, delay: dt.timedelta, interval_s: float = 2.0) -> None:
        self.database_url = database_url
        self.delay = delay
        self.interval_s = interval_s
        self._done: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-responder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def respond_once(self, now: dt.datetime) -> int:
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (m.incident_id) m.incident_id, m.links->>'ack' FROM demo_phone_messages m"
                " JOIN incidents i ON i.id = m.incident_id"
                " WHERE i.tier = 2 AND i.status = 'open' AND m.received_at <= %s AND m.links ? 'ack'"
                " ORDER BY m.incident_id, m.id", (now - self.delay,),
            ).fetchall()
        acted = 0
        for incident_id, url in rows:
            if incident_id in self._done:
                continue
            self._done.add(incident_id)
            try:
                r = httpx.post(url, headers={"Accept": "application/json"}, timeout=5)
                acted += r.status_code == 200
            except httpx.HTTPError:
                log.warning("demo responder could not reach %s", url.split("/oncall/")[0])
        return acted

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.respond_once(dt.datetime.now(dt.UTC))
            except psycopg.Error:
                log.warning("demo responder: database unavailable", exc_info=True)
