"""The device registry, each device's health, series and roll-ups, and its MQTT credentials."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from api import audit, tenancy
from api.clock import Now
from api.body import Body
from api.deps import Conn, Reader, Settings, allow, visible
from api.errors import ERROR_RESPONSES, Conflict, ErrorResponse, InvalidInput, NotFound, Unavailable
from api.params import IDENT, Cursor, Limit, Since, Until, parse_bucket, time_range
from api.security import Permission
from api.store import devices as store
from api.store import telemetry
from api.users import Caller
from domain.devices import DEVICE_KINDS, Device, DeviceType
from domain.topics import topic_for
from ingest.migrate import current_mode
from steward import identity
from steward.brokers import mosquitto_password_hash

log = logging.getLogger(__name__)
router = APIRouter(prefix="/devices", tags=["devices"], responses=ERROR_RESPONSES)
Manager = Annotated[Caller, Depends(allow(Permission.DEVICE_MANAGE))]
DeviceId = Annotated[str, Path(pattern=IDENT, description="The device id (also its MQTT username)")]


class DeviceBase(Body):
    kind: str = Field(description="Refines the family: see domain.devices.DEVICE_KINDS")
    building_id: str | None = Field(default=None, pattern=IDENT)
    unit_id: str | None = Field(default=None, pattern=IDENT)
    name: str = Field(default="", max_length=200)
    attributes: dict[str, Any] = Field(default_factory=dict)


class DeviceCreate(DeviceBase):
    device_id: str = Field(pattern=IDENT)
    community_id: str = Field(pattern=IDENT)
    device_type: DeviceType
    issue_credentials: bool = Field(default=True, description="Issue MQTT credentials now (returned once)")


class DeviceUpdate(Body):
    kind: str | None = None
    building_id: str | None = Field(default=None, pattern=IDENT)
    unit_id: str | None = Field(default=None, pattern=IDENT)
    name: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] | None = None


class DevicePublic(DeviceBase):
    device_id: str
    community_id: str
    device_type: DeviceType
    status: Literal["active", "retired"]
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    battery: float | None
    has_credentials: bool


class DeviceListPublic(BaseModel):
    data: list[DevicePublic]
    next_cursor: str | None


class MqttCredentials(BaseModel):
    username: str
    password: str = Field(description="Shown once; only a hash is stored")
    publish_topic_prefix: str
    applied_to_broker: bool


class DeviceProvisioned(BaseModel):
    device: DevicePublic
    credentials: MqttCredentials | None


class DeviceHealth(BaseModel):
    device_id: str
    status: Literal["active", "retired"]
    last_seen_at: dt.datetime | None
    silent_seconds: float | None
    battery: float | None
    last_status: str | None = Field(description="Latest message on the status stream: heartbeat, online or offline")
    last_status_at: dt.datetime | None
    has_credentials: bool


class SeriesPointPublic(BaseModel):
    bucket: dt.datetime
    count: int
    min: float | None
    max: float | None
    avg: float | None


class SeriesPublic(BaseModel):
    device_id: str
    field: str
    stream: Literal["event", "telemetry", "status"] | None = Field(
        description="The stream the readings come from (null: no readings in the range)")
    type: str | None = Field(description="The event type the readings come from (null: no readings in the range)")
    bucket_seconds: int
    storage_mode: Literal["timescale", "plain"]
    points: list[SeriesPointPublic]


class RollupPublic(BaseModel):
    bucket: dt.datetime
    type: str
    events: int
    min_value: float | None
    max_value: float | None
    avg_value: float | None
    sum_value: float | None


class RollupListPublic(BaseModel):
    device_id: str
    data: list[RollupPublic]


def _public(row: store.DeviceRow) -> DevicePublic:
    return DevicePublic(**row.__dict__)


def _device_or_404(conn: Any, caller: Caller, device_id: str, *, for_update: bool = False) -> store.DeviceRow:
    row = store.get_device(conn, device_id=device_id, communities=caller.communities, for_update=for_update)
    if row is None:
        raise NotFound(f"device {device_id!r} not found", field="path.device_id")
    return row


def _issue(request: Request, conn: Any, row: store.DeviceRow) -> MqttCredentials:
    password = secrets.token_urlsafe(24)
    store.store_credentials(conn, device_id=row.device_id, username=row.device_id,
                            password_hash=mosquitto_password_hash(password))
    broker = request.app.state.broker
    if broker is not None:
        try:
            broker.set_password(row.device_id, password)
        except ValueError as exc:  # an id this broker cannot confine (RabbitMQ: a dot); rolled back too
            raise InvalidInput(str(exc), field="body.device_id") from exc
        except Exception as exc:  # the transaction rolls back: no credentials the broker does not know
            log.exception("could not apply credentials of %s to the broker", row.device_id)
            raise Unavailable("the broker did not take the device's credentials; nothing was changed") from exc
    return MqttCredentials(
        username=row.device_id, password=password,
        publish_topic_prefix=topic_for(row.community_id, row.device_type, row.device_id, "").rstrip("/"),
        applied_to_broker=broker is not None,
    )


@router.get("", response_model=DeviceListPublic)
def list_devices(caller: Reader, conn: Conn, limit: Limit = 100, cursor: Cursor = None,
                 community: Annotated[str | None, Query(pattern=IDENT)] = None,
                 building: Annotated[str | None, Query(pattern=IDENT)] = None,
                 device_type: DeviceType | None = None,
                 status: Literal["active", "retired"] | None = None) -> DeviceListPublic:
    rows = store.list_devices(conn, communities=visible(caller, community), building_id=building,
                              device_type=device_type.value if device_type else None, status=status,
                              after=cursor, limit=limit)
    return DeviceListPublic(data=[_public(r) for r in rows],
                            next_cursor=rows[-1].device_id if len(rows) == limit else None)


@router.post("", response_model=DeviceProvisioned, status_code=201,
             responses={409: {"model": ErrorResponse, "description": "The device id is registered already"}})
def create_device(body: DeviceCreate, caller: Manager, conn: Conn, request: Request) -> DeviceProvisioned:
    """Register a device and (by default) issue its own MQTT credentials, applied to the broker."""
    tenancy.require(caller, body.community_id, field="body.community_id")
    reserved = identity.reserved_reason(body.device_id)
    if reserved is not None:  # its MQTT username would be a service account's (the gateway's, push's)
        raise InvalidInput(reserved, field="body.device_id")
    kinds = DEVICE_KINDS[body.device_type]
    if body.kind not in kinds:
        raise InvalidInput(f"kind {body.kind!r} is not one of {sorted(kinds)} for {body.device_type} devices",
                           field="body.kind")
    if store.device_exists_anywhere(conn, device_id=body.device_id):
        raise Conflict(f"device_id {body.device_id!r} is already registered", field="body.device_id")
    store.create_device(conn, device=Device(
        device_id=body.device_id, community_id=body.community_id, device_type=body.device_type, kind=body.kind,
        building_id=body.building_id, unit_id=body.unit_id, name=body.name, attributes=body.attributes,
    ))
    # Read back in its community, which may be new to this request's caller (an installation-wide admin's first).
    row = store.get_device(conn, device_id=body.device_id, communities=[body.community_id])
    assert row is not None
    credentials = _issue(request, conn, row) if body.issue_credentials else None
    audit.record(conn, caller=caller, action="device.create", community_id=row.community_id, target_type="device",
                 target_id=row.device_id, detail={"credentials_issued": credentials is not None})
    row = store.get_device(conn, device_id=body.device_id, communities=[body.community_id])
    assert row is not None
    return DeviceProvisioned(device=_public(row), credentials=credentials)


@router.get("/{device_id}", response_model=DevicePublic)
def get_device(device_id: DeviceId, caller: Reader, conn: Conn) -> DevicePublic:
    return _public(_device_or_404(conn, caller, device_id))


@router.patch("/{device_id}", response_model=DevicePublic)
def update_device(device_id: DeviceId, body: DeviceUpdate, caller: Manager, conn: Conn) -> DevicePublic:
    row = _device_or_404(conn, caller, device_id, for_update=True)
    changes = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in changes.items() if v is not None or k in ("building_id", "unit_id")}
    if "kind" in changes and changes["kind"] not in DEVICE_KINDS[DeviceType(row.device_type)]:
        raise InvalidInput(f"kind {changes['kind']!r} is not one of {sorted(DEVICE_KINDS[DeviceType(row.device_type)])}",
                           field="body.kind")
    store.update_device(conn, device_id=device_id, changes=changes)
    audit.record(conn, caller=caller, action="device.update", community_id=row.community_id, target_type="device",
                 target_id=device_id, detail={"fields": sorted(changes)})
    return _public(_device_or_404(conn, caller, device_id))


@router.post("/{device_id}/retire", response_model=DevicePublic)
def retire_device(device_id: DeviceId, caller: Manager, conn: Conn, request: Request) -> DevicePublic:
    """Retire the device: the gateway stops accepting it and its MQTT credentials are revoked."""
    row = _device_or_404(conn, caller, device_id, for_update=True)
    store.retire_device(conn, device_id=device_id)
    username = store.revoke_credentials(conn, device_id=device_id)
    broker = request.app.state.broker
    if broker is not None:
        try:
            broker.revoke(username or device_id)
        except Exception as exc:
            log.exception("could not revoke the credentials of %s at the broker", device_id)
            raise Unavailable("the broker did not revoke the device's credentials; nothing was changed") from exc
    audit.record(conn, caller=caller, action="device.retire", community_id=row.community_id, target_type="device",
                 target_id=device_id, detail={"credentials_revoked": username is not None})
    return _public(_device_or_404(conn, caller, device_id))


@router.post("/{device_id}/credentials", response_model=MqttCredentials, status_code=201,
             responses={409: {"model": ErrorResponse, "description": "The device is retired (`device_retired`)"}})
def rotate_credentials(device_id: DeviceId, caller: Manager, conn: Conn, request: Request) -> MqttCredentials:
    """Issue new MQTT credentials (the old password stops working)."""
    row = _device_or_404(conn, caller, device_id, for_update=True)
    if row.status != "active":
        raise Conflict(f"device {device_id!r} is retired", code="device_retired", field="path.device_id")
    credentials = _issue(request, conn, row)
    audit.record(conn, caller=caller, action="device.credentials", community_id=row.community_id,
                 target_type="device", target_id=device_id)
    return credentials


@router.get("/{device_id}/health", response_model=DeviceHealth)
def device_health(now: Now, device_id: DeviceId, caller: Reader, conn: Conn) -> DeviceHealth:
    row = _device_or_404(conn, caller, device_id)
    last = store.last_status(conn, device_id=device_id)
    return DeviceHealth(
        device_id=device_id, status=row.status, last_seen_at=row.last_seen_at,  # type: ignore[arg-type]
        silent_seconds=(now - row.last_seen_at).total_seconds() if row.last_seen_at else None,
        battery=row.battery, last_status=last[0] if last else None, last_status_at=last[1] if last else None,
        has_credentials=row.has_credentials,
    )


@router.get("/{device_id}/series", response_model=SeriesPublic)
def device_series(
    now: Now, device_id: DeviceId, caller: Reader, conn: Conn, settings: Settings,
    field: Annotated[str, Query(pattern=r"^[a-z_][a-z0-9_]{0,63}$",
                                description="`value` (the type's primary reading) or a numeric/boolean payload field")] = "value",
    bucket: Annotated[str, Query(max_length=10, description="Bucket width: 30s, 5m, 1h, 1d ...")] = "5m",
    since: Since = None, until: Until = None,
    type: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$",
                                      description="The event type whose readings to chart (e.g. flow, heartbeat); "
                                                  "may be left out when only one type of the device carries the "
                                                  "field in the range")] = None,
    stream: Annotated[Literal["event", "telemetry", "status"] | None,
                      Query(description="The stream, to narrow the choice like `type`")] = None,
) -> SeriesPublic:
    """Per-bucket count/min/max/avg of one quantity: one field of one event type on one stream,
    never a mix (a meter's `value` is its flow on `telemetry`/`flow` and its battery on
    `status`/`heartbeat`). Without `type`, the one type that carries the field in the range is
    used; when there are several, 422 names them. Default range: the last 24 hours."""
    _device_or_404(conn, caller, device_id)
    width = parse_bucket(bucket)
    start, end = time_range(since, until, default_span=dt.timedelta(days=1), now=now)
    assert start is not None and end is not None
    if (end - start) / width > settings.series_max_points:
        raise InvalidInput(f"from..to holds more than {settings.series_max_points} buckets of {bucket}; "
                           "use a wider bucket or a shorter range", field="query.bucket")
    mode = current_mode(conn)
    try:
        found = telemetry.series(conn, mode=mode, device_id=device_id, field=field, bucket=width, since=start,
                                 until=end, stream=stream, event_type=type)
    except telemetry.MixedSeries as exc:
        raise InvalidInput(f"{field} is a reading of several event types of this device in this range: {exc}; "
                           "choose one with type=", field="query.type") from None
    return SeriesPublic(device_id=device_id, field=field, stream=found.stream,  # type: ignore[arg-type]
                        type=found.type, bucket_seconds=int(width.total_seconds()),
                        storage_mode=mode.value,  # type: ignore[arg-type]
                        points=[SeriesPointPublic(**p.__dict__) for p in found.points])


@router.get("/{device_id}/rollups", response_model=RollupListPublic)
def device_rollups(now: Now, device_id: DeviceId, caller: Reader, conn: Conn, since: Since = None, until: Until = None,
                   type: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")] = None,
                   limit: Limit = 500) -> RollupListPublic:
    """5-minute roll-ups from ``events_5m`` (a continuous aggregate on TimescaleDB, a view otherwise)."""
    _device_or_404(conn, caller, device_id)
    start, end = time_range(since, until, default_span=dt.timedelta(days=1), now=now)
    assert start is not None and end is not None
    rows = telemetry.rollups(conn, device_id=device_id, since=start, until=end, event_type=type, limit=limit)
    return RollupListPublic(device_id=device_id, data=[RollupPublic(**r.__dict__) for r in rows])

