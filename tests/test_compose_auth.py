"""The compose stack's shared broker-auth volume: the steward service, running as its
own user, adds a device account to the password file the Mosquitto container reads.

In compose the two containers share the volume with different users (steward: uid
10001; mosquitto: uid and gid 1883). Here the real entrypoint (deploy/mosquitto/
entrypoint.sh) prepares a folder and starts the real Mosquitto, which drops to this
machine's mosquitto user; the API's real credential writer then runs (in a forked child) as uid
10001 in the mosquitto group, as the steward image's user is, and after the SIGHUP the
operator sends (`docker compose kill -s HUP mosquitto`) the device logs in.
"""

from __future__ import annotations

import grp
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest

from api.credentials import MosquittoPasswordFile
from steward.brokers import free_port
from tests.gateway.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "deploy" / "mosquitto" / "entrypoint.sh"
STEWARD_UID = 10001  # the Dockerfile's steward user
EXPECTED_IMAGE_GID = 1883  # eclipse-mosquitto's mosquitto group



def _as_steward(gid: int, write: Callable[[], None]) -> str:
    """Run ``write`` in a child process with the steward image's user (uid 10001, in the
    broker's group); returns its error, or "". Forked from this process: the test's
    interpreter may live where that user cannot read (a pyenv under /root)."""
    read, send = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the steward user, write, report, never return into pytest
        os.close(read)
        error = ""
        try:
            os.setgroups([gid])
            os.setgid(STEWARD_UID)
            os.setuid(STEWARD_UID)
            write()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            error = f"{type(exc).__name__}: {exc}"
        os.write(send, error.encode())
        os._exit(0)
    os.close(send)
    with os.fdopen(read, "rb") as answer:
        error = answer.read().decode()
    os.waitpid(pid, 0)
    return error


def _mosquitto_gid() -> int:
    try:
        return grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        pytest.skip("no mosquitto group on this machine (the Debian package creates it)")


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="steward-compose-auth-"))
    folder.chmod(0o755)  # other users pass through, as in a container's file system
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_dockerfile_puts_steward_in_the_mosquitto_images_group() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert f"groupadd --gid {EXPECTED_IMAGE_GID} broker-auth" in text
    assert f"useradd --system --uid {STEWARD_UID} --groups broker-auth steward" in text


def test_steward_as_its_own_user_adds_a_device_that_mosquitto_then_accepts(shared_folder: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the entrypoint changes owners and the writer runs as another user")
    gid = _mosquitto_gid()
    auth, data, port = shared_folder / "auth", shared_folder / "data", free_port()
    data.mkdir()
    conf = shared_folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\n"
                    f"password_file {auth / 'devices.passwd'}\npersistence false\nlog_dest stderr\n")
    env = {"PATH": f"{os.environ.get('PATH', '')}:/usr/sbin", "MOSQUITTO_AUTH_DIR": str(auth),
           "MOSQUITTO_DATA_DIR": str(data), "MOSQUITTO_CONF": str(conf),
           "STEWARD_MQTT_PASSWORD": "gateway-secret", "STEWARD_MQTT_PUSH_PASSWORD": "push-secret"}
    log = (shared_folder / "mosquitto.log").open("wb")
    broker = subprocess.Popen(["sh", str(ENTRYPOINT)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (auth / "push.passwd").exists() and _listening(port), 20, "the broker to listen")
        assert broker.poll() is None, (shared_folder / "mosquitto.log").read_text()

        failure = _as_steward(gid, lambda: MosquittoPasswordFile(auth / "devices.passwd").set_password(
            "lift-a1", "device-secret"))
        assert failure == "", failure
        written = (auth / "devices.passwd").stat()
        # Readable by the broker's group, by nobody else; the services' files stay the broker's own.
        assert (written.st_uid, written.st_gid, stat.S_IMODE(written.st_mode)) == (STEWARD_UID, gid, 0o640)
        for service in ("gateway.passwd", "push.passwd"):
            assert stat.S_IMODE((auth / service).stat().st_mode) == 0o700

        broker.send_signal(signal.SIGHUP)  # docker compose kill -s HUP mosquitto
        wait_for(lambda: _logs_in(port, "lift-a1", "device-secret"), 20, "the device to be let in after the SIGHUP")
        assert not _logs_in(port, "lift-a1", "wrong")
    finally:
        broker.terminate()
        broker.wait(20)
        log.close()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _logs_in(port: int, username: str, password: str) -> bool:
    try:
        mqtt_publish.single("community/c1/elevator/lift-a1/status", "{}", hostname="127.0.0.1", port=port,
                            auth={"username": username, "password": password}, keepalive=5)
    except Exception:  # paho raises MQTTException (not authorised) or OSError
        return False
    return True
