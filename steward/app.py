"""The composition root: the one place where the parts are wired for a way of running.

`Stack` starts, in order: the database (``STEWARD_DATABASE_URL`` or an embedded
PostgreSQL in the data folder), the migrations, the broker (``STEWARD_MQTT_URL``
or a private Mosquitto, or amqtt when Mosquitto is not installed), the gateway
with the detectors, the API and the simulated community; and stops them in
reverse order. A given database or broker that does not answer fails the start
within ``STEWARD_START_TIMEOUT_SECONDS`` (`StartError`, naming the setting);
`request_stop` (from a signal) ends a start between two steps (`Interrupted`),
and `stop` then stops whatever had started.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from gateway.endpoint import MqttEndpoint
from gateway.service import GatewayConfig, tune_garbage_collector
from gateway.validate import Limits
from gateway.worker import ShardWorker
from ingest.migrate import StorageMode, apply_policies, current_mode, migrate
from steward.brokers import EmbeddedBroker, MosquittoBroker
from steward.databases import EmbeddedPostgres
from steward.lifecycle import Interrupted, StartError, broker_refused, wait_for_broker, wait_for_database
from steward.settings import Settings

log = logging.getLogger(__name__)

# Seconds the API gives requests under way when it stops.
API_GRACE_S = 3


class Stack:
    # `steward run` is its installation's only worker: a broker that does not let it in
    # fails its start. One of several `steward gateway` workers may be taking over a
    # shard whose session another still holds: it goes on, and /health says so.
    wait_for_broker_login = True

    def __init__(
        self,
        settings: Settings,
        *,
        api: bool = True,
        simulator: bool = True,
        demo_data: bool = True,
        demo_timing: Any = None,
        worker_id: str | None = None,
    ) -> None:
        """``worker_id``: this process's name in the shard leases, when it is the only
        one of its installation (``steward run``: a restart after a crash takes its
        shards back at once instead of waiting for their leases to expire)."""
        self.settings = settings
        self.want_api = api
        self.want_simulator = simulator
        # The demo's people, places, phone and first minutes (steward/demo.py); only with the simulated community.
        self.want_demo_data = demo_data and simulator
        self.demo_timing = demo_timing
        self.demo: Any = None
        self.database_url: str | None = None
        self.mqtt_url: str | None = None
        self.mqtt_protocol = settings.mqtt_protocol
        self.storage_mode: StorageMode | None = None
        self.admin_password: str | None = None
        self._embedded_pg: EmbeddedPostgres | None = None
        self._broker: MosquittoBroker | EmbeddedBroker | None = None
        self.worker_id = settings.worker_id or worker_id
        self.gateway: ShardWorker | None = None
        self._api_server: Any = None
        self._api_app: Any = None
        self._api_thread: threading.Thread | None = None
        self.stopping = threading.Event()  # set by request_stop: no further part starts
        self._simulator: Any = None
        self._notice_relay: NoticeRelay | None = None
        self._extras: list[Any] = []  # services with start()/stop() (on-call...)
        self.oncall_settings: Any = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir.resolve()

    # --- parts ----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask a start under way to give up at its next step (safe from a signal handler)."""
        self.stopping.set()

    def _go_on(self) -> None:
        if self.stopping.is_set():
            raise Interrupted()

    def start_database(self) -> str:
        if self.settings.database_url:
            wait_for_database(self.settings.database_url, timeout_s=self.settings.start_timeout_seconds,
                              stop=self.stopping)
            self.database_url = self.settings.database_url
        else:
            # Assigned before it starts: a start cut short still leaves it to stop().
            self._embedded_pg = EmbeddedPostgres(self.data_dir / "postgres")
            self.database_url = self._embedded_pg.start()
            log.info("embedded PostgreSQL in %s", self.data_dir / "postgres")
        return self.database_url

    def migrate(self, dsn: str) -> tuple[StorageMode, list[str]]:
        mode, applied = migrate(dsn, requested_mode=self.settings.storage_mode)
        apply_policies(dsn, compress_after=self.settings.compress_after, retain_for=self.settings.retain_for)
        self.storage_mode = mode
        return mode, applied

    def start_broker(self) -> str:
        if self.settings.mqtt_url:
            wait_for_broker(MqttEndpoint(self.settings.mqtt_url), timeout_s=self.settings.start_timeout_seconds,
                            stop=self.stopping)
            self.mqtt_url = self.settings.mqtt_url
        elif self.settings.demo_broker != "amqtt" and MosquittoBroker.available():
            broker = MosquittoBroker(workdir=self.data_dir / "mosquitto")
            # Only a run that holds the data folder gets here: a Mosquitto on its config is a
            # leftover of a run that was killed (SIGKILL), which nothing could stop then.
            if (leftover := broker.stop_leftover()) is not None:
                log.warning("stopped the private Mosquitto (pid %s) a killed run left behind", leftover)
            self._broker = broker.start()
            self.mqtt_url = self._broker.url
        elif self.settings.demo_broker == "mosquitto":
            raise StartError("STEWARD_DEMO_BROKER=mosquitto but the mosquitto binary is not installed")
        else:
            log.warning("mosquitto is not installed: using the in-process amqtt broker (demo only, MQTT 3.1.1)")
            self._broker = EmbeddedBroker().start()
            self.mqtt_url = self._broker.url
            self.mqtt_protocol = "3.1.1"
        return self.mqtt_url

    def build_sink(self, name: str = "default", communities: Any = None) -> Any:
        """The detectors with the closed-loop and on-call hooks, when those parts are installed
        (``name``: the checkpoint's, one per shard; ``communities``: the shard's)."""
        try:
            from detectors.runtime import DetectorRuntime
        except ImportError:
            log.warning("detectors are not available: events are stored but not analysed")
            return None
        hooks = []
        for module_name in ("alerts.hooks", "oncall.hooks"):
            try:
                module = __import__(module_name, fromlist=["on_incident_changes"])
            except ImportError:
                continue
            hooks.append(module.on_incident_changes)
        return DetectorRuntime(hooks=hooks, name=name, communities=communities)

    def start_gateway(self) -> ShardWorker:
        s = self.settings
        assert self.database_url and self.mqtt_url
        config = GatewayConfig(
            mqtt=MqttEndpoint(self.mqtt_url),
            database_url=self.database_url,
            client_id=s.mqtt_client_id or self.gateway_client_id(),
            protocol=self.mqtt_protocol,
            share_group=s.mqtt_share_group,
            batch_size=s.batch_size,
            batch_linger_s=s.batch_linger_ms / 1000,
            max_in_flight=s.max_in_flight,
            writers=s.db_writers,
            limits=Limits(max_payload_bytes=s.max_payload_bytes, max_future=dt.timedelta(seconds=s.max_future_seconds)),
            device_policy=s.device_policy,
        )
        tune_garbage_collector()
        self.gateway = ShardWorker(
            config,
            shard_count=s.shards,
            lease_ttl_s=s.lease_ttl_s,
            make_sink=(lambda shard, name, communities: self.build_sink(name, communities)) if s.detectors else None,
            **({"worker_id": self.worker_id} if self.worker_id else {}),
        ).start()
        # The broker answered; it must also let the gateway in (login, ACL, subscription),
        # for each shard this worker took (another worker may hold them all).
        deadline = time.monotonic() + s.start_timeout_seconds
        setting = "STEWARD_MQTT_URL" if s.mqtt_url else "the private broker"
        while self.wait_for_broker_login and not self._gateway_let_in():
            self._go_on()
            if answer := self.gateway.status().get("broker_refused"):
                raise broker_refused(config.mqtt, setting, answer)  # the broker said no: waiting changes nothing
            if time.monotonic() > deadline:
                raise broker_refused(config.mqtt, setting)
            self.stopping.wait(0.05)
        return self.gateway

    def _gateway_let_in(self) -> bool:
        assert self.gateway is not None
        status = self.gateway.status()
        return bool(status["broker_connected"]) or not status.get("shards")

    def gateway_client_id(self) -> str:
        """``steward-gateway-<installation id>``: per installation, in the namespace no device can be given."""
        from steward.identity import gateway_client_id, installation_id

        assert self.database_url
        with psycopg.connect(self.database_url) as conn:
            return gateway_client_id(installation_id(conn))

    def start_api(self) -> None:
        import uvicorn

        from api.app import create_app

        assert self.database_url
        kwargs: dict[str, Any] = {"database_url": self.database_url}
        if self.gateway is not None:
            kwargs["gateway_status"] = self.gateway.status
        if self.oncall_settings is not None:
            kwargs["oncall_link_secret"] = self.oncall_settings.link_secret.get_secret_value()
        if self.demo is not None:
            kwargs["demo_phone_secret"] = self.demo.sink_secret
        if self.settings.mosquitto_password_file:
            from api.credentials import MosquittoPasswordFile

            kwargs["broker"] = MosquittoPasswordFile(self.settings.mosquitto_password_file)
        elif self.settings.rabbitmq_management_url:
            from api.credentials import RabbitMQUsers

            kwargs["broker"] = RabbitMQUsers(self.settings.rabbitmq_management_url)
        app = create_app(**kwargs)
        # Requests still running when a stop begins get a few seconds; live streams end
        # by themselves as soon as app.state.stopping is set (stop()).
        # proxy_headers off: the API decides whose X-Forwarded-For to believe (STEWARD_API_TRUSTED_PROXIES).
        config = uvicorn.Config(app, host=self.settings.api_host, port=self.settings.api_port, log_level="warning",
                                proxy_headers=False,
                                timeout_graceful_shutdown=API_GRACE_S)
        self._api_app = app
        self._api_server = uvicorn.Server(config)
        self._api_thread = threading.Thread(target=self._api_server.run, name="api", daemon=True)
        self._api_thread.start()
        while not self._api_server.started:
            if not self._api_thread.is_alive():  # uvicorn logged why (e.g. the port is taken) and gave up
                raise StartError(
                    f"the API could not listen on {self.settings.api_host}:{self.settings.api_port} (--port or "
                    "STEWARD_API_PORT; STEWARD_API_HOST): is another program using that port?"
                )
            self.stopping.wait(0.05)

    def ensure_admin(self, communities: list[str]) -> None:
        try:
            from api.users import ensure_admin
        except ImportError:
            return
        assert self.database_url
        password = self.settings.admin_password or self.local_secret("admin-password")
        with psycopg.connect(self.database_url) as conn:
            ensure_admin(conn, username="admin", password=password, community_ids=communities)
        self.admin_password = password

    def demo_fleet(self) -> Any:
        """The simulated community of the demo, registered in the device registry."""
        from ingest.registry import upsert_devices
        from simulators import build_fleet

        assert self.database_url
        fleet = build_fleet(seed=1)
        with psycopg.connect(self.database_url) as conn:
            upsert_devices(conn, fleet.devices)
        return fleet

    def start_simulator(self, fleet: Any) -> None:
        from simulators.mqtt import LivePublisher

        assert self.mqtt_url and self.database_url
        if self.demo is not None:  # heartbeats every minute and a scripted start, so the loop shows at once
            placements = self.demo.placements(fleet, dt.datetime.now(dt.UTC))
            self._simulator = LivePublisher(fleet, self.mqtt_url, speed=1.0, seed=1, heartbeat_s=60.0,
                                            daily_incidents=24, placements=placements)
        else:
            self._simulator = LivePublisher(fleet, self.mqtt_url, speed=1.0, seed=1)
        self._simulator.start()
        # The simulated community also announces things (a resident away, a planned
        # water shutdown, a lift inspection): relay them as staff would enter them,
        # so the hard negatives are silenced the way a real notice silences them.
        self._notice_relay = NoticeRelay(self._simulator.simulation, self.database_url)
        self._notice_relay.start()

    # --- whole stack -----------------------------------------------------------------------

    def start(self) -> None:
        """Start every part; on `StartError` or `Interrupted` call `stop` for what did start."""
        self._go_on()
        dsn = self.start_database()
        self._go_on()
        self.migrate(dsn)
        self._go_on()
        self.start_broker()
        self._go_on()
        fleet = self.demo_fleet() if self.want_simulator else None
        if self.want_api:
            communities = list(self.settings.admin_communities)
            if fleet is not None:
                communities += sorted({d.community_id for d in fleet.devices} - set(communities))
            self.ensure_admin(communities)
        if fleet is not None and self.want_demo_data:
            self.seed_demo(fleet)
        self._go_on()
        self.start_gateway()
        for make_service in self._extra_services():
            self._go_on()
            service = make_service()
            service.start()
            self._extras.append(service)
        self._go_on()
        if self.want_api:
            self.start_api()
        self._go_on()
        if fleet is not None:
            self.start_simulator(fleet)
        if self.demo is not None:
            self.demo.start_responder()

    def seed_demo(self, fleet: Any) -> None:
        from steward.demo import DemoControlRoom

        assert self.database_url
        self.demo = DemoControlRoom(self.database_url, self.data_dir, timing=self.demo_timing)
        self.demo.seed(fleet, self.local_secret("demo-password"))

    def _extra_services(self) -> list[Any]:
        """On-call escalation and delivery (its own settings: STEWARD_ONCALL_*), unless this
        process is an extra worker (STEWARD_RUN_ONCALL=false): the incidents' hooks still
        queue escalations in every worker's transactions, and the one process that runs
        on-call sends them."""
        import os

        if not self.settings.run_oncall:
            return []

        try:
            from oncall.service import OnCallService
            from oncall.settings import OnCallSettings
        except ImportError:
            return []
        overrides: dict[str, Any] = {}
        if not os.environ.get("STEWARD_ONCALL_LINK_SECRET"):
            overrides["link_secret"] = self.local_secret("oncall-link-secret")
        if not os.environ.get("STEWARD_ONCALL_PUBLIC_BASE_URL"):
            overrides["public_base_url"] = f"http://{self.settings.api_host}:{self.settings.api_port}"
        if not os.environ.get("STEWARD_ONCALL_MQTT_URL"):
            # On-call push needs one broker node: the first of a clustered broker's list.
            endpoint = MqttEndpoint(self.mqtt_url)
            overrides["mqtt_url"] = self.mqtt_url.split(",")[0] if len(endpoint.hosts) > 1 else self.mqtt_url
        if self.demo is not None and not os.environ.get("STEWARD_ONCALL_WEBHOOK_URL"):
            overrides.update(self.demo.oncall_overrides(f"http://{self.settings.api_host}:{self.settings.api_port}"))
        settings = OnCallSettings(**overrides)
        self.oncall_settings = settings
        assert self.database_url
        dsn = self.database_url
        from oncall.clock import SystemClock

        return [lambda: OnCallService(dsn, settings, SystemClock())]

    def local_secret(self, name: str) -> str:
        """A random secret generated on first start and kept (mode 600) in the data folder."""
        path = self.data_dir / name
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        path.write_text(value + "\n")
        path.chmod(0o600)
        return value

    def banner(self) -> list[str]:
        with psycopg.connect(self.database_url) as conn:  # type: ignore[arg-type]
            mode = current_mode(conn)
        lines = [
            "Steward is running.",
            f"  API            http://{self.settings.api_host}:{self.settings.api_port}/  (docs: /docs, health: /health, metrics: /metrics)"
            if self.want_api
            else "  API            off (--no-api)",
            f"  MQTT broker    {self.mqtt_url}  (topics community/<community>/<device_type>/<device>/<stream>)",
            f"  database       {'embedded PostgreSQL in ' + str(self.data_dir / 'postgres') if self._embedded_pg else 'STEWARD_DATABASE_URL'} ({mode} mode)",
            f"  simulator      {'a small community publishing live' if self.want_simulator else 'off (--no-simulator)'}",
        ]
        if self.settings.admin_password:  # the operator's own secret: never echoed to a log
            lines.append("  login          admin / the password in STEWARD_ADMIN_PASSWORD")
        elif self.admin_password:
            lines.append(f"  login          admin / {self.admin_password}  (from {self.data_dir / 'admin-password'})")
        if self.demo is not None and self.demo.logins_password:
            from steward.demo import LOGINS

            field = ", ".join(username for username, _, _ in LOGINS[3:])
            lines.append(f"  demo logins    operator, supervisor, technician / {self.demo.logins_password}"
                         f"  (from {self.data_dir / 'demo-password'}); the staff phone is the page's Phone panel")
            lines.append(f"                 field staff, same password: {field}")
        lines.append("Press Ctrl-C to stop.")
        return lines

    def stop(self) -> None:
        """Stop every part that started, newest first. A part that fails to stop is logged and
        the others are still stopped: the embedded database last, whatever happened before."""
        steps: list[tuple[str, Any]] = [
            ("demo control room", self.demo and self.demo.stop),
            ("notice relay", self._notice_relay and self._notice_relay.stop),
            ("simulator", self._simulator and self._simulator.stop),
            ("API", self._api_server and functools.partial(self._stop_api, self._api_server)),
            *[("on-call", service.stop) for service in reversed(self._extras)],
            ("gateway", self.gateway and self.gateway.stop),
            ("broker", self._broker and self._broker.stop),
            ("embedded PostgreSQL", self._embedded_pg and self._embedded_pg.stop),
        ]
        self.demo = self._notice_relay = self._simulator = self._api_server = self.gateway = None
        self._broker = self._embedded_pg = None
        self._extras = []
        for name, step in steps:
            if not step:
                continue
            began = time.monotonic()
            try:
                step()
            except Exception:
                log.exception("stopping the %s failed; stopping the rest", name)
            log.debug("stopped the %s in %.2f s", name, time.monotonic() - began)

    def _stop_api(self, server: Any) -> None:
        if self._api_app is not None:
            self._api_app.state.stopping.set()  # live streams (/stream) end now
        server.should_exit = True
        if self._api_thread is not None:
            self._api_thread.join(API_GRACE_S + 2)
            if self._api_thread.is_alive():
                log.warning("the API did not stop within %s s; stopping the rest", API_GRACE_S + 2)


class NoticeRelay:
    """Copies the demo simulator's notices into ``maintenance_windows`` as they are announced."""

    def __init__(self, simulation: Any, database_url: str, interval_s: float = 10.0) -> None:
        self.simulation = simulation
        self.database_url = database_url
        self.interval_s = interval_s
        self._written: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notice-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def relay_once(self) -> int:
        fresh = [n for n in list(self.simulation.notices) if n.id not in self._written]
        if not fresh:
            return 0
        rows = []
        for n in fresh:
            scopes = [("device", d) for d in n.device_ids] if n.scope == "device" else [(n.scope, n.scope_id)]
            for scope, scope_id in scopes:
                rows.append(
                    (
                        n.community_id,
                        scope,
                        scope_id,
                        n.device_family,
                        dt.datetime.fromtimestamp(n.start_ms / 1000, dt.timezone.utc),
                        dt.datetime.fromtimestamp(n.end_ms / 1000, dt.timezone.utc),
                        n.type,
                    )
                )
        with psycopg.connect(self.database_url) as conn:
            conn.cursor().executemany(
                "INSERT INTO maintenance_windows (community_id, scope, scope_id, device_type, starts_at, ends_at, reason, created_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 'simulator')",
                rows,
            )
        self._written.update(n.id for n in fresh)
        return len(fresh)

    def _run(self) -> None:
        while True:
            try:
                self.relay_once()
            except psycopg.Error:
                log.warning("could not record the simulator's notices; retrying", exc_info=True)
            if self._stop.wait(self.interval_s):
                return
