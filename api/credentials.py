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
