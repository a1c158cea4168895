import psycopg
import pytest


def test_staff_and_teams_schema_refuses_bad_rows(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO teams (team_id, community_id, kind, name) VALUES ('c1-eng', 'c1', 'engineering', 'Eng')")
        conn.execute(
            "INSERT INTO staff (staff_id, community_id, team_id, name, skills, buildings)"
            " VALUES ('s1', 'c1', 'c1-eng', 'Wang', '{elevator}', '{b1}')"
        )
        conn.execute("UPDATE teams SET lead_staff_id = 's1' WHERE team_id = 'c1-eng'")
        conn.commit()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO teams (team_id, community_id, kind, name) VALUES ('x', 'c1', 'plumbing', 'X')")
