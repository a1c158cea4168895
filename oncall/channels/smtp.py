"""E-mail channel over SMTP (aiosmtplib).

Connection problems, timeouts and 4xx replies are retried; a 5xx reply (e.g. an
unknown mailbox) is permanent.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

import aiosmtplib

from oncall.channels.base import OutboundMessage, SendResult
from oncall.settings import OnCallSettings


class EmailSender:
    channel = "email"

    def __init__(self, settings: OnCallSettings) -> None:
        assert settings.smtp_host
        self._settings = settings

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendResult:
        s = self._settings
        mail = EmailMessage()
        mail["From"] = s.smtp_from
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Message-ID"] = email.utils.make_msgid(idstring=f"steward-{message.outbox_id}")
        mail["X-Steward-Incident"] = str(message.incident_id)
        mail.set_content(message.text)
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                use_tls=s.smtp_tls,
                timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return SendResult(False, retryable=all(c < 500 for c in codes), error=f"smtp: recipient refused {codes}")
        except aiosmtplib.SMTPResponseException as exc:
            return SendResult(False, retryable=exc.code < 500, error=f"smtp: reply {exc.code}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendResult(False, retryable=True, error=f"smtp: {type(exc).__name__}")
        return SendResult(True)
