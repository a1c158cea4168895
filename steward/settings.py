"""Configuration: environment variables ``STEWARD_*`` over an optional TOML file
(``STEWARD_CONFIG=path``), validated at start with a message naming every wrong value."""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.endpoint import MqttEndpoint
from oncall.settings import PLACEHOLDER_MESSAGE, is_placeholder


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STEWARD_", extra="forbid")

    database_url: str | None = Field(None, description="PostgreSQL/TimescaleDB DSN; unset: embedded PostgreSQL")
    mqtt_url: str | None = Field(None, description="mqtt://user:pass@host:port; unset: a private broker")
    data_dir: Path = Field(Path(".steward"), description="embedded database, broker and state between runs")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    demo_broker: Literal["auto", "mosquitto", "amqtt"] = Field(
        "auto", description="broker started when STEWARD_MQTT_URL is unset: Mosquitto if installed, else amqtt"
    )
    storage_mode: Literal["auto", "timescale", "plain"] = "auto"
    start_timeout_seconds: float = Field(
        30, gt=0, le=3600, description="how long a start waits for the database and broker it was given; then it fails"
    )
    compress_after_days: float = Field(7, gt=0, description="TimescaleDB: compress event chunks older than this")
    retain_days: float | None = Field(365, gt=0, description="TimescaleDB: drop events older than this (unset: keep)")

    mqtt_client_id: str | None = Field(
        None, min_length=9, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="the gateway's persistent session; unset: steward-gateway-<installation id> (steward/identity.py)",
    )
    mqtt_protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1",
        description="3.1.1 (default: every broker here, amqtt included, speaks it) or 5 (Receive Maximum flow control)",
    )
    shards: int = Field(
        1, ge=1, le=4096, description="shards of communities, fixed when the first worker starts (see Scaling out)"
    )
    lease_ttl_s: float = Field(
        10.0, ge=1.0, le=600.0, description="a shard's lease; a dead worker's shards move within 4/3 of this"
    )
    worker_id: str | None = Field(
        None, min_length=1, max_length=128, description="this worker's name in shard_leases (default: host-pid-random)"
    )
    mqtt_share_group: str | None = Field(
        None, description="consume with $share/<group>/... (storage-only workers; superseded by shards)"
    )
    batch_size: int = Field(10_000, ge=1, le=50_000, description="events committed together at most")
    batch_linger_ms: int = Field(50, ge=0, le=10_000, description="longest a message waits for its batch to fill")
    max_in_flight: int = Field(65_000, ge=1, le=65_535, description="unacknowledged messages held at most")
    db_writers: int = Field(
        2, ge=1, le=8, description="database connections committing batches side by side (1 when detectors run)"
    )
    max_payload_bytes: int = Field(64 * 1024, ge=64, le=16 * 1024 * 1024)
    max_future_seconds: int = Field(300, ge=0, le=86_400)
    detectors: bool = Field(True, description="run the detectors in the gateway (false: a storage-only ingest worker)")
    run_oncall: bool = Field(
        True,
        description="run on-call escalation and delivery in this process; false on extra scaled-out workers "
        "(one process per installation does it; each one polls the database every second)",
    )
    device_policy: Literal["registered", "auto"] = Field(
        "registered", description="registered: reject unknown devices; auto: register on first message"
    )
    mosquitto_password_file: Path | None = Field(
        None, description="Mosquitto password_file the API writes device credentials to (production broker)"
    )
    rabbitmq_management_url: str | None = Field(
        None,
        description="RabbitMQ management API, http://user:password@host:15672 of an administrator, where the API "
        "creates each device's user (the clustered broker; instead of mosquitto_password_file)",
    )
    admin_communities: list[str] = Field(
        default_factory=list, description="communities the first admin may see (the demo adds its simulated ones)"
    )
    admin_password: str | None = Field(None, description="first admin's password (demo prints a generated one)")

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, v: str | None) -> str | None:
        if v is not None:
            if is_placeholder(MqttEndpoint(v).password or "-"):
                raise ValueError(f"the password {PLACEHOLDER_MESSAGE}")
        return v

    @field_validator("mqtt_client_id")
    @classmethod
    def _check_client_id(cls, v: str | None) -> str | None:
        from steward.identity import SERVICE_PREFIX, is_reserved

        if v is not None and not is_reserved(v):
            # A device's client id is its device id; only this namespace is out of every device's reach.
            raise ValueError(f"must start with {SERVICE_PREFIX!r} (the namespace no device can be given)")
        return v

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("postgresql://") or v.startswith("postgres://") or "=" in v):
            raise ValueError("must be a postgresql:// URL or a libpq key=value string")
        if v is not None:
            try:
                password = conninfo_to_dict(v).get("password") or "-"
            except psycopg.ProgrammingError as exc:
                raise ValueError(f"not a valid connection string: {exc}") from None
            if is_placeholder(str(password)):
                raise ValueError(f"the password {PLACEHOLDER_MESSAGE}")
        return v

    @field_validator("admin_password")
    @classmethod
    def _check_admin_password(cls, v: str | None) -> str | None:
        if v is not None and is_placeholder(v):
            raise ValueError(PLACEHOLDER_MESSAGE.removeprefix("is still "))
        if v is not None and len(v) < 12:
            raise ValueError("the first admin's password needs at least 12 characters")
        return v

    @field_validator("mosquitto_password_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if v == "" else v  # the cluster's compose file clears the main file's

    @field_validator("rabbitmq_management_url")
    @classmethod
    def _check_rabbitmq_management_url(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if info.data.get("mosquitto_password_file"):
            raise ValueError("device credentials go to one broker: set this or mosquitto_password_file, not both")
        if not v.startswith(("http://", "https://")) or "@" not in v:
            raise ValueError("must be http(s)://user:password@host:port (an administrator of the RabbitMQ cluster)")
        return v

    @field_validator("mqtt_share_group")
    @classmethod
    def _check_share_group(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("shards", 1) > 1:
            raise ValueError("a share group splits communities between processes at random; with shards, leave it unset")
        return v

    @field_validator("device_policy")
    @classmethod
    def _check_policy(cls, v: str, info: ValidationInfo) -> str:
        if v == "auto" and info.data.get("shards", 1) > 1:
            raise ValueError(
                "auto needs shards=1: a sharded worker subscribes only to communities already in the registry"
            )
        return v

    @field_validator("max_in_flight")
    @classmethod
    def _check_room_for_a_batch(cls, v: int, info: ValidationInfo) -> int:
        batch_size = info.data.get("batch_size")
        if batch_size is not None and v < batch_size:
            raise ValueError(f"must be at least batch_size ({batch_size}), or no batch could ever fill")
        return v

    @property
    def compress_after(self) -> dt.timedelta:
        return dt.timedelta(days=self.compress_after_days)

    @property
    def retain_for(self) -> dt.timedelta | None:
        return dt.timedelta(days=self.retain_days) if self.retain_days else None

    @property
    def mqtt(self) -> MqttEndpoint | None:
        return MqttEndpoint(self.mqtt_url) if self.mqtt_url else None


class ConfigError(Exception):
    pass


def load_settings(**overrides: Any) -> Settings:
    """Settings from the file named by STEWARD_CONFIG (if any), the environment, then overrides."""
    file_values: dict[str, Any] = {}
    config_path = os.environ.get("STEWARD_CONFIG")
    if config_path:
        try:
            file_values = tomllib.loads(Path(config_path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"STEWARD_CONFIG={config_path}: {exc}") from None
    env_keys = {k.removeprefix("STEWARD_").lower() for k in os.environ if k.startswith("STEWARD_")}
    values = {k: v for k, v in file_values.items() if k not in env_keys}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '?'} (STEWARD_{str(err['loc'][0]).upper() if err['loc'] else '?'}): {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
