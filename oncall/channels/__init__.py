"""Notification channels: one module each, registered in ``SENDERS``.

A sender's ``send`` returns a ``SendResult``: delivered, or failed with
``retryable`` saying whether trying again can help (network down, 5xx) or not
(4xx, refused recipient). Error text never carries a secret.
"""

from __future__ import annotations

from oncall.channels.base import OutboundMessage, Sender, SendResult

__all__ = ["OutboundMessage", "SendResult", "Sender", "build_senders"]


def build_senders(settings: OnCallSettings) -> dict[str, Sender]:  # type: ignore[name-defined]  # noqa: F821
    """One sender per configured channel."""
    from oncall.channels.push import PushSender
    from oncall.channels.smtp import EmailSender
    from oncall.channels.webhook import WebhookSender

    senders: dict[str, Sender] = {}
    if "webhook" in settings.enabled_channels:
        senders["webhook"] = WebhookSender(settings)
    if "email" in settings.enabled_channels:
        senders["email"] = EmailSender(settings)
    if "push" in settings.enabled_channels:
        senders["push"] = PushSender(settings)
    return senders
