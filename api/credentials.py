"""Device MQTT credentials: issue on provisioning, revoke on retirement, apply to the broker.

Each device logs in with its own username (its ``device_id``) and the broker's
``pattern write community/+/+/%u/#`` ACL lets it publish only under its own id.
The database keeps only the Mosquitto-format hash (``$7$``, PBKDF2-SHA512); the
plaintext password is returned once, in the provisioning answer.

`CredentialStore` is what the API needs from a broker. `MosquittoPasswordFile`
implements it for Mosquitto's ``password_file``: it rewrites the device's line
atomically (other lines — the gateway's, staff apps' — are kept) and asks
Mosquitto to re-read it (SIGHUP), which also disconnects nobody but makes the
next connection attempt of a revoked device fail. For the compose broker, share
the password file's folder between the API container and the broker container
and give `MosquittoPasswordFile` the broker's pid file (or a ``reload`` that
runs ``docker kill -s HUP``).
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from steward.brokers import mosquitto_password_hash
from steward.identity import reserved_reason


def _refuse_service_accounts(usernames: object) -> None:
    """The API manages devices only: a service account's line (the gateway's, push's) is never its to write."""
    for username in usernames:  # type: ignore[attr-defined]
        reason = reserved_reason(username)
        if reason is not None:
            raise ValueError(reason)


@runtime_checkable
class CredentialStore(Protocol):
    """Where device MQTT credentials take effect (a broker)."""

    def set_password(self, username: str, password: str) -> None: ...

    def revoke(self, username: str) -> None: ...


class MosquittoPasswordFile:
    """A Mosquitto ``password_file`` this process edits, plus how to make Mosquitto re-read it."""

    def __init__(self, path: Path, *, reload: Callable[[], None] | None = None, pid_file: Path | None = None) -> None:
        self.path = Path(path)
        self._reload = reload
        self._pid_file = pid_file
        self._lock = threading.Lock()

    @classmethod
    def for_broker(cls, broker: object) -> MosquittoPasswordFile:
        """For a running `steward.brokers.MosquittoBroker` (its ``workdir/passwd``, SIGHUP to its process)."""
        workdir: Path = broker.workdir  # type: ignore[attr-defined]

        def hup() -> None:
            process = broker.process  # type: ignore[attr-defined]
            if process is None:
                raise RuntimeError("the broker is not running")
            process.send_signal(signal.SIGHUP)

        return cls(workdir / "passwd", reload=hup)

    def _read(self) -> dict[str, str]:
        entries: dict[str, str] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if ":" in line and not line.startswith("#"):
                    user, _, hashed = line.partition(":")
                    entries[user] = hashed
        return entries

    def _write(self, entries: dict[str, str]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(f"{u}:{h}\n" for u, h in entries.items()))
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o640
        os.chmod(tmp, mode)
        os.replace(tmp, self.path)  # Mosquitto never reads a half-written file

    def _signal(self) -> None:
        if self._reload is not None:
            self._reload()
        elif self._pid_file is not None:
            os.kill(int(self._pid_file.read_text().strip()), signal.SIGHUP)

    def set_hashes(self, hashes: dict[str, str]) -> None:
        """Put these username → hash lines in place (e.g. rebuilt from the database at start)."""
        _refuse_service_accounts(hashes)
        with self._lock:
            entries = self._read()
            entries.update(hashes)
            self._write(entries)
            self._signal()

    def set_password(self, username: str, password: str) -> None:
        self.set_hashes({username: mosquitto_password_hash(password)})

    def revoke(self, username: str) -> None:
        _refuse_service_accounts([username])
        with self._lock:
            entries = self._read()
            if entries.pop(username, None) is not None:
                self._write(entries)
            self._signal()

    def has_user(self, username: str) -> bool:
        return username in self._read()


# Steward's own accounts on the clustered broker, least privilege each (the RabbitMQ
# counterpart of deploy/mosquitto/acl-services). Vhost permissions are regexes on
# resource names; topic permissions on routing keys of amq.topic (``/`` becomes ``.``).
# The gateway: its MQTT plugin declares, binds and consumes the session queues
# ``mqtt-subscription-<client id>qos0|qos1`` (client id ``steward-gateway-<installation>``,
# shards add ``-shard-<n>``) and binds them to amq.topic for ``community/#``; it publishes
# nothing. Push: publishes ``staff/<id>/alerts`` only, declares and reads nothing.
RABBITMQ_SERVICE_PERMISSIONS: dict[str, dict[str, dict[str, str]]] = {
    "steward-gateway": {
        "permissions": {
            "configure": r"^mqtt-subscription-steward-gateway-.*$",
            "write": r"^mqtt-subscription-steward-gateway-.*$",
            "read": r"^(mqtt-subscription-steward-gateway-.*|amq\.topic)$",
        },
        "topic": {"exchange": "amq.topic", "write": "^$", "read": r"^community\..*$"},
    },
    "steward-push": {
        "permissions": {"configure": "^$", "write": r"^amq\.topic$", "read": "^$"},
        "topic": {"exchange": "amq.topic", "write": r"^staff\.[^.]+\.alerts$", "read": "^$"},
    },
}


class RabbitMQUsers:
    """Device credentials as RabbitMQ users, through its management API (the clustered
    broker of ``docker-compose.cluster.yml``): a user per device, with the right to
    publish to ``amq.topic`` (where the MQTT plugin routes) and a topic permission
    that confines it to routing keys under its own id, as Mosquitto's
    ``pattern write community/+/+/%u/#`` does. RabbitMQ keeps users in its own
    replicated store (every node of the cluster knows them at once); it hashes the
    password itself.

    The MQTT plugin (3.10) turns a topic into a routing key by replacing each ``/``
    with ``.`` and leaves dots as they are: ``community/c1/elevator/lift.7/event``
    and ``community/c1.elevator/lift/7/event`` are the same key, and no pattern
    could tell the two apart. So a device whose id has a dot gets no credentials
    here (`set_password` refuses it: register it under an id without dots); for
    the others the key must have exactly five dot-free segments, the fourth the
    device's id, which only the topic ``community/<c>/<type>/<id>/<stream>`` gives.
    (A regex ``{username}`` expansion would also not escape the id.)

    ``url``: the management API with an administrator's credentials, e.g.
    ``http://steward-admin:secret@rabbitmq-1:15672``; ``vhost``: the MQTT plugin's.
    Deleting a user stops its next login; RabbitMQ also closes its open connections.
    """

    def __init__(self, url: str, *, vhost: str = "/", timeout_s: float = 10.0) -> None:
        import httpx

        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("the RabbitMQ management URL must be http(s)://user:password@host:port")
        auth = (parsed.username, parsed.password) if parsed.username else None
        base = str(parsed.copy_with(username=None, password=None)).rstrip("/")
        self.vhost = vhost
        self._http = httpx.Client(base_url=base, auth=auth, timeout=timeout_s)

    def _path(self, *parts: str) -> str:
        from urllib.parse import quote

        return "/api/" + "/".join(quote(p, safe="") for p in parts)

    def _check(self, response: object, what: str) -> None:
        status = response.status_code  # type: ignore[attr-defined]
        if status >= 300:
            text = response.text[:300]  # type: ignore[attr-defined]
            raise RuntimeError(f"RabbitMQ management API: {what} answered {status}: {text}")

    @staticmethod
    def write_pattern(username: str) -> str:
        return rf"^community\.[^.]+\.[^.]+\.{re.escape(username)}\.[^.]+$"

    def set_password(self, username: str, password: str) -> None:
        _refuse_service_accounts([username])
        if "." in username:
            raise ValueError(
                f"device id {username!r} has a dot: on RabbitMQ a dot in a topic level is a level separator, so "
                "the broker could not confine this device to its own topics; give it an id without dots"
            )
        self._check(self._http.put(self._path("users", username), json={"password": password, "tags": ""}),
                    f"creating user {username}")
        self._check(self._http.put(self._path("permissions", self.vhost, username),
                                   json={"configure": "^$", "write": r"^amq\.topic$", "read": "^$"}),
                    f"permissions of {username}")
        self._check(self._http.put(self._path("topic-permissions", self.vhost, username),
                                   json={"exchange": "amq.topic", "write": self.write_pattern(username), "read": "^$"}),
                    f"topic permissions of {username}")

    def set_service_account(self, username: str, password: str) -> None:
        """Create or update one of Steward's own accounts (``RABBITMQ_SERVICE_PERMISSIONS``):
        no tags (no management access), its own vhost and topic permissions only."""
        grants = RABBITMQ_SERVICE_PERMISSIONS[username]
        self._check(self._http.put(self._path("users", username), json={"password": password, "tags": ""}),
                    f"creating user {username}")
        self._check(self._http.put(self._path("permissions", self.vhost, username), json=grants["permissions"]),
                    f"permissions of {username}")
        self._check(self._http.put(self._path("topic-permissions", self.vhost, username), json=grants["topic"]),
                    f"topic permissions of {username}")

    def revoke(self, username: str) -> None:
        _refuse_service_accounts([username])
        response = self._http.delete(self._path("users", username))
        if response.status_code != 404:  # already gone: revoked
            self._check(response, f"deleting user {username}")

    def has_user(self, username: str) -> bool:
        return self._http.get(self._path("users", username)).status_code == 200
