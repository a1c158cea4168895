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
    # On-call runs once (in the steward service), not in every scaled-out worker.
    assert services["worker"]["environment"]["STEWARD_RUN_ONCALL"] == "false"
    assert "STEWARD_RUN_ONCALL" not in services["steward"]["environment"]
    # Devices' credentials go to RabbitMQ (a user per device), not to Mosquitto's file.
    env = services["steward"]["environment"]
    assert env["STEWARD_RABBITMQ_MANAGEMENT_URL"].endswith("@rabbitmq-1:15672") and not env["STEWARD_MOSQUITTO_PASSWORD_FILE"]
    # One account per service: the administrator only manages; push and the gateway each log in as themselves.
    assert env["STEWARD_RABBITMQ_MANAGEMENT_URL"].startswith("http://steward-admin:")
    assert env["STEWARD_ONCALL_MQTT_URL"].startswith("mqtt://steward-push:change-me-push@")
    for name in ("steward", "worker"):
        assert services[name]["environment"]["STEWARD_MQTT_URL"].startswith("mqtt://steward-gateway:change-me-broker@")
        assert services[name]["depends_on"]["rabbitmq-accounts"]["condition"] == "service_completed_successfully"
    for i in (1, 2, 3):
        assert services[f"rabbitmq-{i}"]["environment"]["RABBITMQ_DEFAULT_USER"] == "steward-admin"
    accounts = services["rabbitmq-accounts"]
    assert accounts["command"] == ["steward", "rabbitmq-accounts"]
    assert accounts["environment"]["STEWARD_RABBITMQ_MANAGEMENT_URL"] == env["STEWARD_RABBITMQ_MANAGEMENT_URL"]
    assert accounts["environment"]["STEWARD_MQTT_PUSH_PASSWORD"] == "change-me-push"
    assert "rabbitmq_management" in (ROOT / "deploy/rabbitmq/enabled_plugins").read_text()
    conf = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    assert "mqtt.durable_queue_type = quorum" in conf and "mqtt.allow_anonymous = false" in conf


def test_an_extra_worker_runs_no_on_call_of_its_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """STEWARD_RUN_ONCALL=false: the process starts no escalation scheduler and no channel
    worker (each polls the database every second); the default runs them."""
    from steward.app import Stack
    from steward.settings import load_settings

    monkeypatch.setenv("STEWARD_DATA_DIR", str(tmp_path))

    def services() -> list:
        stack = Stack(load_settings(), api=False, simulator=False)
        stack.database_url, stack.mqtt_url = "postgresql://steward@127.0.0.1:1/steward", "mqtt://127.0.0.1:1"
        return stack._extra_services()

    monkeypatch.setenv("STEWARD_RUN_ONCALL", "false")
    assert services() == []
    monkeypatch.delenv("STEWARD_RUN_ONCALL")
    assert len(services()) == 1


def test_rabbitmq_accounts_refuses_the_env_example_placeholders() -> None:
    """The one-shot service with .env.example as copied: no broker account gets a change-me password
    (refused before any request: the management URL points nowhere)."""
    import os
    import sys

    env = {**os.environ, "STEWARD_RABBITMQ_MANAGEMENT_URL": "http://steward-admin:change-me-rabbitmq-admin@127.0.0.1:1",
           "STEWARD_MQTT_PASSWORD": "change-me-broker", "STEWARD_MQTT_PUSH_PASSWORD": "a-chosen-push-secret"}
    done = subprocess.run([sys.executable, "-m", "steward", "rabbitmq-accounts", "--wait", "0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "STEWARD_MQTT_PASSWORD, STEWARD_RABBITMQ_MANAGEMENT_URL's password is still a placeholder" in done.stderr
    assert "change-me-broker" not in done.stderr
