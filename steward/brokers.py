"""Private MQTT brokers for the demo, the tests and the benchmarks.

`MosquittoBroker` runs Debian's ``mosquitto`` binary on a free loopback port
with its own config (password file and the ``%u`` ACL when asked), with the
queue limits raised: Mosquitto's default ``max_queued_messages`` of 1000
silently drops QoS 1 messages for a subscriber that falls behind.
`EmbeddedBroker` is amqtt in this process, for a machine without Mosquitto
(demo only: MQTT 3.1.1, no shared subscriptions).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# A device may write only under its own device id; the gateway and staff apps
# get their own lines.
DEVICE_ACL_PATTERN = "pattern write community/+/+/%u/#\npattern read community/+/+/%u/command/#\n"


def mosquitto_binary() -> str | None:
    """Debian installs the broker in /usr/sbin, which a non-root PATH may lack."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_password_hash(password: str, *, iterations: int = 101) -> str:
    """A Mosquitto 2 password-file hash (``$7$``: PBKDF2-SHA512), as mosquitto_passwd writes it."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def wait_for_port(host: str, port: int, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError(f"nothing listens on {host}:{port} after {deadline_s}s") from None
            time.sleep(0.02)


@dataclass
class MosquittoBroker:
    """A private Mosquitto. ``users`` maps username to password; with users set,
    anonymous access is off and ``acl`` (default: the device pattern plus full
    access for users listed in ``superusers``) is enforced."""

    workdir: Path
    port: int = 0
    users: dict[str, str] = field(default_factory=dict)
    superusers: tuple[str, ...] = ()
    extra_config: str = ""
    # Mosquitto writes its whole in-memory store at each save, blocking everything
    # else meanwhile: with a large backlog queued that is a stall of seconds.
    autosave_interval_s: int = 30
    process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return mosquitto_binary() is not None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def _write_files(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        (self.workdir / "data").mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.workdir / 'data'}/",
            f"autosave_interval {self.autosave_interval_s}",
            # 0 = no limit: never drop QoS 1 messages queued for a slow or offline subscriber.
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "max_packet_size 1048576",
            "persistent_client_expiration 7d",
            f"log_dest file {self.log_path}",
            f"pid_file {self.pid_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # Keep root so the files of this private folder stay readable (Mosquitto
            # would otherwise drop to the mosquitto user).
            lines.append("user root")
        if self.users:
            self.write_passwords()
            lines += [
                "allow_anonymous false",
                f"password_file {self.workdir / 'passwd'}",
                f"acl_file {self.workdir / 'acl'}",
            ]
        else:
            lines.append("allow_anonymous true")
        lines.append(self.extra_config)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def write_passwords(self) -> None:
        passwd = self.workdir / "passwd"
        passwd.write_text("".join(f"{u}:{mosquitto_password_hash(p)}\n" for u, p in self.users.items()))
        acl = "".join(f"user {u}\ntopic readwrite #\n\n" for u in self.superusers) + DEVICE_ACL_PATTERN
        (self.workdir / "acl").write_text(acl)
        for f in (passwd, self.workdir / "acl"):
            os.chmod(f, 0o640 if os.geteuid() == 0 else 0o600)

    def reload(self) -> None:
        """Re-read password and ACL files (SIGHUP), e.g. after provisioning a device."""
        self.write_passwords()
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def start(self) -> MosquittoBroker:
        if not self.port:
            self.port = free_port()
        conf = self._write_files()
        # Its own session: Ctrl-C at the terminal reaches the process group, and the broker
        # must stay up until the gateway has committed and acknowledged what it holds.
        self.process = subprocess.Popen(
            [mosquitto_binary() or "mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            wait_for_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {self.log_tail()}") from None
        return self

    @property
    def pid_path(self) -> Path:
        return self.workdir / "mosquitto.pid"

    def stop_leftover(self, timeout_s: float = 10.0) -> int | None:
        """Stop a Mosquitto still running on this folder's config after its owner was killed
        (SIGKILL): it would hold the persistence files this one is about to use. Returns its pid."""
        try:
            pid = int(self.pid_path.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return None
        if str(self.workdir / "mosquitto.conf").encode() not in cmdline:
            return None  # the pid is someone else's by now
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout_s
        while Path(f"/proc/{pid}").exists() and time.monotonic() < end:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
        return pid

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedBroker:
    """amqtt running in a background thread of this process (MQTT 3.1.1 only)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or free_port()
        self._thread = None
        self._loop = None
        self._broker = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        import asyncio
        import threading

        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._broker = Broker(config, loop=loop)
                loop.run_until_complete(self._broker.start())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise RuntimeError(f"embedded broker failed to start: {errors[0]}")
        return self  # Broker.start() returned: the listener is up

    def stop(self) -> None:
        import asyncio

        if self._loop and self._broker:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                fut.result(10)
            except Exception:
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)


def temp_mosquitto(**kwargs: object) -> MosquittoBroker:
    return MosquittoBroker(workdir=Path(tempfile.mkdtemp(prefix="steward-mqtt-")), **kwargs)  # type: ignore[arg-type]
