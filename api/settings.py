"""API settings: environment variables prefixed ``STEWARD_API_`` (or keyword arguments)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STEWARD_API_", extra="ignore")

    token_ttl_minutes: int = Field(default=12 * 60, ge=1, le=30 * 24 * 60,
                                   description="How long a login token lives (one control-room shift by default)")
    login_max_failures: int = Field(default=5, ge=1, description="Failed logins allowed per window, per user and per client")
    login_window_seconds: int = Field(default=15 * 60, ge=1, description="The rate-limit window for failed logins")
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    pool_timeout_seconds: float = Field(default=5.0, gt=0, le=60,
                                        description="Longest a request waits for a database connection; then 503")
    pool_reconnect_seconds: float = Field(default=5.0, gt=0, le=300,
                                          description="While the database is away, the pool retries within this "
                                          "window after each request that needs it, so it is back within seconds")
    stream_poll_seconds: float = Field(default=1.0, gt=0, le=30,
                                       description="Live stream: the longest wait between two looks at the change feed")
    stream_keepalive_seconds: float = Field(default=15.0, gt=0, description="Live stream: comment line sent when idle")
    stream_max_per_user: int = Field(default=5, ge=1, le=1000,
                                     description="Live streams one user may have open at once (429 beyond)")
    stream_max_total: int = Field(default=200, ge=1, le=100_000,
                                  description="Live streams this process serves at once (429 beyond); they share "
                                  "one database connection")
    page_max: int = Field(default=500, ge=1, description="The largest page a list endpoint returns")
    series_max_points: int = Field(default=20_000, ge=1, description="The most buckets one series request may ask for")
