"""JSONL output for replay: ``messages.jsonl``, ``devices.json`` and ``ground_truth.json`` in one folder.

Each line of ``messages.jsonl`` is ``{"topic": "...", "payload": {...}}`` with the
payload's exact bytes embedded (they are a JSON object), in event-time order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import msgspec

from domain.devices import Device
from simulators.engine import Message, Simulation
from simulators.mqtt import PublishStats

MESSAGES = "messages.jsonl"
DEVICES = "devices.json"
GROUND_TRUTH = "ground_truth.json"


def write_devices(devices: Iterable[Device], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(msgspec.json.format(msgspec.json.encode(list(devices)), indent=1) + b"\n")
    return p


def read_devices(path: str | Path) -> list[Device]:
    return msgspec.json.decode(Path(path).read_bytes(), type=list[Device])


def write_jsonl(sim: Simulation, folder: str | Path, *, progress: Callable[[Message], None] | None = None,
                ground_truth: str | Path | None = None) -> PublishStats:
    """Write the whole run (messages, registry, ground truth) into ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    write_devices(sim.fleet.devices, out / DEVICES)
    sim.write_ground_truth(ground_truth or out / GROUND_TRUTH)
    stats = PublishStats()
    with open(out / MESSAGES, "wb", buffering=1 << 20) as f:
        for m in sim.messages():
            f.write(b'{"topic":"' + m.topic.encode() + b'","payload":' + m.payload + b"}\n")
            stats.count(m)
            if progress is not None:
                progress(m)
    stats.acknowledged = stats.published
    return stats


def read_jsonl(folder_or_file: str | Path) -> Iterator[tuple[str, bytes]]:
    """(topic, payload bytes) of a written run, in order, for replay into a broker or the gateway."""
    p = Path(folder_or_file)
    if p.is_dir():
        p = p / MESSAGES
    with open(p, "rb") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                yield row["topic"], msgspec.json.encode(row["payload"])
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{p}:{n}: not a {{topic, payload}} line: {exc}") from None
