"""What every channel sender takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered notification for one person on one channel."""

    outbox_id: int
    incident_id: int
    staff_id: str
    address: str
    locale: str
    subject: str
    text: str
    data: dict[str, Any]  # machine-readable fields for webhook/push receivers


@dataclass(frozen=True)
class SendResult:
    ok: bool
    retryable: bool = False
    error: str = ""


class Sender(Protocol):
    channel: str

    async def start(self) -> None: ...

    async def send(self, message: OutboundMessage) -> SendResult: ...

    async def close(self) -> None: ...
