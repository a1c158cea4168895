"""The Node-RED peer's storage-only backlog drain, measured in the same run as Steward's.

The peer (``mqtt in → join 500 → multi-row INSERT``, acknowledging on receipt)
lives outside this repository: set it up from its README (a writable copy,
``setup.sh``), then pass its folder with ``--peer``. Its own ``capacity.sh``
runs unchanged: SIGSTOP Node-RED, queue N QoS 1 messages, SIGCONT, time until
the last row is stored.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PeerDrain:
    rows: int
    lost: int
    seconds: float
    rows_per_s: float
    cpu: dict[str, float]


def check(folder: Path) -> str | None:
    """Why the folder cannot be used, or None."""
    for name in ("start.sh", "capacity.sh", "common.sh"):
        if not (folder / name).exists():
            return f"{folder} has no {name}: pass the folder of a set-up copy of the Node-RED peer"
    if not os.access(folder, os.W_OK):
        return f"{folder} is not writable: copy the peer elsewhere and run its setup.sh there"
    return None


def drain(folder: Path, messages: int) -> PeerDrain:
    subprocess.run(["./start.sh"], cwd=folder, check=True, capture_output=True, timeout=300)
    results = folder / "results" / "capacity.jsonl"
    before = results.read_text().count("\n") if results.exists() else 0
    subprocess.run(
        ["./capacity.sh"], cwd=folder, check=True, capture_output=True, timeout=900, env={**os.environ, "N": str(messages)}
    )
    lines = results.read_text().splitlines()
    if len(lines) <= before:
        raise RuntimeError(f"capacity.sh wrote no result to {results}")
    r = json.loads(lines[-1])
    return PeerDrain(r["stored_rows"], r["rows_lost"], r["drain_s"], r["drain_rate"], r.get("cpu_drain_s") or {})
