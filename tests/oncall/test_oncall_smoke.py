import psycopg
from oncall_helpers import T0, open_incident


def test_hook_schedules_first_step(configured_db: str) -> None:
    incident_id = open_incident(configured_db, at=T0)
    with psycopg.connect(configured_db) as conn:
        rows = conn.execute("SELECT round, kind, step, repeat, due_at, status FROM oncall_pending WHERE incident_id = %s",
                            (incident_id,)).fetchall()
    assert rows == [(1, "step", 0, 0, T0, "pending")]
