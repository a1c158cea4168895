"""Where the gateway finds its broker."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit


class MqttEndpoint:
    """A parsed ``mqtt://user:pass@host:port`` (``mqtts://`` for TLS).

    A clustered broker may be given as several nodes, ``mqtt://user:pass@h1:p1,h2:p2``:
    the gateway connects to the first and, when a connection is lost, to the next.
    """

    def __init__(self, url: str) -> None:
        scheme, sep, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        userinfo, at, hostlist = netloc.rpartition("@")
        nodes = hostlist.split(",") if sep else [""]
        self.hosts: list[tuple[str, int]] = []
        for node in nodes:
            one = urlsplit(f"{scheme}://{userinfo}{at}{node}{slash}{path}")
            try:
                one.port
            except ValueError:
                raise ValueError(f"{url!r}: bad port in {node!r}") from None
            if one.hostname:
                self.hosts.append((one.hostname, one.port or (8883 if scheme == "mqtts" else 1883)))
        parts = urlsplit(f"{scheme}://{userinfo}{at}{nodes[0]}{slash}{path}")
        if parts.scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError(f"{url!r}: scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"{url!r}: host is missing")
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def __repr__(self) -> str:  # never print the password
        user = f"{self.username}@" if self.username else ""
        nodes = ",".join(f"{h}:{p}" for h, p in self.hosts)
        return f"mqtt{'s' if self.tls else ''}://{user}{nodes}"


__all__ = ["MqttEndpoint"]
