"""Mosquitto run with deploy/mosquitto's configuration and ACL files as shipped; only its paths and ports are
this machine's, and the services' accounts are written as the compose entrypoint writes them."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from steward.brokers import free_port, mosquitto_binary, mosquitto_password_hash, wait_for_port
from steward.identity import ServiceAccount

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "mosquitto"


@dataclass
class ProductionBroker:
    """deploy/mosquitto/mosquitto.conf with its paths and ports made private."""

    workdir: Path
    gateway_password: str
    push_password: str
    device_port: int = 0
    service_port: int = 0  # the gateway's listener
    push_port: int = 0  # on-call push's listener
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def devices_passwd(self) -> Path:
        return self.workdir / "auth" / "devices.passwd"

    def render(self) -> Path:
        auth, config, data = (self.workdir / d for d in ("auth", "config", "data"))
        for folder in (auth, config, data):
            folder.mkdir(parents=True, exist_ok=True)
        text = (DEPLOY / "mosquitto.conf").read_text()
        replacements = [
            ("listener 1883\n", f"listener {self.device_port} 127.0.0.1\n"),
            ("listener 1884\n", f"listener {self.service_port} 127.0.0.1\n"),
            ("listener 1885\n", f"listener {self.push_port} 127.0.0.1\n"),
            ("/mosquitto/config/auth/", f"{auth}/"),
            ("/mosquitto/config/", f"{config}/"),
            ("/mosquitto/data/", f"{data}/"),
            ("log_dest stdout", f"log_dest file {self.workdir / 'mosquitto.log'}"),
        ]
        for old, new in replacements:
            assert old in text, f"deploy/mosquitto/mosquitto.conf no longer has {old!r}: update this test's rendering"
            text = text.replace(old, new)
        if os.geteuid() == 0:
            text += "\nuser root\n"  # keep this private folder's files readable
        for acl in ("acl-devices", "acl-services"):
            (config / acl).write_text((DEPLOY / acl).read_text())
        # What entrypoint.sh writes: each service's account in its listener's file, an empty devices' file.
        (auth / "gateway.passwd").write_text(
            f"{ServiceAccount.GATEWAY}:{mosquitto_password_hash(self.gateway_password)}\n")
        (auth / "push.passwd").write_text(f"{ServiceAccount.PUSH}:{mosquitto_password_hash(self.push_password)}\n")
        self.devices_passwd.touch()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(text)
        return conf

    def start(self) -> ProductionBroker:
        self.device_port, self.service_port, self.push_port = free_port(), free_port(), free_port()
        conf = self.render()
        self.process = subprocess.Popen([mosquitto_binary() or "mosquitto", "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port("127.0.0.1", self.device_port)
            wait_for_port("127.0.0.1", self.service_port)
            wait_for_port("127.0.0.1", self.push_port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start with the production config: {self.log[-2000:]}") from None
        except BaseException:  # whatever cut the wait short, the broker must not outlive it
            self.stop()
            raise
        return self

    def hup(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
