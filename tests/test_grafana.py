"""The managers' Grafana: the compose file is valid, and every query of the provisioned dashboards runs on a real,
migrated database with data in it, as the read-only role Grafana logs in with, and returns what its panel plots.

Grafana's macros are expanded the way its PostgreSQL data source documents them
($__timeFilter, $__timeGroupAlias) and the dashboard variables are given values.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
import yaml

from domain.devices import Device, DeviceType
from ingest.registry import upsert_devices
from workorders import store as orders

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
RANGE = (T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1))
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def expand(sql: str, variables: dict[str, str]) -> str:
    start, end = (f"'{t.isoformat()}'::timestamptz" for t in RANGE)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m.group(1)} BETWEEN {start} AND {end}", sql)

    def group(m: re.Match[str]) -> str:
        column, interval = m.group(1).strip(), m.group(2).strip().strip("'")
        seconds = int(interval[:-1]) * UNITS[interval[-1]]
        return f'to_timestamp(floor(extract(epoch from {column}) / {seconds}) * {seconds}) AS "time"'

    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),([^)]+)\)", group, sql)
    for name, value in variables.items():
        sql = sql.replace(f"${name}", value)
    assert "$" not in sql, f"unexpanded macro or variable in {sql}"
    return sql


def seed(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        upsert_devices(conn, [Device(device_id="m1", community_id="c01", device_type=DeviceType.WATER, kind="meter",
                                     building_id="c01-b01", unit_id="c01-b01-u0101")])
        for i in range(30):
            at = T0 + dt.timedelta(minutes=2 * i)
            conn.execute("INSERT INTO events (time, received_at, community_id, device_id, device_type, stream, type,"
                         " msg_id, value, fields) VALUES (%s, %s, 'c01', 'm1', 'water', 'telemetry', 'flow', %s, %s,"
                         " '{}')", (at, at, f"f{i}", float(i)))
        conn.execute("INSERT INTO dead_letters (received_at, topic, reason, detail, community_id, payload, payload_size)"
                     " VALUES (%s, 'community/c01/water/m1/telemetry', 'malformed_json', 'x', 'c01', 'x', 1)", (T0,))
        for tier, false_alarm in ((1, True), (2, False), (3, False)):
            conn.execute("INSERT INTO incidents (dedup_key, community_id, scope, scope_id, condition, tier, title,"
                         " device_ids, opened_at, updated_at, false_alarm) VALUES (%s, 'c01', 'device', 'm1', 'leak',"
                         " %s, 'Leak', '{m1}', %s, %s, %s)", (f"m1:leak{tier}", tier, T0, T0, false_alarm))
        orders.create_order(conn, community_id="c01", title="Check meter", source="staff", tier=3, actor="operator", at=T0,
                            auto_dispatch=False)


def test_compose_file_is_valid_and_provisions_grafana(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    shutil.copy(ROOT / ".env.example", env)
    command = ["docker", "compose"] if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode \
        == 0 else ["docker-compose"]
    done = subprocess.run([*command, "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"), "config"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    grafana = config["services"]["grafana"]
    hosts = [v["source"] if isinstance(v, dict) else v.split(":")[0] for v in grafana["volumes"]]
    for folder in ("deploy/grafana/provisioning", "deploy/grafana/dashboards"):
        assert any(h.rstrip("/").endswith(folder) for h in hosts), (folder, hosts)
        assert (ROOT / folder).is_dir()
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/steward.yml").read_text())
    assert datasource["datasources"][0]["uid"] == "steward-db"
    assert datasource["datasources"][0]["user"] == "grafana_reader"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_queries_run_on_a_real_database(path: Path, database_url: str) -> None:
    seed(database_url)
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    variables = {"community": "c01", "device": "m1", "type": "flow"}
    with psycopg.connect(database_url, autocommit=True) as conn:
        # The role Grafana logs in with, with exactly the grants migration 0061 gives it.
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'grafana_reader'").fetchone() is None:
            conn.execute("CREATE ROLE grafana_reader NOLOGIN")
        conn.execute((ROOT / "ingest/migrations/0061_grafana_reader.sql").read_text())
        conn.execute("GRANT USAGE ON SCHEMA public TO grafana_reader")
        conn.execute("SET ROLE grafana_reader")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT password_hash FROM api_users")
        for variable in dashboard["templating"]["list"]:
            values = [r[0] for r in conn.execute(expand(variable["query"], variables))]
            assert variables[variable["name"]] in values, (variable["name"], values)
        rows_seen = 0
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "steward-db", panel["title"]
            for target in panel["targets"]:
                cur = conn.execute(expand(target["rawSql"], variables))
                columns = [c.name for c in cur.description or []]
                rows = cur.fetchall()
                rows_seen += bool(rows)
                if target["format"] == "time_series":
                    assert columns[0] == "time", (panel["title"], columns)
                    assert all(isinstance(r[0], dt.datetime) for r in rows), panel["title"]
                else:
                    assert "value" in columns or len(columns) >= 1, panel["title"]
        assert rows_seen >= len(dashboard["panels"]) - 2, "most panels show the seeded data"
