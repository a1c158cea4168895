"""``steward eval`` and ``steward score``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    # `steward score` normally never reaches typer (steward.cli dispatches it first); listed here for --help.
    app.command("score", context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                add_help_option=False)(score_command)


def score_command(ctx: typer.Context) -> None:
    """Score numeric series (CSV timestamp,value) with the learned baseline; see `steward score --help`."""
    from detectors.score import main

    raise typer.Exit(main(list(ctx.args)))


def eval_command(
    full: Annotated[bool, typer.Option("--full", help="the reference run: >= 1,000 devices, 3 warm-up + 7 scored days, 2 of each scenario, +20 inactivity")] = False,
    devices: Annotated[Optional[int], typer.Option(help="fleet size (default: the 'demo' preset, ~330 devices)")] = None,
    days: Annotated[Optional[int], typer.Option(help="scored days (default 2)")] = None,
    warmup_days: Annotated[Optional[int], typer.Option(help="unscored days the detectors learn first (default 2)")] = None,
    per_type: Annotated[Optional[int], typer.Option(help="scenarios of each type (default 1)")] = None,
    elderly_extra: Annotated[Optional[int], typer.Option(help="extra 'not up in the morning' scenarios (and half as many lie-ins) to measure inactivity sensitivity")] = None,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 7,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="also write the figures as JSON here")] = None,
    state_devices: Annotated[Optional[int], typer.Option(help="instead: measure detector state size on a fleet this big (e.g. 10000)")] = None,
    state_hours: Annotated[float, typer.Option(help="hours of traffic before measuring the state size")] = 2.0,
    late: Annotated[bool, typer.Option("--late/--no-late", help="also run the log delivered late and shuffled (doubles the time)")] = True,
) -> None:
    """Run labelled simulator scenarios through the detectors; print recall, precision,
    latency and false-alarm rates per scenario type, then the misses and false alarms."""
    from rich.console import Console
    from rich.progress import Progress

    from detectors import evaluation

    if full:
        devices, days, warmup_days, per_type = devices or 1000, days or 7, 3 if warmup_days is None else warmup_days, per_type or 2
        elderly_extra = 20 if elderly_extra is None else elderly_extra
    days = days or 2
    warmup_days = 2 if warmup_days is None else warmup_days
    per_type = per_type or 1
    for name, value, low in (("--days", days, 1), ("--warmup-days", warmup_days, 0), ("--per-type", per_type, 1)):
        if value < low:
            raise typer.BadParameter(f"must be >= {low}", param_hint=name)
    if devices is not None and devices < 50:
        raise typer.BadParameter("must be >= 50", param_hint="--devices")
    console = Console(width=None if sys.stdout.isatty() else 150)
    if state_devices is not None:
        if state_devices < 50 or state_hours <= 0:
            raise typer.BadParameter("--state-devices must be >= 50 and --state-hours > 0")
        with console.status(f"simulating {state_hours:g} h of a {state_devices}-device fleet"):
            from detectors.state_size import state_sizes

            sizes = state_sizes(devices=state_devices, hours=state_hours, seed=seed)
        console.print(f"detector state on {sizes.devices} devices after {sizes.hours:g} h ({sizes.messages:,} messages): "
                      f"mean {sizes.measured_mean:.0f} B, max {sizes.measured_max} B per device")
        console.print(f"with every learned history full (the worst case): mean {sizes.saturated_mean:.0f} B, "
                      f"max {sizes.saturated_max} B; by family (mean) {sizes.by_type}, (max) {sizes.saturated_max_by_type}")
        console.print(f"measured max by family: {sizes.measured_max_by_type}")
        return
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("simulating and detecting", total=1.0)
        report = evaluation.run(seed=seed, days=days, warmup_days=warmup_days, devices=devices, per_type=per_type,
                                elderly_extra=elderly_extra or 0, progress=lambda f: bar.update(task, completed=f),
                                late=late)
    print_report(report, console)
    if json_out is not None:
        json_out.write_bytes(evaluation.to_json(report))
        console.print(f"figures written to {json_out}")


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if unit == "s":
        return f"{v:.0f} s" if v < 120 else f"{v / 60:.0f} min" if v < 7200 else f"{v / 3600:.1f} h"
    return f"{v:.0%}" if unit == "%" else f"{v:.2f}"


def print_report(report: object, console: object) -> None:
    import datetime as dt

    from rich.table import Table

    from detectors.scoring import Report, late_summary, summary

    assert isinstance(report, Report)
    say = console.print  # type: ignore[attr-defined]
    s = summary(report)
    table = Table(title="Detector evaluation per scenario type (latency: event time; notice: how long after it the engine knew)")
    for col in ("scenario type", "tier", "n", "recall", "precision", "latency p50", "latency p95", "notice p95", "tier ok"):
        table.add_column(col, justify="left" if col == "scenario type" else "right", no_wrap=True)
    for name, row in sorted(report.by_type.items(), key=lambda kv: (kv[1]["tier"] or 9, kv[0])):
        table.add_row(name, str(row["tier"]), str(row["n"]), _fmt(row["recall"], "%"), _fmt(row["precision"], "%"),
                      _fmt(row["p50_s"], "s"), _fmt(row["p95_s"], "s"), _fmt(row.get("notice_p95_s"), "s"),
                      f"{row['tier_ok']}/{row['detected']}")
    say(table)
    families = ", ".join(f"{f} {v['false_alarms']} ({v['per_1000_device_days']:.2f})" for f, v in s["false_alarms_by_family"].items())
    tiers = ", ".join(f"L{t} {v['false_alarms']} ({v['per_1000_device_days']:.2f})" for t, v in s["false_alarms_by_tier"].items())
    lines = [
        f"fleet: {s['devices']} devices ({report.hubs} elderly hubs), {s['warmup_days']} warm-up + {s['days']} scored days, "
        f"{s['messages']:,} messages ({s['rejected']} rejected) in {s['seconds']} s of detection",
        f"scenarios: {s['detected']}/{s['scenarios']} detected; {s['masked_by_notice']} masked by a notice on the same device",
        f"Level 1: recall {_fmt(s['level1_recall'], '%')}, {s['level1_within_10s']}/{s['level1_scenarios']} within 10 s of "
        f"event time; Level 1 false alarms: {s['level1_false_alarms']}",
        f"false alarms: {s['false_alarms']} = {s['false_alarms_per_1000_device_days']:.2f} per 1,000 device-days "
        f"({s['false_alarms_paging']} paged anybody)",
        f"  per family (per 1,000 device-days of that family): {families or 'none'}",
        f"  per tier (per 1,000 device-days): {tiers or 'none'}",
        f"hard negatives alarmed: {s['hard_negatives_alarmed']}/{s['hard_negatives']}"
        + (f" ({', '.join(s['hard_negatives_alarmed_types'])})" if s["hard_negatives_alarmed_types"] else ""),
        f"elderly: {s['elderly_false_alarms']} false alarms in {s['elderly_resident_days']:.0f} resident-days = "
        f"{(s['elderly_false_alarms_per_50_resident_days'] or 0):.2f} per 50 resident-days; inactivity sensitivity "
        f"{_fmt(report.by_type.get('elderly_inactivity', {}).get('recall'), '%')}",
        f"detector state: mean {s['state_bytes_mean']} B, max {s['state_bytes_max']} B per device ({s['state_devices']} devices)",
    ]
    late = late_summary(report)
    if late is not None:
        d, same = late["delivery"], late["identical"]
        lines += [
            f"late and shuffled delivery (every message up to {d['lateness_s']:g} s late, {d['uplink_outages']} extra uplink "
            f"outages stored and forwarded, the receiver away {d['receiver_outages']}x 30 min and drained):",
            f"  {late['detected']}/{late['scenarios']} detected; Level 1 recall {_fmt(late['level1_recall'], '%')}; "
            f"Level 1 false alarms {late['level1_false_alarms']}; false alarms {late['false_alarms']} = "
            f"{(late['false_alarms_per_1000_device_days'] or 0):.2f} per 1,000 device-days ({late['false_alarms_paging']} paged); "
            f"hard negatives alarmed {late['hard_negatives_alarmed']}/{late['hard_negatives']}",
            f"  incidents identical to the live run: {same['same']} of {same['live']} (late run {same['late']}; "
            f"{same['explained_by_outages']} differ because a device was unreachable >= 15 min: offline); "
            f"unexplained: only live {same['only_live'] or 'none'}, only late {same['only_late'] or 'none'}",
        ]
    for line in lines:
        say(line)
    misses = [o for o in report.outcomes if o.detected_at is None]
    say(f"\nmisses ({len(misses)}):")
    for o in misses:
        sc = o.scenario
        say(f"  {sc.id} on {', '.join(sc.devices[:3])} from {sc.start_ms}")
    say(f"false alarms ({len(report.false_alarms)}):")
    for fa in report.false_alarms:
        when = dt.datetime.fromtimestamp(fa.ts, dt.timezone.utc).isoformat(timespec="seconds")
        say(f"  {when} {fa.condition} on {fa.scope_id} (tier {fa.tier}{'' if fa.pages else ', paged nobody'}): {fa.title}")
    for sid, alarms in report.hard_negative_alarms.items():
        if alarms:
            say(f"  hard negative {sid}: {', '.join(a.condition for a in alarms)}")
