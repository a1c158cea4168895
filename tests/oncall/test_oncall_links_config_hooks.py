"""Signed links, the configuration loader and the detector hook, against a real database."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from oncall_helpers import BASE_CONFIG, LINK_SECRET, T0, open_incident

from domain.incidents import IncidentChange, StoredChange, Tier
from oncall.config import ConfigError, validate
from oncall.hooks import on_incident_changes
from oncall.links import LinkRefused, _b64, issue_link, make_token, peek_link, verify_and_consume_link
from oncall.settings import OnCallSettings

TTL = dt.timedelta(hours=1)


def issued(conn: psycopg.Connection, action: str = "ack") -> str:
    nonce, expires = issue_link(conn, incident_id=42, action=action, staff_id="s-wang", now=T0, ttl=TTL)  # type: ignore[arg-type]
    return make_token(LINK_SECRET, incident_id=42, action=action, staff_id="s-wang", expires_at=expires, nonce=nonce)  # type: ignore[arg-type]


def refused(conn: psycopg.Connection, token: str, now: dt.datetime = T0) -> str:
    with pytest.raises(LinkRefused) as exc:
        verify_and_consume_link(conn, token, now, secret=LINK_SECRET)
    assert LINK_SECRET not in str(exc.value)
    return exc.value.reason


def test_link_is_single_use(oncall_db: str) -> None:
    with psycopg.connect(oncall_db) as conn:
        token = issued(conn)
        assert verify_and_consume_link(conn, token, T0 + dt.timedelta(minutes=1), secret=LINK_SECRET) == (42, "ack", "s-wang")
        assert refused(conn, token) == "replayed"


def test_forged_expired_unknown_and_malformed_links_are_refused(oncall_db: str) -> None:
    with psycopg.connect(oncall_db) as conn:
        token = issued(conn)
        body, sig = token.split(".")
        # Another staff id or action in the claims breaks the signature.
        other = make_token("not-the-secret-0000000000", incident_id=42, action="resolve", staff_id="s-wang",
                           expires_at=T0 + TTL, nonce="x")  # fmt: skip
        assert refused(conn, other.split(".")[0] + "." + sig) == "forged"
        assert refused(conn, other) == "forged"
        assert refused(conn, body + "." + _b64(b"\x00" * 32)) == "forged"
        assert refused(conn, token, T0 + TTL) == "expired"
        never = make_token(LINK_SECRET, incident_id=42, action="ack", staff_id="s-wang", expires_at=T0 + TTL, nonce="n0")
        assert refused(conn, never) == "unknown"
        for junk in ("", "abc", "a.b.c", "!!!.???", "x" * 5000):
            assert refused(conn, junk) == "malformed"
        # None of those consumed the real link.
        assert peek_link(token, T0, secret=LINK_SECRET).s == "s-wang"
        assert verify_and_consume_link(conn, token, T0, secret=LINK_SECRET)[1] == "ack"


def test_settings_refuse_weak_secrets_and_unsigned_webhooks() -> None:
    with pytest.raises(ValueError, match="link_secret"):
        OnCallSettings(link_secret="changeme")
    with pytest.raises(ValueError, match="webhook_secret is required"):
        OnCallSettings(link_secret=LINK_SECRET, webhook_url="http://gw.example/send")
    with pytest.raises(ValueError, match="mqtt_url"):
        OnCallSettings(link_secret=LINK_SECRET, mqtt_url="http://broker")
    s = OnCallSettings(link_secret=LINK_SECRET, mqtt_url="mqtt://app:p4ss-word@broker:1883")
    assert s.enabled_channels == ("push",)
    assert LINK_SECRET not in repr(s) and "p4ss-word" in s.secrets()


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"policies": [{"id": "p", "community_id": "c1", "tier": 4, "steps": [{"targets": ["staff:a"], "delay_minutes": 1}]}]},
         "$.policies[0].tier"),
        ({"policies": [{"id": "p", "community_id": "c1", "steps": [{"targets": ["boss"], "delay_minutes": 1}]}]},
         "$.policies[0].steps[0].targets[0]"),
        ({"policies": [{"id": "p", "community_id": "c1", "steps": [{"targets": ["staff:a"], "delay_minutes": "five"}]}]},
         "$.policies[0].steps[0].delay_minutes"),
        ({"schedules": [{"id": "s", "community_id": "c1", "rotations": [
            {"handoff_at": dt.datetime(2026, 3, 1, 8), "shift_hours": 24, "participants": ["a"]}]}]},
         "$.schedules[0].rotations[0].handoff_at"),
        ({"contacts": [{"staff_id": "a", "channel": "fax"}]}, "$.contacts[0].channel"),
        ({"policy": []}, "policy"),
    ],
)  # fmt: skip
def test_config_errors_name_the_field(patch: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("$", r"\$").replace("[", r"\[").replace("]", r"\]")):
        validate(patch)


def test_base_config_is_valid() -> None:
    assert len(validate(BASE_CONFIG).policies) == 2


def _change(kind: str, tier: Tier, *, work_order: bool = False) -> IncidentChange:
    return IncidentChange(
        kind=kind, dedup_key="lift-1:entrapment", community_id="c1", scope="device", scope_id="lift-1",  # type: ignore[arg-type]
        condition="entrapment", tier=tier, ts=T0, title="t", device_ids=("lift-1",), work_order=work_order,
    )  # fmt: skip


def test_hook_rounds_reopen_tier_raise_and_work_orders(configured_db: str) -> None:
    incident_id = open_incident(configured_db, at=T0, tier=Tier.URGENT, condition="leak")
    with psycopg.connect(configured_db) as conn:
        # A same-tier update and a clear do not restart anything.
        on_incident_changes(conn, [StoredChange(incident_id=incident_id, change=_change("updated", Tier.URGENT)),
                                   StoredChange(incident_id=incident_id, change=_change("cleared", Tier.URGENT))])  # fmt: skip
        # The tier rises to 1: a new round under the Level 1 policy, the old round's step cancelled.
        on_incident_changes(conn, [StoredChange(incident_id=incident_id, change=_change("escalated", Tier.LIFE_SAFETY))])
        on_incident_changes(conn, [StoredChange(incident_id=incident_id, change=_change("opened", Tier.URGENT), reopened=True)])
        # A proactive work order is the closed loop's business, not on-call's.
        on_incident_changes(conn, [StoredChange(incident_id=999, change=_change("opened", Tier.ROUTINE, work_order=True))])
        rows = conn.execute(
            "SELECT round, status, left(reason, 40) FROM oncall_pending WHERE incident_id = %s ORDER BY round",
            (incident_id,),
        ).fetchall()
        esc = conn.execute("SELECT round, policy_id, tier FROM oncall_escalations WHERE incident_id = %s", (incident_id,)).fetchone()
        assert conn.execute("SELECT count(*) FROM oncall_escalations WHERE incident_id = 999").fetchone() == (0,)
    assert [(r, s) for r, s, _ in rows] == [(1, "cancelled"), (2, "cancelled"), (3, "pending")]
    assert rows[0][2].startswith("superseded by round 2: tier raised")
    assert esc == (3, "c1-l2", 2)


def test_incident_without_a_policy_is_noted_not_lost_silently(configured_db: str) -> None:
    incident_id = open_incident(configured_db, at=T0, tier=Tier.ROUTINE, condition="battery_low")
    with psycopg.connect(configured_db) as conn:
        note = conn.execute("SELECT note FROM oncall_escalations WHERE incident_id = %s", (incident_id,)).fetchone()
        assert conn.execute("SELECT count(*) FROM oncall_pending WHERE incident_id = %s", (incident_id,)).fetchone() == (0,)
    assert note is not None and "no escalation policy for community c1 tier 3" in note[0]


def test_the_readme_example_validates_and_loads(oncall_db: str) -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from oncall.cli import app
    from oncall.config import apply_config, load_file

    example = Path(__file__).resolve().parents[2] / "oncall" / "example.toml"
    result = CliRunner().invoke(app, ["check", str(example)])
    assert result.exit_code == 0
    assert "6 contacts, 1 schedules, 2 policies, 1 maintenance windows: OK" in " ".join(result.output.split())
    with psycopg.connect(oncall_db) as conn:
        conn.execute("INSERT INTO staff (staff_id, community_id, name) VALUES ('s-zhou', 'c1', '周工')")
        assert apply_config(conn, load_file(example))["policies"] == 2
        steps = conn.execute("SELECT targets FROM oncall_policy_steps WHERE policy_id = 'c1-level1' ORDER BY position").fetchall()
    assert steps[2][0] == [{"kind": "staff", "id": "s-qian"}, {"kind": "team", "id": "c1-security"}]
