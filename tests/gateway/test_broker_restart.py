"""The re-subscribe gap: after a broker restart, devices publish at once, before the
gateway is back. The gateway's persistent session (and its subscription) survives
a clean broker restart, so the broker queues those messages for it; the gateway
reconnects within its short backoff (the measured delay is printed)."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.service import GatewayConfig
from steward.brokers import MosquittoBroker
from steward.publisher import publish_all
from steward.settings import MqttEndpoint
from tests.gateway.helpers import count, flow, register_meters, running_gateway, wait_for


def test_messages_published_right_after_a_broker_restart_are_not_lost(database_url: str, tmp_path: Path) -> None:
    devices = register_meters(database_url, 10)
    broker = MosquittoBroker(workdir=tmp_path / "mqtt").start()
    try:
        config = GatewayConfig(mqtt=MqttEndpoint(broker.url), database_url=database_url, client_id="gw-restart")
        with running_gateway(config) as gw:
            publish_all(broker.url, [flow(devices[0], 0)])
            assert gw.wait_committed(1, timeout=20)
            broker.stop()  # a clean stop saves the sessions
            wait_for(lambda: not gw.status()["broker_connected"], 20, "the gateway to see the broker go")
            broker.start()
            back = time.monotonic()
            # Devices publish the moment the broker is back, before the gateway reconnects.
            published = publish_all(broker.url, (flow(devices[i % 10], i) for i in range(1, 2001)), client_id="fleet")
            assert published == 2000
            wait_for(lambda: gw.status()["broker_connected"], 30, "the gateway to reconnect")
            reconnect_s = time.monotonic() - back
            wait_for(lambda: count(database_url, "SELECT count(*) FROM events") >= 2001, 60, "every message stored")
            assert count(database_url, "SELECT count(*) FROM events") == 2001
            print(f"gateway subscribed again {reconnect_s:.2f} s after the broker was back")
    finally:
        broker.stop()
