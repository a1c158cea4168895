"""API settings: environment variables prefixed ``STEWARD_API_`` (or keyword arguments)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.throttle import ThrottlePolicy


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STEWARD_API_", extra="ignore")

    token_ttl_minutes: int = Field(default=12 * 60, ge=1, le=30 * 24 * 60,
                                   description="How long a login token lives (one control-room shift by default)")
    # Login throttling (api/throttle.py): per account+address pair, per address, per account.
    login_free_failures: int = Field(default=3, ge=1, le=100, description="Failures of one account from one "
                                     "address before each attempt waits 1, 2, 4 ... s")
    login_first_delay_seconds: int = Field(default=1, ge=1, le=3600, description="The first wait; each further "
                                           "failure doubles it")
    login_lock_after: int = Field(default=10, ge=2, le=1000, description="Failures of one account from one "
                                  "address that lock that pair (only that pair) for login_lock_seconds")
    login_lock_seconds: int = Field(default=15 * 60, ge=1, le=24 * 3600, description="How long a pair stays locked")
    login_max_delay_seconds: int = Field(default=60, ge=1, le=3600, description="The longest wait between attempts")
    login_address_free_failures: int = Field(default=20, ge=1, le=10_000, description="Failures from one address "
                                             "(any account: spraying, or a NAT) before its attempts wait; never a lock")
    login_account_free_failures: int = Field(default=20, ge=1, le=10_000, description="Failures of one account "
                                             "(any address) before the addresses that failed for it wait")
    login_window_seconds: int = Field(default=15 * 60, ge=1, le=7 * 24 * 3600,
                                      description="A quiet window after which failures are forgotten")
    login_max_concurrent: int = Field(default=4, ge=1, le=1000, description="Logins checked at once in this "
                                      "process (each holds a pooled connection; at most half the pool), one at a "
                                      "time per address; the others wait login_wait_seconds, then 429")
    login_wait_seconds: float = Field(default=10.0, gt=0, le=60, description="Longest a login waits for its turn")
    trusted_proxies: list[str] = Field(default_factory=list, description="Addresses or networks (CIDR) of the "
                                       "reverse proxies whose X-Forwarded-For is believed; nobody else's is")
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

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies]

    def throttle_policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(
            free_failures=self.login_free_failures, first_delay_seconds=self.login_first_delay_seconds,
            lock_after=self.login_lock_after,
            lock_seconds=self.login_lock_seconds, max_delay_seconds=self.login_max_delay_seconds,
            address_free_failures=self.login_address_free_failures,
            account_free_failures=self.login_account_free_failures, window_seconds=self.login_window_seconds)
