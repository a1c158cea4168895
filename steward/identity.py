"""Who is who on the broker: Steward's own service accounts and the installation's id.

**Service accounts** — the gateway (reads every community's topics), on-call
push (writes ``staff/…``) and the API (reserved) — have usernames and client
ids in one namespace, ``steward-…``, that no device can be given: a device id
is its MQTT username and, on the production broker's device listener
(``use_username_as_clientid``), its client id too, so a device id starting with
``steward-`` (in any case) is refused when it is provisioned (`reserved_reason`)
and by the credential store. No device can then log in as a service, nor take a
service's session by connecting with its client id.

**The installation id** is random, made once by migration 0006 and kept in the
database (``installation``), so every process of one installation (API,
gateway workers, on-call) agrees on it and two installations on one broker
never share a session. The gateway's persistent session is
``steward-gateway-<installation id>`` (`gateway_client_id`); a scaled-out
worker's shards append ``-shard-<n>`` to it (`gateway.worker.shard_client_id`).
"""

from __future__ import annotations

import enum
import re

import psycopg

SERVICE_PREFIX = "steward-"
_RESERVED = re.compile(re.escape(SERVICE_PREFIX), re.IGNORECASE)


class ServiceAccount(enum.StrEnum):
    """Broker usernames of Steward's own services (deploy/mosquitto/acl-services grants them their topics)."""

    GATEWAY = "steward-gateway"  # subscribes community/# (or its shards' communities)
    PUSH = "steward-push"  # publishes staff/{id}/alerts (on-call push)
    API = "steward-api"  # reserved: the API does not connect to the broker today


def is_reserved(name: str) -> bool:
    """True for a name in the service accounts' namespace (``steward-…``, any case)."""
    return _RESERVED.match(name) is not None


def reserved_reason(name: str) -> str | None:
    """Why ``name`` cannot be a device id (an MQTT username), or None when it can."""
    if not is_reserved(name):
        return None
    return (f"{name!r} is in the namespace reserved for Steward's own broker accounts "
            f"({SERVICE_PREFIX}…, e.g. {ServiceAccount.GATEWAY.value}); give the device another id")


def installation_id(conn: psycopg.Connection) -> str:
    """This installation's id (made by migration 0006; the same for every process of the installation)."""
    row = conn.execute("SELECT installation_id FROM installation").fetchone()
    if row is None:
        raise RuntimeError("the database has no installation id: run `steward migrate`")
    return str(row[0])


def gateway_client_id(installation: str) -> str:
    """The gateway's persistent MQTT session: per installation, in the service namespace."""
    return f"{ServiceAccount.GATEWAY.value}-{installation}"


def push_client_id(installation: str, suffix: str) -> str:
    """An on-call push connection (not persistent: ``suffix`` tells the processes apart)."""
    return f"{ServiceAccount.PUSH.value}-{installation}-{suffix}"
