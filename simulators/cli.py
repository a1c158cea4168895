"""``steward simulate``: run a simulated community to MQTT or JSONL files, with its ground truth."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulators.engine import Message, Simulation
from simulators.fleet import PRESETS, Fleet, build_fleet, fleet_for_devices
from simulators.scenarios import CATALOGUE, ScenarioError, load_scenario_file


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[red]steward simulate:[/red] {message}")
    return typer.Exit(2)


def make_fleet(seed: int, preset: str | None, devices: int | None) -> Fleet:
    if devices is not None:
        return fleet_for_devices(seed, devices)
    return build_fleet(seed, preset=preset or "demo")


def _parse_start(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2026-11-16T00:00:00+08:00")
        return value
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"start {value!r} is not an RFC 3339 datetime") from None
    if parsed.tzinfo is None:
        raise ValueError("start needs a UTC offset, e.g. 2026-11-16T00:00:00+08:00")
    return parsed


def summary_tables(by_kind: Counter[str], by_type: Counter[str], sim: Simulation) -> list[Table]:
    sent = Table(title="Messages sent per device type")
    sent.add_column("device type/kind")
    sent.add_column("devices", justify="right")
    sent.add_column("messages", justify="right")
    counts = sim.fleet.counts()
    for key in sorted(set(counts) | set(by_kind)):
        sent.add_row(key, str(counts.get(key, 0)), f"{by_kind.get(key, 0):,}")
    sent.add_row("[b]total", str(len(sim.fleet.devices)), f"[b]{sum(by_kind.values()):,}")
    types = Table(title="Messages per payload type")
    types.add_column("type")
    types.add_column("messages", justify="right")
    for key, n in by_type.most_common():
        types.add_row(key, f"{n:,}")
    scen = Table(title="Scenarios (ground truth)")
    scen.add_column("type")
    scen.add_column("tier")
    scen.add_column("hard negative")
    scen.add_column("count", justify="right")
    per: Counter[str] = Counter(s.type for s in sim.scenarios)
    for name, n in sorted(per.items()):
        st = CATALOGUE[name]
        scen.add_row(name, str(int(st.tier)) if st.tier is not None else "-", "yes" if st.hard_negative else "",
                     str(n))
    scen.add_row("[b]notices", "", "", str(len(sim.notices)))
    return [sent, types, scen]


def simulate_command(
    seed: Annotated[int | None, typer.Option(help="seed: the same seed gives the same traffic")] = None,
    preset: Annotated[str | None, typer.Option(help=f"fleet size: {', '.join(PRESETS)}")] = None,
    devices: Annotated[int | None, typer.Option(help="build a fleet of at least this many devices")] = None,
    days: Annotated[float | None, typer.Option(help="simulated days (default 1)")] = None,
    hours: Annotated[float | None, typer.Option(help="simulated hours, instead of --days")] = None,
    start: Annotated[str | None, typer.Option(help="first instant, RFC 3339 with offset "
                                                     "(default: local midnight, ending before now)")] = None,
    speed: Annotated[float, typer.Option(help="with --mqtt: 1 = real time, N = N times faster, "
                                                "0 = as fast as the broker acknowledges")] = 0.0,
    scenario_file: Annotated[Path | None, typer.Option("--scenario-file", help="TOML file scripting incidents")] = None,
    no_incidents: Annotated[bool, typer.Option("--no-incidents", help="no automatic incidents")] = False,
    no_hard_negatives: Annotated[bool, typer.Option("--no-hard-negatives")] = False,
    heartbeat: Annotated[float | None, typer.Option(help="heartbeat interval in seconds (default 300)")] = None,
    mqtt: Annotated[str | None, typer.Option("--mqtt", help="publish to this broker, "
                                                            "e.g. mqtt://127.0.0.1:1883")] = None,
    jsonl: Annotated[Path | None, typer.Option("--jsonl", help="write messages.jsonl, devices.json and "
                                                                "ground_truth.json into this folder")] = None,
    ground_truth: Annotated[Path | None, typer.Option("--ground-truth", help="where to write the ground truth")] = None,
    credentials: Annotated[Path | None, typer.Option(help="JSON file {device_id: password}: one connection "
                                                           "per device with its own credentials")] = None,
    registry: Annotated[Path | None, typer.Option(help="where to write the device registry (devices.json; "
                                                       "default: next to the ground truth)")] = None,
    replay: Annotated[Path | None, typer.Option(help="publish a folder written by --jsonl to --mqtt instead "
                                                     "of simulating")] = None,
    per_device: Annotated[bool, typer.Option("--per-device", help="one connection per device (client id = "
                                                                   "device id) even without --credentials")] = False,
    pool: Annotated[int, typer.Option(help="shared connections when no credentials are given")] = 8,
    max_inflight: Annotated[int, typer.Option(help="unacknowledged QoS 1 messages allowed")] = 500,
) -> None:
    """Simulate a community (lifts, water, doors, elderly residents) with labelled incidents."""
    if replay is not None:
        if mqtt is None or jsonl is not None:
            raise _fail("--replay needs --mqtt (and no --jsonl)")
        _replay(replay, mqtt, pool, max_inflight)
        return
    if (mqtt is None) == (jsonl is None):
        raise _fail("give exactly one output: --mqtt URL or --jsonl DIR")
    if days is not None and hours is not None:
        raise _fail("give --days or --hours, not both")
    if speed < 0:
        raise _fail("--speed must be 0 (as fast as possible) or positive")
    file_sim: dict[str, Any] = {}
    sf = None
    if scenario_file is not None:
        try:
            sf = load_scenario_file(scenario_file)
        except ScenarioError as exc:
            raise _fail(str(exc)) from None
        file_sim = sf.simulation
    seed_v = seed if seed is not None else int(file_sim.get("seed", 1))
    if devices is None and preset is None:
        devices = file_sim.get("devices")
        preset = file_sim.get("preset")
    if preset is not None and preset not in PRESETS:
        raise _fail(f"--preset {preset!r} is not one of {', '.join(PRESETS)}")
    duration_days = hours / 24 if hours is not None else days if days is not None else float(file_sim.get("days", 1))
    if duration_days <= 0:
        raise _fail("the duration must be positive")
    try:
        start_dt = _parse_start(start if start is not None else file_sim.get("start"))
    except ValueError as exc:
        raise _fail(str(exc)) from None
    auto = not no_incidents and bool(file_sim.get("auto", sf is None))
    hard = not no_hard_negatives and bool(file_sim.get("hard_negatives", True))
    hb = heartbeat if heartbeat is not None else float(file_sim.get("heartbeat_s", 300))
    creds: dict[str, str] | None = None
    if credentials is not None:
        try:
            creds = json.loads(credentials.read_text())
        except (OSError, ValueError) as exc:
            raise _fail(f"--credentials {credentials}: {exc}") from None
        if not isinstance(creds, dict) or not all(isinstance(v, str) for v in creds.values()):
            raise _fail(f"--credentials {credentials}: must be a JSON object of device_id to password")
    try:
        fleet = make_fleet(seed_v, preset, devices)
        duration = dt.timedelta(days=duration_days)
        if mqtt is not None and speed > 0 and start_dt is None:
            # Paced runs end at "now": simulated time never runs ahead of the gateway's clock.
            start_dt = dt.datetime.now(dt.UTC) - (duration if speed > 1 else dt.timedelta(0))
        sim = Simulation(fleet, seed=seed_v, start=start_dt, duration=duration, heartbeat_s=hb,
                         auto_incidents=auto, hard_negatives=hard, scenario_file=sf)
    except (ScenarioError, ValueError) as exc:
        raise _fail(str(exc)) from None

    console = Console()
    console.print(f"[b]steward simulate[/b]: seed {seed_v}, {len(fleet.devices):,} devices in "
                  f"{len(fleet.buildings)} buildings, {duration_days:g} simulated days from "
                  f"{dt.datetime.fromtimestamp(sim.start_ms / 1000, dt.UTC).isoformat()}, "
                  f"{len(sim.scenarios)} scenarios, {len(sim.notices)} notices")
    gt_path = ground_truth or (jsonl / "ground_truth.json" if jsonl is not None else Path("ground_truth.json"))
    sim.write_ground_truth(gt_path)
    from simulators.output import write_devices

    registry_path = write_devices(fleet.devices, registry or gt_path.parent / "devices.json")
    span_s = (sim.end_ms - sim.start_ms) / 1000 if sim.end_ms is not None else 1.0
    by_kind: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    t0 = time.perf_counter()
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("simulated s  {task.fields[msgs]:,} messages"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("simulating", total=int(span_s), msgs=0)
        counter = {"n": 0}

        def tick(m: Message) -> None:
            counter["n"] += 1
            if counter["n"] % 5000 == 0:
                progress.update(task, completed=int((m.ts_ms - sim.start_ms) / 1000), msgs=counter["n"])

        try:
            if jsonl is not None:
                from simulators.output import write_jsonl

                stats = write_jsonl(sim, jsonl, progress=tick, ground_truth=gt_path)
            else:
                assert mqtt is not None
                from simulators.mqtt import BulkPublisher, PublishError

                try:
                    if speed > 0:
                        stats = _paced(sim, mqtt, speed, tick, creds, pool, max_inflight, per_device)
                    else:
                        stats = BulkPublisher(mqtt, credentials=creds, pool_size=pool, per_device=per_device,
                                              max_inflight=max_inflight).run(sim.deliveries(), progress=tick)
                except PublishError as exc:
                    raise _fail(str(exc)) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None
        progress.update(task, completed=int(span_s), msgs=counter["n"])
    elapsed = time.perf_counter() - t0
    by_kind.update(stats.by_kind)
    by_type.update(stats.by_type)
    for table in summary_tables(by_kind, by_type, sim):
        console.print(table)
    console.print(f"{stats.published:,} messages ({stats.acknowledged:,} acknowledged) in {elapsed:.1f} s "
                  f"= {stats.published / max(elapsed, 1e-9):,.0f} msg/s; ground truth: {gt_path}; "
                  f"registry: {registry_path}")


def _replay(folder: Path, url: str, pool: int, max_inflight: int) -> None:
    """Publish a recorded run (messages.jsonl + devices.json) as fast as the broker acknowledges."""
    from simulators.mqtt import BulkPublisher, PublishError
    from simulators.output import read_devices, read_jsonl

    try:
        devices = {d.device_id: d for d in read_devices(folder / "devices.json")}
    except (OSError, ValueError) as exc:
        raise _fail(f"--replay {folder}: cannot read devices.json: {exc}") from None

    def messages() -> Any:
        for topic, payload in read_jsonl(folder):
            device = devices.get(topic.split("/")[3])
            if device is None:
                raise _fail(f"--replay {folder}: {topic} names a device missing from devices.json")
            body = json.loads(payload)
            ts = body["ts"] if isinstance(body["ts"], int) else int(
                dt.datetime.fromisoformat(body["ts"].replace("Z", "+00:00")).timestamp() * 1000)
            yield Message(topic, payload, device, ts, body["type"], topic.rsplit("/", 1)[1])

    console = Console()
    t0 = time.perf_counter()
    try:
        stats = BulkPublisher(url, pool_size=pool, max_inflight=max_inflight).run(messages())
    except PublishError as exc:
        raise _fail(str(exc)) from None
    elapsed = time.perf_counter() - t0
    console.print(f"replayed {stats.published:,} messages ({stats.acknowledged:,} acknowledged) in {elapsed:.1f} s")


def _paced(sim: Simulation, url: str, speed: float, tick: Any, creds: dict[str, str] | None, pool: int,
           max_inflight: int, per_device: bool) -> Any:
    from simulators.mqtt import Publisher, PublishError

    pub = Publisher(url, credentials=creds, pool_size=pool, max_inflight=max_inflight,
                    per_device=per_device).connect()
    wall0 = time.monotonic()
    try:
        for m in sim.deliveries():
            delay = wall0 + (m.deliver_ms - sim.start_ms) / 1000 / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing to the wall clock is the point here
            pub.publish(m)
            tick(m)
        if not pub.flush():
            raise PublishError(f"{pub.inflight} messages unacknowledged")
    finally:
        pub.close()
    return pub.stats


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
