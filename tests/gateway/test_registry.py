"""The gateway judges a device by what the registry says now, not by its cache."""

from __future__ import annotations

import psycopg

from domain.devices import Device, DeviceType
from gateway.service import GatewayConfig
from ingest.registry import upsert_devices
from steward.brokers import MosquittoBroker
from steward.publisher import publish_all
from steward.settings import MqttEndpoint
from tests.gateway.helpers import count, flow, register_meters, running_gateway, wait_for


def _reasons(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT device_id, detail FROM dead_letters ORDER BY id").fetchall()


def test_a_device_registered_right_after_an_unknown_one_is_accepted(
    mosquitto: MosquittoBroker, database_url: str
) -> None:
    config = GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id="gw-reg-new")
    with running_gateway(config) as gw:
        publish_all(mosquitto.url, [flow("wm00000", 1)])  # not registered yet
        wait_for(lambda: gw.rejected == 1, 20, "the unknown device's message to be dead-lettered")
        # Registered a moment later (well within any reload interval): its next message is stored.
        register_meters(database_url, 1)
        publish_all(mosquitto.url, [flow("wm00000", 2)])
        assert gw.wait_committed(1, timeout=20)
    assert gw.rejected == 1
    (letter,) = _reasons(database_url)
    assert letter == ("wm00000", "device 'wm00000' is not registered (or retired)")
    assert count(database_url, "SELECT count(*) FROM events WHERE msg_id = 'm2'") == 1


def test_a_device_moved_to_another_community_is_judged_by_its_new_place(
    mosquitto: MosquittoBroker, database_url: str
) -> None:
    (device,) = register_meters(database_url, 1, community="c1")
    config = GatewayConfig(mqtt=MqttEndpoint(mosquitto.url), database_url=database_url, client_id="gw-reg-move")
    with running_gateway(config) as gw:
        publish_all(mosquitto.url, [flow(device, 1, community="c1")])
        assert gw.wait_committed(1, timeout=20)  # the cache now holds it in c1
        with psycopg.connect(database_url) as conn:
            upsert_devices(
                conn,
                [Device(device_id=device, community_id="c2", device_type=DeviceType.WATER, kind="meter")],
            )
        publish_all(mosquitto.url, [flow(device, 2, community="c2")])
        assert gw.wait_committed(2, timeout=20)
        publish_all(mosquitto.url, [flow(device, 3, community="c1")])  # its old place
        wait_for(lambda: gw.rejected == 1, 20, "the message from the old community to be dead-lettered")
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT msg_id, community_id FROM events ORDER BY msg_id").fetchall()
    assert stored == [("m1", "c1"), ("m2", "c2")]
    assert _reasons(database_url) == [(device, f"device {device!r} is not registered in community 'c1'")]
