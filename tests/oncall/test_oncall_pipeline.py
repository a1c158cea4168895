"""End to end over real parts: PostgreSQL, aiosmtpd, a local HTTP gateway, Mosquitto; time from a ManualClock."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from oncall_helpers import (
    LINK_SECRET,
    T0,
    WEBHOOK_SECRET,
    Mailbox,
    Receiver,
    StaffApp,
    open_incident,
    wait_until,
)

from alerts.errors import InvalidInput
from oncall.actions import apply_link
from oncall.clock import ManualClock
from oncall.links import LinkRefused
from oncall.service import OnCallService
from oncall.settings import OnCallSettings
from steward.brokers import MosquittoBroker, free_port

MIN = dt.timedelta(minutes=1)


@pytest.fixture
def service(configured_db: str, settings: OnCallSettings, clock: ManualClock) -> Iterator[OnCallService]:
    svc = OnCallService(configured_db, settings, clock).start()
    yield svc
    svc.stop()


def pending_rows(dsn: str, incident_id: int) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT kind, step, repeat, status, due_at, reason FROM oncall_pending WHERE incident_id = %s"
            " ORDER BY pending_id",
            (incident_id,),
        ).fetchall()


def pending_status(dsn: str, incident_id: int, kind: str, step: int, repeat: int = 0) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT status FROM oncall_pending WHERE incident_id = %s AND kind = %s AND step = %s AND repeat = %s",
            (incident_id, kind, step, repeat),
        ).fetchone()
    return row[0] if row else None


def outbox_staff(dsn: str, incident_id: int) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT DISTINCT staff_id FROM oncall_outbox WHERE incident_id = %s ORDER BY 1", (incident_id,))]  # fmt: skip


def link_from(text: str, action: str) -> str:
    urls = re.findall(r"http://steward\.test/oncall/links/(\S+)", text)
    assert len(urls) == 2, text
    return urls[0] if action == "ack" else urls[1]


def test_level1_pages_primary_on_every_channel(
    service: OnCallService, configured_db: str, mailbox: Mailbox, receiver: Receiver, staff_app: StaffApp
) -> None:
    with psycopg.connect(configured_db) as conn:  # the lift by name, in a named building
        conn.execute("INSERT INTO places (place_id, community_id, kind, name) VALUES ('b1', 'c1', 'building', '1号楼')")
        conn.execute("INSERT INTO devices (device_id, community_id, device_type, kind, building_id, name)"
                     " VALUES ('lift-1', 'c1', 'elevator', 'lift', 'b1', '1号楼1号梯')")
    incident_id = open_incident(configured_db, at=T0)

    mail = mailbox.wait_for("wang@c1.example")[0]
    call = receiver.wait_for("s-wang")[0]
    push = staff_app.wait_for("s-wang")[0]

    # zh-CN template, the tier, the incident and signed links.
    assert mail["Subject"] == "【一级（红色）告警】1号楼1号电梯困人"
    body = mail.get_content()
    assert "事件编号：" + str(incident_id) in body and "确认接单：http://steward.test/oncall/links/" in body
    assert "楼栋：1号楼\n类型：电梯困人  设备：1号楼1号梯\n" in body  # names, not ids
    assert "通知原因：升级策略“c1-l1”第 1/3 步（第 1/2 轮）；您正在“Engineering on call”值班" in body
    # The SMS gateway call is signed over timestamp + body with the webhook secret.
    ts = call["headers"]["X-Steward-Timestamp"]
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), ts.encode() + b"." + call["body"], hashlib.sha256).hexdigest()
    assert call["headers"]["X-Steward-Signature"] == expected
    assert call["json"]["to"] == "+8613800000001" and call["json"]["tier"] == 1
    assert push["incident_id"] == incident_id and push["ack_url"].startswith("http://steward.test/oncall/links/")
    # Only the primary on call: nobody else yet, and every attempt is recorded.
    assert outbox_staff(configured_db, incident_id) == ["s-wang"]
    with psycopg.connect(configured_db) as conn:
        outcomes = wait_until(
            lambda: conn.execute(
                "SELECT channel, outcome FROM oncall_deliveries WHERE incident_id = %s ORDER BY channel", (incident_id,)
            ).fetchall() if len(conn.execute("SELECT 1 FROM oncall_deliveries WHERE incident_id = %s", (incident_id,)).fetchall()) == 3 else None,
            what="three delivery records",
        )  # fmt: skip
    assert outcomes == [("email", "delivered"), ("push", "delivered"), ("webhook", "delivered")]
    reason = pending_rows(configured_db, incident_id)[0][5]
    assert "step 1/3" in reason and "s-wang" in reason and "schedule c1-eng-oncall" in reason


def test_no_ack_within_step_delay_reaches_next_step(
    service: OnCallService, configured_db: str, clock: ManualClock, mailbox: Mailbox
) -> None:
    incident_id = open_incident(configured_db, at=T0)
    mailbox.wait_for("wang@c1.example")
    clock.advance(4 * MIN)
    # Not yet due: the second step stays pending for a full scheduler pass after the clock moved.
    service.scheduler.tick()
    assert pending_status(configured_db, incident_id, "step", 1) == "pending"
    assert mailbox.to("zhao@c1.example") == []

    clock.advance(1 * MIN)  # T0 + 5 min: step 2 is due
    mail = mailbox.wait_for("zhao@c1.example")[0]
    # "Why you" in the supervisor's language (zh-CN), from the decision's codes, not its English sentence.
    assert "通知原因：升级策略“c1-l1”第 2/3 步（第 1/2 轮）；升级策略中指定了您" in mail.get_content()
    assert "pass 1/2" not in mail.get_content()
    assert pending_status(configured_db, incident_id, "step", 1) == "fired"

    clock.advance(5 * MIN)  # T0 + 10 min: the manager
    mailbox.wait_for("qian@c1.example")
    clock.advance(10 * MIN)  # T0 + 20 min: the chain runs again (repeat = 1) from the on-call person
    mailbox.wait_for("wang@c1.example", count=2)
    assert pending_status(configured_db, incident_id, "step", 0, repeat=1) == "fired"


def test_acknowledgement_by_link_stops_the_chain_and_reminds_after_30_minutes(
    service: OnCallService, configured_db: str, clock: ManualClock, mailbox: Mailbox
) -> None:
    incident_id = open_incident(configured_db, at=T0)
    mail = mailbox.wait_for("wang@c1.example")[0]
    token = link_from(mail.get_content(), "ack")

    clock.advance(2 * MIN)
    with psycopg.connect(configured_db) as conn:
        assert apply_link(conn, token, clock.now(), secret=LINK_SECRET) == (incident_id, "ack", "s-wang")
    with psycopg.connect(configured_db) as conn:
        assert conn.execute("SELECT status FROM incidents WHERE id = %s", (incident_id,)).fetchone() == ("acknowledged",)
        # The same link again is refused.
        with pytest.raises(LinkRefused) as refused:
            apply_link(conn, token, clock.now(), secret=LINK_SECRET)
        assert refused.value.reason == "replayed"

    assert pending_status(configured_db, incident_id, "step", 1) == "cancelled"
    clock.advance(10 * MIN)  # well past step 2's time: the supervisor is not paged
    service.scheduler.tick()
    assert outbox_staff(configured_db, incident_id) == ["s-wang"]
    assert mailbox.to("zhao@c1.example") == []

    clock.advance(20 * MIN)  # 30 min after the acknowledgement, still unresolved: remind the owner
    reminder = mailbox.wait_for("wang@c1.example", count=2)[1]
    assert reminder["Subject"].startswith("【提醒·未解决】")

    resolve = link_from(reminder.get_content(), "resolve")
    with psycopg.connect(configured_db) as conn:
        with pytest.raises(InvalidInput, match="needs the reason"):  # Level 1: a finding and a reason, as everywhere
            apply_link(conn, resolve, clock.now(), secret=LINK_SECRET, resolution="confirmed")
        conn.rollback()
        apply_link(conn, resolve, clock.now(), secret=LINK_SECRET, resolution="confirmed", reason="passenger out")
    clock.advance(60 * MIN)
    service.scheduler.tick()
    assert len(mailbox.to("wang@c1.example")) == 2
    assert all(status != "pending" for _, _, _, status, _, _ in pending_rows(configured_db, incident_id))


def test_a_down_channel_is_retried_and_delivered_later_without_delaying_others(
    service: OnCallService, configured_db: str, clock: ManualClock, mailbox: Mailbox, receiver: Receiver,
    staff_app: StaffApp,
) -> None:  # fmt: skip
    mailbox.stop()  # the SMTP server is down
    receiver.status = 503  # and the SMS gateway answers 503
    incident_id = open_incident(configured_db, at=T0)

    staff_app.wait_for("s-wang")  # push is not held up by the two failing channels
    receiver.wait_for("s-wang")

    def attempts(channel: str) -> list[tuple[int, str]]:
        with psycopg.connect(configured_db) as conn:
            return conn.execute(
                "SELECT attempt, outcome FROM oncall_deliveries WHERE incident_id = %s AND channel = %s ORDER BY attempt",
                (incident_id, channel),
            ).fetchall()

    wait_until(lambda: attempts("email") == [(1, "retry")], what="a failed first e-mail attempt")
    wait_until(lambda: attempts("webhook") == [(1, "retry")], what="a failed first webhook attempt")
    mailbox.start()
    receiver.status = 200
    clock.advance(30 * dt.timedelta(seconds=1))  # the first backoff (30 s)
    mailbox.wait_for("wang@c1.example")
    receiver.wait_for("s-wang", count=2)
    wait_until(lambda: attempts("email") == [(1, "retry"), (2, "delivered")], what="the retried e-mail")
    wait_until(lambda: attempts("webhook") == [(1, "retry"), (2, "delivered")], what="the retried webhook")
    with psycopg.connect(configured_db) as conn:
        errors = [r[0] for r in conn.execute("SELECT error FROM oncall_deliveries WHERE outcome = 'retry'")]
    assert errors and all(WEBHOOK_SECRET not in e and LINK_SECRET not in e for e in errors)
    assert any("HTTP 503" in e for e in errors)


def test_webhook_4xx_is_not_retried(service: OnCallService, configured_db: str, receiver: Receiver) -> None:
    receiver.status = 400
    incident_id = open_incident(configured_db, at=T0)
    receiver.wait_for("s-wang")
    with psycopg.connect(configured_db) as conn:
        wait_until(
            lambda: conn.execute(
                "SELECT status FROM oncall_outbox WHERE incident_id = %s AND channel = 'webhook'", (incident_id,)
            ).fetchone() == ("failed",),
            what="the webhook row to fail for good",
        )
        outcomes = conn.execute(
            "SELECT attempt, outcome, error FROM oncall_deliveries WHERE incident_id = %s AND channel = 'webhook'",
            (incident_id,),
        ).fetchall()
    assert outcomes == [(1, "failed", "webhook: HTTP 400")]
    assert len(receiver.for_staff("s-wang")) == 1


def test_restart_mid_escalation_resumes_on_time_and_fires_nothing_twice(
    configured_db: str, settings: OnCallSettings, clock: ManualClock, mailbox: Mailbox
) -> None:
    first = OnCallService(configured_db, settings, clock).start()
    incident_id = open_incident(configured_db, at=T0)
    mailbox.wait_for("wang@c1.example")
    first.stop()  # the process goes away before step 2 is due

    clock.advance(7 * MIN)  # step 2 was due at T0 + 5 min while nothing ran
    second = OnCallService(configured_db, settings, clock).start()
    try:
        mailbox.wait_for("zhao@c1.example")
        # Step 3 is timed from step 2's due time (T0 + 10 min), not from the late restart.
        with psycopg.connect(configured_db) as conn:
            (due,) = conn.execute(
                "SELECT due_at FROM oncall_pending WHERE incident_id = %s AND kind = 'step' AND step = 2", (incident_id,)
            ).fetchone()  # type: ignore[misc]
        assert due == T0 + 10 * MIN
        clock.advance(3 * MIN)
        mailbox.wait_for("qian@c1.example")
        second.scheduler.tick()
    finally:
        second.stop()
    # A third start finds nothing left to redo.
    third = OnCallService(configured_db, settings, clock).start()
    try:
        third.scheduler.tick()
    finally:
        third.stop()
    assert [len(mailbox.to(a)) for a in ("wang@c1.example", "zhao@c1.example", "qian@c1.example")] == [1, 1, 1]
    with psycopg.connect(configured_db) as conn:
        fired = conn.execute(
            "SELECT kind, step, repeat, count(*) FROM oncall_pending WHERE incident_id = %s AND status = 'fired'"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            (incident_id,),
        ).fetchall()
    assert fired == [("step", 0, 0, 1), ("step", 1, 0, 1), ("step", 2, 0, 1)]


def test_maintenance_window_silences_level2_but_never_level1(
    service: OnCallService, configured_db: str, clock: ManualClock, mailbox: Mailbox
) -> None:
    from domain.incidents import Tier
    from oncall.config import add_maintenance_window

    with psycopg.connect(configured_db) as conn:
        window_id = add_maintenance_window(
            conn, community_id="c1", scope="building", scope_id="b1", starts_at=T0 - MIN, ends_at=T0 + 60 * MIN,
            reason="pipe works", created_by="s-zhao",
        )  # fmt: skip
    leak = open_incident(configured_db, at=T0, tier=Tier.URGENT, condition="leak", device_ids=("meter-7",),
                         title="7号表持续流量")  # fmt: skip
    trapped = open_incident(configured_db, at=T0)
    mailbox.wait_for("wang@c1.example")  # Level 1 pages through the window
    service.scheduler.tick()
    rows = pending_rows(configured_db, leak)
    assert rows[0][3] == "pending" and rows[0][4] == T0 + 60 * MIN
    assert f"maintenance window #{window_id}" in rows[0][5]
    assert [m["Subject"] for m in mailbox.to("wang@c1.example")] == ["【一级（红色）告警】1号楼1号电梯困人"]
    assert trapped != leak

    clock.advance(60 * MIN)  # the window ends and the leak is still open: now it pages
    mails = mailbox.wait_for("wang@c1.example", count=2)
    assert any(m["Subject"] == "【二级（橙色）告警】7号表持续流量" for m in mails)


def test_next_day_hand_off_pages_the_other_engineer_in_english(
    service: OnCallService, configured_db: str, clock: ManualClock, mailbox: Mailbox
) -> None:
    clock.set(T0 + dt.timedelta(days=1))  # after Tuesday's 08:00 hand-off: Li (locale en) is on call
    open_incident(configured_db, at=clock.now())
    mail = mailbox.wait_for("li@c1.example")[0]
    assert mail["Subject"] == "[Level 1 (red) alert] 1号楼1号电梯困人"
    assert "Acknowledge: http://steward.test/oncall/links/" in mail.get_content()
    assert mailbox.to("wang@c1.example") == []


def test_push_broker_down_is_retried_once_it_is_back(
    configured_db: str, settings: OnCallSettings, clock: ManualClock, mailbox: Mailbox, tmp_path: Path
) -> None:
    port = free_port()
    down = settings.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{port}"})
    service = OnCallService(configured_db, down, clock).start()
    broker = None
    try:
        incident_id = open_incident(configured_db, at=T0)
        mailbox.wait_for("wang@c1.example")  # e-mail does not wait for the broker

        def push_attempts() -> list[tuple[int, str]]:
            with psycopg.connect(configured_db) as conn:
                return conn.execute(
                    "SELECT attempt, outcome FROM oncall_deliveries WHERE incident_id = %s AND channel = 'push'"
                    " ORDER BY attempt",
                    (incident_id,),
                ).fetchall()

        wait_until(lambda: push_attempts() == [(1, "retry")], what="a failed push attempt")
        broker = MosquittoBroker(workdir=tmp_path / "late-broker", port=port).start()
        app = StaffApp.connect(port)
        try:
            clock.advance(dt.timedelta(seconds=30))  # the first backoff
            # paho reconnects on its own schedule: keep moving time until the retry goes through.
            def delivered() -> bool:
                if push_attempts()[-1][1] == "delivered":
                    return True
                clock.advance(dt.timedelta(minutes=5))
                return False

            wait_until(delivered, timeout_s=30, what="the push retry after the broker came back")
            assert app.wait_for("s-wang")[0]["incident_id"] == incident_id
        finally:
            app.close()
    finally:
        service.stop()
        if broker is not None:
            broker.stop()
