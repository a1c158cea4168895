"""Test databases copied from a template, robust to whoever connects to the template.

Under TimescaleDB the extension's background scheduler connects to every database
that has it, templates included, and ``CREATE DATABASE ... TEMPLATE`` then fails
with "source database ... is being accessed by other users" (about 1 copy in 40
on a real server). Here a session held open on the template plays that part."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ingest.migrate import migrate
from steward.databases import create_database, drop_database, seal_template


def test_a_copy_is_made_while_a_session_holds_the_template(admin_dsn: str) -> None:
    template = create_database(admin_dsn, prefix="steward_template")
    copy = None
    try:
        with psycopg.connect(template) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
            conn.commit()
        name = str(conninfo_to_dict(template)["dbname"])
        holder = psycopg.connect(template)  # as TimescaleDB's scheduler would
        try:
            copy = create_database(admin_dsn, prefix="steward_copy", template=name)
        finally:
            holder.close()
        with psycopg.connect(copy) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)
    finally:
        if copy:
            drop_database(admin_dsn, copy)
        drop_database(admin_dsn, template)


def test_a_sealed_template_takes_no_connections_and_still_copies(admin_dsn: str) -> None:
    template = create_database(admin_dsn, prefix="steward_template")
    copies: list[str] = []
    try:
        holder = psycopg.connect(template)
        name = seal_template(admin_dsn, template)
        with pytest.raises(psycopg.OperationalError):  # the one that was connected is gone
            holder.execute("SELECT 1")
        holder.close()
        with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
            psycopg.connect(template)
        copies = [create_database(admin_dsn, prefix="steward_copy", template=name) for _ in range(3)]
        for copy in copies:  # copies take connections as usual
            with psycopg.connect(copy) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        for copy in copies:
            drop_database(admin_dsn, copy)
        drop_database(admin_dsn, template)


def test_a_missing_template_fails_at_once(admin_dsn: str) -> None:
    with pytest.raises(psycopg.errors.InvalidCatalogName):
        create_database(admin_dsn, template="steward_no_such_template")


@pytest.mark.timescale
def test_forty_copies_of_a_timescaledb_template(admin_dsn: str, server_has_timescale: bool) -> None:
    """The failure this guards against was 1 in 40: a migrated TimescaleDB database
    (its scheduler running) sealed and copied 40 times, every copy made."""
    if not server_has_timescale:
        pytest.skip("TEST_DATABASE_URL has no timescaledb extension")
    template = create_database(admin_dsn, prefix="steward_template")
    copies: list[str] = []
    try:
        migrate(template, requested_mode="timescale")
        name = seal_template(admin_dsn, template)
        for _ in range(40):
            copies.append(create_database(admin_dsn, prefix="steward_copy", template=name))
        with psycopg.connect(copies[-1]) as conn:
            assert conn.execute("SELECT mode FROM storage_mode").fetchone() == ("timescale",)
            assert conn.execute("SELECT count(*) FROM timescaledb_information.hypertables").fetchone()[0] >= 1
    finally:
        for copy in copies:
            drop_database(admin_dsn, copy)
        drop_database(admin_dsn, template)
