"""Push channel: JSON to the staff app's MQTT topic ``staff/{staff_id}/alerts`` with QoS 1.

Delivered means the broker acknowledged (PUBACK) within ``push_timeout_s``.
While the broker is unreachable nothing is published (paho would queue it
and send it again on reconnect, doubling it with our retry); the attempt is
retried with backoff instead. The payload carries ``notification_id`` so the
app can drop the rare duplicate of a PUBACK lost in transit.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from gateway.mqtt_client import stop_network
from oncall.channels.base import OutboundMessage, SendResult
from oncall.settings import OnCallSettings


def staff_topic(staff_id: str) -> str:
    return f"staff/{staff_id}/alerts"


class PushSender:
    channel = "push"

    def __init__(self, settings: OnCallSettings) -> None:
        assert settings.mqtt_url
        self._url = urlsplit(settings.mqtt_url)
        self._timeout = settings.push_timeout_s
        self._connected = threading.Event()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"steward-oncall-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv311,
        )
        if self._url.username:
            self._client.username_pw_set(self._url.username, self._url.password)
        if self._url.scheme == "mqtts":
            self._client.tls_set()
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if not reason_code.is_failure:
            self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self._connected.clear()

    async def start(self) -> None:
        port = self._url.port or (8883 if self._url.scheme == "mqtts" else 1883)
        self._client.connect_async(self._url.hostname or "127.0.0.1", port, keepalive=30)
        self._client.loop_start()  # paho's own thread reconnects in the background

    async def close(self) -> None:
        stop_network(self._client)

    async def send(self, message: OutboundMessage) -> SendResult:
        if not self._connected.is_set():
            # Give a fresh connection a moment before calling the channel down.
            ok = await asyncio.to_thread(self._connected.wait, min(self._timeout, 2.0))
            if not ok:
                return SendResult(False, retryable=True, error="push: broker not connected")
        payload = json.dumps(
            {"notification_id": message.outbox_id, "staff_id": message.staff_id, "locale": message.locale,
             "subject": message.subject, "text": message.text, **message.data},
            ensure_ascii=False,
        )  # fmt: skip
        info = self._client.publish(staff_topic(message.staff_id), payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return SendResult(False, retryable=True, error=f"push: publish rc {info.rc}")
        try:
            await asyncio.to_thread(info.wait_for_publish, self._timeout)
        except (RuntimeError, ValueError) as exc:
            return SendResult(False, retryable=True, error=f"push: {exc}")
        if not info.is_published():
            return SendResult(False, retryable=True, error="push: no PUBACK in time")
        return SendResult(True)
