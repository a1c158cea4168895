"""A private RabbitMQ cluster with the MQTT plugin, from Debian's ``rabbitmq-server``.

For the durability tests and for trying a clustered broker by hand. Every node
gets its own name (``<prefix>-N@localhost``), its own ports (AMQP, MQTT,
Erlang distribution), its own data folder and Erlang cookie, and the cluster
its own ``epmd`` port, so nothing is shared with a system RabbitMQ on 5672.

QoS 1 subscriptions of persistent MQTT sessions (``clean_session=false``) are
**quorum queues** (``mqtt.durable_queue_type = quorum``, in RabbitMQ since
3.10): their messages are replicated on a majority of the nodes, and the
broker acknowledges a device's PUBLISH only once the queues it is routed to
have confirmed it. That is what lets a session outlive the node it lives on.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from steward.brokers import free_port, wait_for_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts themselves: /usr/sbin's wrappers switch to the rabbitmq user


def available() -> bool:
    return (RABBITMQ_BIN / "rabbitmq-server").exists() and shutil.which("erl") is not None


@dataclass
class RabbitNode:
    name: str  # e.g. h19-rmq-1@localhost
    workdir: Path
    amqp_port: int
    mqtt_port: int
    dist_port: int
    epmd_port: int
    cookie: str
    process: subprocess.Popen[bytes] | None = None
    management_port: int | None = None  # the management plugin (HTTP API) on this port when set
    anonymous: bool = True  # MQTT logins without credentials (the guest account)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def env(self) -> dict[str, str]:
        home = self.workdir / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(home),
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.workdir / "log"),
            RABBITMQ_CONFIG_FILE=str(self.workdir / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.workdir / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.workdir / "rabbit.pid"),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def write_files(self) -> None:
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)
        (self.workdir / "rabbitmq-env.conf").write_text("")
        plugins = "rabbitmq_mqtt,rabbitmq_management" if self.management_port else "rabbitmq_mqtt"
        (self.workdir / "enabled_plugins").write_text(f"[{plugins}].\n")
        management = (
            [f"management.tcp.port = {self.management_port}", "management.tcp.ip = 127.0.0.1"]
            if self.management_port else []
        )
        (self.workdir / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
                    f"mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt_port}",
                    f"mqtt.allow_anonymous = {'true' if self.anonymous else 'false'}",
                    "mqtt.durable_queue_type = quorum",
                    "loopback_users = none",
                    "log.console = false",
                    "log.file.level = info",
                    # A test machine's disk may be nearly full; the default 50 MB limit
                    # would block publishers for reasons that have nothing to do with us.
                    "disk_free_limit.absolute = 1MB",
                    *management,
                    "",
                ]
            )
        )

    def start(self) -> None:
        self.write_files()
        self.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def ctl(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.name}: {result.stderr.decode()[-800:]}")
        return result.stdout.decode()

    def wait_started(self, timeout: float = 180) -> None:
        # `wait` waits for the pid file, then for the node's applications to be running.
        self.ctl("wait", "--timeout", str(int(timeout)), str(self.workdir / "rabbit.pid"), timeout=timeout + 10)
        wait_for_port("127.0.0.1", self.mqtt_port, timeout)

    def kill(self) -> None:
        """kill -9: the node dies without a word to the others."""
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # the node and its port helpers
            except ProcessLookupError:
                pass
            self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class RabbitCluster:
    """``size`` nodes joined into one cluster. Ports are free loopback ports unless
    ``base_port`` is given (node i then uses base_port + 10*i + 0/1/2)."""

    workdir: Path
    size: int = 3
    prefix: str = "steward-rmq"
    base_port: int | None = None
    nodes: list[RabbitNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        cookie = os.urandom(16).hex().upper()
        epmd = free_port() if self.base_port is None else self.base_port + 9
        for i in range(1, self.size + 1):
            if self.base_port is None:
                amqp, mqtt, dist = free_port(), free_port(), free_port()
            else:
                amqp, mqtt, dist = (self.base_port + 10 * i + k for k in range(3))
            self.nodes.append(
                RabbitNode(
                    name=f"{self.prefix}-{i}@localhost",
                    workdir=self.workdir / f"node{i}",
                    amqp_port=amqp,
                    mqtt_port=mqtt,
                    dist_port=dist,
                    epmd_port=epmd,
                    cookie=cookie,
                )
            )

    def start(self) -> RabbitCluster:
        for node in self.nodes:
            node.start()
        try:
            for node in self.nodes:
                node.wait_started()
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.name)
                node.ctl("start_app")
                node.wait_started()
        except BaseException:
            self.stop()
            raise
        return self

    def running_nodes(self, via: RabbitNode | None = None) -> list[str]:
        node = via or next(n for n in self.nodes if n.alive)
        out = node.ctl("eval", "rabbit_nodes:all_running().")
        return sorted(part.strip(" []'\n") for part in out.split(",") if "@" in part)

    def queue_leader(self, queue: str, via: RabbitNode | None = None) -> str | None:
        """The node holding the leader of a quorum queue (None if there is no such queue)."""
        node = via or next(n for n in self.nodes if n.alive)
        out = node.ctl("list_queues", "name", "leader", "--no-table-headers", "--quiet")
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return parts[1]
        return None

    def node(self, name: str) -> RabbitNode:
        return next(n for n in self.nodes if n.name == name)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        # epmd was started by the first node for this cluster's own port; it exits
        # by itself only when asked.
        subprocess.run(
            ["epmd", "-port", str(self.nodes[0].epmd_port), "-kill"], capture_output=True, timeout=10, check=False
        )

    def __enter__(self) -> RabbitCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
