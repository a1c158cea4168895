"""The wheel (what the Docker image installs) carries the SQL migrations and the page."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_every_package_migration_and_static_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("steward-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {f"ingest/migrations/{p.name}" for p in (ROOT / "ingest" / "migrations").glob("*.sql")}
    assert migrations and migrations <= names
    static = {f"api/static/{p.name}" for p in (ROOT / "api" / "static").iterdir() if p.is_file()}
    assert static and static <= names
    for package in (
        "domain",
        "gateway",
        "ingest",
        "detectors",
        "api",
        "simulators",
        "steward",
        "alerts",
        "workorders",
        "oncall",
    ):
        assert f"{package}/__init__.py" in names, package
