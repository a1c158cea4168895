"""The production stack's first start, as ``docker compose up`` runs it, on a fresh database.

No Docker engine runs here, so the test does what compose would do with the
steward service, minus the containers:

- it resolves ``docker-compose.yml`` with the documented ``.env.example``
  through ``docker compose config`` itself (variables substituted as compose
  substitutes them), and takes the service's command and environment from it
  and from the ``Dockerfile`` (``CMD``, ``ENV``);
- it replaces only what names the containers' network and volumes: the
  ``timescaledb`` and ``mosquitto`` addresses by servers of its own (a fresh
  database; a Mosquitto run with ``deploy/mosquitto``'s configuration and ACLs
  and the services' accounts its entrypoint creates: tests/production_broker.py),
  the volume paths by folders, and
  the published port by a free one. Without TimescaleDB on the test server the
  storage mode becomes ``plain``; with it the service runs exactly as written.

Then the first start must come up healthy, with nothing else set, and the
administrator must be able to set up the first community: log in with the
password from ``.env``, register a device, and see its first message stored.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from steward.brokers import free_port
from tests.gateway.helpers import count, wait_for
from tests.production_broker import ProductionBroker

ROOT = Path(__file__).resolve().parents[1]


def operator_env(folder: Path) -> Path:
    """.env as the README has the operator make it: .env.example with each change-me placeholder set."""
    lines = [re.sub(r"=change-me.*$", lambda _: "=" + secrets.token_urlsafe(18), line)
             for line in (ROOT / ".env.example").read_text().splitlines()]
    (folder / ".env").write_text("\n".join(lines) + "\n")
    return folder / ".env"


def compose_config(env_file: Path = ROOT / ".env.example") -> dict:
    command = ["docker", "compose"] if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True).returncode == 0 else ["docker-compose"]
    if not shutil.which(command[0]):
        pytest.fail("docker compose (or Debian's docker-compose) is needed: run the README's test command")
    done = subprocess.run([*command, "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"),
                           "config"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def dockerfile() -> tuple[list[str], dict[str, str], list[str]]:
    """The image's CMD, ENV and the folders it copies."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    cmd = json.loads(re.search(r"^CMD\s+(\[.*\])\s*$", text, re.M).group(1))  # type: ignore[union-attr]
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV\s+(.*)$", text, re.M):
        env.update(dict(pair.split("=", 1) for pair in line.split()))
    copied = re.findall(r"^COPY\s+(\S+)\s+\S+\s*$", text, re.M)
    return cmd, env, copied


@pytest.fixture
def fresh_database(empty_database: str) -> str:
    """What the timescaledb container gives on its first start: an empty database."""
    return empty_database


@pytest.fixture
def folders() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="steward-compose-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def http(port: int, path: str, *, data: bytes | None = None, token: str | None = None,
         body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return 0, {}


def test_the_image_copies_every_package_the_service_imports() -> None:
    _, _, copied = dockerfile()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert set(packages["packages"]) <= set(copied), set(packages["packages"]) - set(copied)


def test_the_production_service_starts_on_a_fresh_database_with_the_documented_env(
        fresh_database: str, server_has_timescale: bool, folders: Path, request: pytest.FixtureRequest) -> None:
    dot_env = operator_env(folders)
    service = compose_config(dot_env)["services"]["steward"]
    cmd, image_env, _ = dockerfile()
    command = service.get("command") or cmd
    assert command == ["steward", "run", "--no-simulator"], command
    env_file = dict(line.split("=", 1) for line in dot_env.read_text().split() if "=" in line)
    environment = {**image_env, **{k: str(v) for k, v in service["environment"].items()}}

    # Only the containers' addresses, volumes and the published port become this machine's.
    database = conninfo_to_dict(environment["STEWARD_DATABASE_URL"])
    assert (database["host"], database["port"], database["password"]) == (
        "timescaledb", "5432", env_file["POSTGRES_PASSWORD"])
    # The services' listeners, with their own accounts: the gateway's (1884) and on-call push's (1885).
    broker_url = urllib.parse.urlsplit(environment["STEWARD_MQTT_URL"])
    push_url = urllib.parse.urlsplit(environment["STEWARD_ONCALL_MQTT_URL"])
    assert (broker_url.hostname, broker_url.port, broker_url.username) == ("mosquitto", 1884, "steward-gateway")
    assert (push_url.hostname, push_url.port, push_url.username) == ("mosquitto", 1885, "steward-push")
    broker = ProductionBroker(folders / "mosquitto", broker_url.password or "", push_url.password or "").start()
    request.addfinalizer(broker.stop)  # also when an assertion below fails before the try
    mosquitto, broker_port, passwd = broker.process, broker.device_port, broker.devices_passwd
    assert mosquitto is not None
    assert environment["STEWARD_MOSQUITTO_PASSWORD_FILE"] == "/mosquitto-auth/devices.passwd"
    api_port = free_port()

    def local(url: urllib.parse.SplitResult) -> str:
        port = {1884: broker.service_port, 1885: broker.push_port}[url.port or 0]
        return url._replace(netloc=f"{url.netloc.rsplit('@', 1)[0]}@127.0.0.1:{port}").geturl()

    environment.update(
        STEWARD_DATABASE_URL=fresh_database,
        STEWARD_MQTT_URL=local(broker_url),
        STEWARD_ONCALL_MQTT_URL=local(push_url),
        STEWARD_MOSQUITTO_PASSWORD_FILE=str(passwd),
        STEWARD_DATA_DIR=str(folders / "data"),
        STEWARD_API_HOST="127.0.0.1",
        STEWARD_API_PORT=str(api_port),
    )
    if not server_has_timescale:
        assert environment["STEWARD_STORAGE_MODE"] == "timescale"
        environment["STEWARD_STORAGE_MODE"] = "plain"
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")} | environment
    log = (folders / "steward.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "steward", *command[1:]], cwd=ROOT, env=process_env,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    output = lambda: (folders / "steward.log").read_text(errors="replace")  # noqa: E731
    try:
        # The image's health check: /health answers 200.
        wait_for(lambda: process.poll() is not None or http(api_port, "/health")[0] == 200, 120,
                 "the service to report healthy")
        assert process.poll() is None, output()
        health = http(api_port, "/health")[1]
        assert health["broker_connected"] and health["database_reachable"], health
        assert health["storage_mode"] == ("timescale" if server_has_timescale else "plain")

        # The administrator logs in with the password from .env and sets up the first community.
        status, body = http(api_port, "/auth/token", data=urllib.parse.urlencode(
            {"username": "admin", "password": env_file["STEWARD_ADMIN_PASSWORD"]}).encode())
        assert status == 200, body
        token = body["access_token"]
        assert http(api_port, "/auth/me", token=token)[1]["all_communities"] is True
        status, body = http(api_port, "/devices", token=token, body={
            "device_id": "lift-a1", "community_id": "first-community", "device_type": "elevator", "kind": "lift",
            "building_id": "b1"})
        assert status == 201, body
        credentials = body["credentials"]
        assert credentials["applied_to_broker"] is True
        assert passwd.read_text().count("lift-a1:") == 1
        mosquitto.send_signal(signal.SIGHUP)  # docker compose kill -s HUP mosquitto

        # The device publishes with its own credentials; its message is stored.
        # Event time is the device's (2026-11-18 here), never this machine's clock.
        heartbeat = {"id": "hb-1", "ts": 1_795_000_000_000, "type": "heartbeat", "battery": 90}

        def published_and_stored() -> bool:
            mqtt_publish.single(f"{credentials['publish_topic_prefix']}/status", json.dumps(heartbeat), qos=1,
                                hostname="127.0.0.1", port=broker_port,
                                auth={"username": credentials["username"], "password": credentials["password"]})
            return count(fresh_database, "SELECT count(*) FROM events WHERE device_id = 'lift-a1'") > 0

        wait_for(published_and_stored, 60, "the first device's heartbeat to be stored", interval=1.0)
        status, events = http(api_port, "/events?device=lift-a1", token=token)
        assert status == 200 and [e["device_id"] for e in events["data"]] == ["lift-a1"], events

        process.send_signal(signal.SIGTERM)  # docker compose stop
        assert process.wait(60) == 0, output()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        broker.stop()
        log.close()
    # The admin's password came from the environment and is never written to the log.
    assert env_file["STEWARD_ADMIN_PASSWORD"] not in output()
    assert "Traceback" not in output(), output()


def test_the_env_example_placeholders_are_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copying .env.example without setting the passwords fails the start naming each one, not a weak install."""
    from oncall.settings import OnCallSettings
    from steward.settings import ConfigError, load_settings

    environment = {k: str(v) for k, v in compose_config()["services"]["steward"]["environment"].items()}
    for key in [k for k in os.environ if k.startswith("STEWARD_")]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    message = str(refused.value)
    for name in ("STEWARD_ADMIN_PASSWORD", "STEWARD_MQTT_URL", "STEWARD_DATABASE_URL"):
        assert f"({name}): " in message and "placeholder of .env.example" in message.split(f"({name}): ")[1].split("\n")[0]
    assert "change-me-" not in message.replace("(change-me-...)", "")  # the values themselves are not echoed
    with pytest.raises(ValueError, match="the password in mqtt_url is still a placeholder"):
        OnCallSettings(link_secret="x" * 32, mqtt_url=environment["STEWARD_ONCALL_MQTT_URL"])
