"""On-call settings: environment variables ``STEWARD_ONCALL_*``, validated at start.

Secrets are ``SecretStr`` so they never show in a repr, a log line or an error.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "xxx", "todo"}
PLACEHOLDER_MESSAGE = "is still a placeholder of .env.example (change-me-...): set a secret of your own in .env"


def is_placeholder(secret: str) -> bool:
    """A value nobody chose: one of the usual stand-ins, or .env.example's ``change-me-...``."""
    return secret.lower() in PLACEHOLDER_SECRETS or secret.lower().startswith("change-me")


class OnCallSettings(BaseSettings):
    """Everything the on-call service needs; a channel is on only when its endpoint is set."""

    model_config = SettingsConfigDict(env_prefix="STEWARD_ONCALL_", extra="ignore")

    link_secret: SecretStr = Field(description="HMAC key of the acknowledge/resolve links (>= 16 characters)")
    public_base_url: str = Field("http://127.0.0.1:8000", description="where the API serves /oncall/links/{token}")
    link_ttl: dt.timedelta = Field(dt.timedelta(hours=24), description="how long an action link stays valid")

    webhook_url: str | None = Field(None, description="SMS/IM gateway endpoint receiving signed JSON")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-Steward-Signature")
    webhook_timeout_s: float = Field(5.0, gt=0)

    smtp_host: str | None = None
    smtp_port: int = Field(25, gt=0, lt=65536)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_from: str = "steward@localhost"
    smtp_timeout_s: float = Field(10.0, gt=0)

    mqtt_url: str | None = Field(None, description="broker for staff-app push, e.g. mqtt://user:pass@host:1883")
    push_timeout_s: float = Field(5.0, gt=0)

    max_attempts: int = Field(8, ge=1, le=50, description="delivery attempts before a message is given up")
    backoff_base_s: float = Field(5.0, gt=0, description="first retry delay; doubles each attempt")
    backoff_max_s: float = Field(300.0, gt=0)
    send_concurrency: int = Field(8, ge=1, le=256, description="parallel sends per channel")
    poll_interval_s: float = Field(1.0, gt=0, description="longest wait between two looks at due work")
    batch_size: int = Field(100, ge=1, le=10_000)
    sweep_interval_s: float = Field(30.0, gt=0, description="how often open incidents without escalation are looked for")
    sweep_horizon: dt.timedelta = Field(dt.timedelta(hours=24), description="only incidents opened this recently are swept")

    @field_validator("link_secret")
    @classmethod
    def _strong_link_secret(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if len(raw) < 16 or is_placeholder(raw):
            raise ValueError("link_secret must be a random string of at least 16 characters")
        return value

    @field_validator("webhook_url", "public_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("mqtt", "mqtts"):
            raise ValueError("mqtt_url must start with mqtt:// or mqtts://")
        if value is not None and is_placeholder(urlsplit(value).password or "-"):
            raise ValueError(f"the password in mqtt_url {PLACEHOLDER_MESSAGE}")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> OnCallSettings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("webhook_secret is required when webhook_url is set (receivers verify the signature)")
        return self

    @property
    def enabled_channels(self) -> tuple[str, ...]:
        """Channels with an endpoint configured; contacts on other channels are skipped with a reason."""
        on = []
        if self.webhook_url:
            on.append("webhook")
        if self.smtp_host:
            on.append("email")
        if self.mqtt_url:
            on.append("push")
        return tuple(on)

    def secrets(self) -> list[str]:
        """Every secret value, for scrubbing error text before it is stored or logged."""
        found = [self.link_secret.get_secret_value()]
        for s in (self.webhook_secret, self.smtp_password):
            if s is not None:
                found.append(s.get_secret_value())
        if self.mqtt_url:
            password = urlsplit(self.mqtt_url).password
            if password:
                found.append(password)
        return [s for s in found if s]


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced, so errors can be stored and logged."""
    for s in secrets:
        text = text.replace(s, "***")
    return text
