"""A broker given as several nodes: when the node the gateway is connected to dies,
the gateway goes on with the next one."""

from __future__ import annotations

import signal
from pathlib import Path

from gateway.service import GatewayConfig
from steward.brokers import MosquittoBroker
from steward.publisher import publish_all
from steward.settings import MqttEndpoint
from tests.gateway.helpers import flow, register_meters, running_gateway, wait_for


def test_the_gateway_moves_to_the_next_node_when_its_node_dies(database_url: str, tmp_path: Path) -> None:
    (device,) = register_meters(database_url, 1)
    with MosquittoBroker(workdir=tmp_path / "a") as a, MosquittoBroker(workdir=tmp_path / "b") as b:
        url = f"mqtt://127.0.0.1:{a.port},127.0.0.1:{b.port}"
        config = GatewayConfig(mqtt=MqttEndpoint(url), database_url=database_url, client_id="gw-nodes")
        with running_gateway(config) as gw:
            publish_all(a.url, [flow(device, 1)])
            assert gw.wait_committed(1, timeout=20)
            assert a.process is not None
            a.process.send_signal(signal.SIGKILL)
            a.process.wait(10)
            wait_for(lambda: gw.status()["broker_connected"], 30, "the gateway to connect to the second node")
            # b has no session of ours from before: a message published before the
            # subscription is not delivered, so publish until one is stored.
            i = 2

            def stored_one_more() -> bool:
                nonlocal i
                topic, payload = flow(device, i)
                publish_all(b.url, [(topic, payload)])
                i += 1
                return gw.wait_committed(2, timeout=1)

            wait_for(stored_one_more, 30, "a message through the second node")
