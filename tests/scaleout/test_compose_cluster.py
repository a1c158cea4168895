"""The scaled-out compose file: a 3-node RabbitMQ cluster with quorum-queue MQTT
sessions and sharded workers, checked through compose itself (no Docker engine
runs here; the cluster's behaviour is tested with Debian's RabbitMQ in
test_broker_cluster.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_cluster_file_gives_workers_every_node_and_a_fixed_shard_count() -> None:
    command = ["docker", "compose"] if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True).returncode == 0 else ["docker-compose"]
    if not shutil.which(command[0]):
        pytest.fail("docker compose (or Debian's docker-compose) is needed: run the README's test command")
    done = subprocess.run(
        [*command, "--env-file", str(ROOT / ".env.example"), "-f", str(ROOT / "docker-compose.yml"),
         "-f", str(ROOT / "docker-compose.cluster.yml"), "config"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {"rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "worker", "steward"} <= set(services)
    for name in ("steward", "worker"):
        env = services[name]["environment"]
        assert env["STEWARD_SHARDS"] == "64"
        assert env["STEWARD_MQTT_URL"].endswith("@rabbitmq-1:1883,rabbitmq-2:1883,rabbitmq-3:1883")
    # Devices' credentials go to RabbitMQ (a user per device), not to Mosquitto's file.
    env = services["steward"]["environment"]
    assert env["STEWARD_RABBITMQ_MANAGEMENT_URL"].endswith("@rabbitmq-1:15672") and not env["STEWARD_MOSQUITTO_PASSWORD_FILE"]
    assert "rabbitmq_management" in (ROOT / "deploy/rabbitmq/enabled_plugins").read_text()
    conf = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    assert "mqtt.durable_queue_type = quorum" in conf and "mqtt.allow_anonymous = false" in conf
