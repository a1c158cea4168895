"""Webhook channel: signed JSON to the SMS/IM gateway (or to a person's own bot URL).

Headers: ``X-Steward-Timestamp`` (epoch seconds) and ``X-Steward-Signature:
sha256=<hex HMAC-SHA256 over "{timestamp}.{body}">`` with ``webhook_secret``;
receivers should refuse a timestamp older than a few minutes (replay).
2xx is delivered; 408, 429, 5xx and connection errors are retried; other 4xx are not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from oncall.channels.base import OutboundMessage, SendResult
from oncall.settings import OnCallSettings

RETRYABLE_STATUS = {408, 425, 429}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Steward-Signature value, for receivers to recompute."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookSender:
    channel = "webhook"

    def __init__(self, settings: OnCallSettings) -> None:
        assert settings.webhook_url and settings.webhook_secret
        self._url = settings.webhook_url
        self._secret = settings.webhook_secret.get_secret_value()
        self._timeout = settings.webhook_timeout_s
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def send(self, message: OutboundMessage) -> SendResult:
        assert self._client is not None
        personal = message.address.startswith(("http://", "https://"))
        url = message.address if personal else self._url
        body = json.dumps(
            {
                "to": None if personal else message.address,
                "staff_id": message.staff_id,
                "locale": message.locale,
                "subject": message.subject,
                "text": message.text,
                **message.data,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Steward-Timestamp": ts,
            "X-Steward-Signature": signature(self._secret, ts, body),
            "Idempotency-Key": f"steward-{message.outbox_id}",
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return SendResult(False, retryable=True, error="webhook: timed out")
        except httpx.HTTPError as exc:
            return SendResult(False, retryable=True, error=f"webhook: {type(exc).__name__}")
        if 200 <= response.status_code < 300:
            return SendResult(True)
        retryable = response.status_code >= 500 or response.status_code in RETRYABLE_STATUS
        return SendResult(False, retryable=retryable, error=f"webhook: HTTP {response.status_code}")
