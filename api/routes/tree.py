"""The community → building → unit → device tree the console browses, with each device's state.

A device is ``offline`` while the detectors hold an open ``offline`` incident for it
(no message for its timer, or its last will), ``never_seen`` before its first
message, else ``online``; with its battery and its open incidents. Names come
from ``places`` (ids where a place has no name).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import Conn, Reader, visible
from api.errors import ERROR_RESPONSES
from api.params import IDENT

router = APIRouter(tags=["devices"], responses=ERROR_RESPONSES)


class TreeDevice(BaseModel):
    device_id: str
    device_type: str
    kind: str
    name: str
    state: Literal["online", "offline", "never_seen"]
    last_seen_at: dt.datetime | None
    battery: float | None
    open_incidents: int
    worst_tier: int | None


class TreeUnit(BaseModel):
    id: str
    name: str
    devices: list[TreeDevice]


class TreeBuilding(BaseModel):
    id: str
    name: str
    units: list[TreeUnit]
    devices: list[TreeDevice]  # devices of the building itself (lifts, entrances, tanks...)


class TreeCommunity(BaseModel):
    id: str
    name: str
    buildings: list[TreeBuilding]
    devices: list[TreeDevice]  # devices of no building (gates, garages)
    counts: dict[str, int]


SQL = """
SELECT d.device_id, d.community_id, d.building_id, d.unit_id, d.device_type, d.kind, d.name, d.last_seen_at,
       d.battery, coalesce(i.open, 0), i.worst, coalesce(i.offline, false)
FROM devices d
LEFT JOIN LATERAL (
    SELECT count(*) AS open, min(tier) AS worst, bool_or(condition = 'offline') AS offline
    FROM incidents WHERE status <> 'resolved' AND community_id = d.community_id AND d.device_id = ANY(device_ids)
) i ON true
WHERE d.community_id = ANY(%s) AND d.status = 'active'
ORDER BY d.community_id, d.building_id NULLS FIRST, d.unit_id NULLS FIRST, d.device_id
"""


@router.get("/tree", response_model=list[TreeCommunity])
def tree(caller: Reader, conn: Conn, community: Annotated[str | None, Query(pattern=IDENT)] = None
         ) -> list[TreeCommunity]:
    """Every active device of the caller's communities, by building and unit, with its state."""
    communities = visible(caller, community)
    names = dict(conn.execute("SELECT place_id, name FROM places WHERE community_id = ANY(%s)",
                              (communities,)).fetchall())
    out: dict[str, TreeCommunity] = {}
    buildings: dict[tuple[str, str], TreeBuilding] = {}
    units: dict[tuple[str, str], TreeUnit] = {}
    for (device_id, community_id, building_id, unit_id, device_type, kind, name, last_seen, battery, open_,
         worst, offline) in conn.execute(SQL, (communities,)):
        state = "offline" if offline else ("never_seen" if last_seen is None else "online")
        device = TreeDevice(device_id=device_id, device_type=device_type, kind=kind, name=name or "",
                            state=state, last_seen_at=last_seen, battery=battery, open_incidents=open_,
                            worst_tier=worst)
        c = out.get(community_id)
        if c is None:
            c = out[community_id] = TreeCommunity(id=community_id, name=names.get(community_id, community_id),
                                                  buildings=[], devices=[], counts={})
        c.counts[state] = c.counts.get(state, 0) + 1
        if building_id is None:
            c.devices.append(device)
            continue
        b = buildings.get((community_id, building_id))
        if b is None:
            b = buildings[(community_id, building_id)] = TreeBuilding(
                id=building_id, name=names.get(building_id, building_id), units=[], devices=[])
            c.buildings.append(b)
        if unit_id is None:
            b.devices.append(device)
            continue
        u = units.get((building_id, unit_id))
        if u is None:
            u = units[(building_id, unit_id)] = TreeUnit(id=unit_id, name=names.get(unit_id, unit_id), devices=[])
            b.units.append(u)
        u.devices.append(device)
    return list(out.values())
