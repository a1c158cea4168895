"""The live stream over a real HTTP socket: a user sees their communities' changes, never another's."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg

from tests.api.conftest import OTHER, OWN, LiveServer, World, publish_change


class SseReader:
    """Reads SSE messages in a background thread into a queue, so the test can wait with a deadline."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.messages: queue.Queue[dict[str, object]] = queue.Queue()
        self.opened = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=30.0))
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self.status = response.status_code
                self.opened.set()
                event: dict[str, str] = {}
                for line in response.iter_lines():
                    if line == "":
                        if "data" in event:
                            self.messages.put({"event": event.get("event"), "id": event.get("id"),
                                               **json.loads(event["data"])})
                        event = {}
                    elif not line.startswith(":") and ":" in line:
                        key, _, value = line.partition(":")
                        event[key] = value.strip()
        except httpx.HTTPError:
            pass  # closed by the test
        finally:
            self.opened.set()

    def next(self, deadline_s: float = 10.0) -> dict[str, object]:
        return self.messages.get(timeout=deadline_s)

    def close(self) -> None:
        self._client.close()


def _iter(reader: SseReader, deadline_s: float) -> Iterator[dict[str, object]]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            yield reader.messages.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            return


def test_stream_delivers_only_the_callers_communities(world: World, live: LiveServer) -> None:
    own = SseReader(f"{live.url}/stream", world.headers(f"operator-{OWN}"))
    other = SseReader(f"{live.url}/stream", world.headers(f"operator-{OTHER}"))
    try:
        assert own.opened.wait(10) and other.opened.wait(10)
        assert own.status == 200 and other.status == 200
        # Interleave changes of both communities; each reader must get exactly its own, in order.
        for i in range(3):
            publish_change(world.dsn, OTHER, f"s{i}")
            publish_change(world.dsn, OWN, f"n{i}")
        got_own = [own.next() for _ in range(3)]
        got_other = [other.next() for _ in range(3)]
        assert [m["entity_id"] for m in got_own] == ["n0", "n1", "n2"]
        assert {m["community_id"] for m in got_own} == {OWN}
        assert [m["entity_id"] for m in got_other] == ["s0", "s1", "s2"]
        # Nothing else arrives for the own reader (the other community's rows never reach it).
        publish_change(world.dsn, OTHER, "s-late")
        marker = publish_change(world.dsn, OWN, "n-marker")
        later = list(_iter(own, 5.0))
        assert later and later[0]["entity_id"] == "n-marker" and int(str(later[0]["id"])) == marker
        assert all(m["community_id"] == OWN for m in later)
    finally:
        own.close()
        other.close()


def test_stream_resumes_after_last_event_id(world: World, live: LiveServer) -> None:
    first = publish_change(world.dsn, OWN, "a")
    publish_change(world.dsn, OTHER, "x")
    publish_change(world.dsn, OWN, "b")
    reader = SseReader(f"{live.url}/stream", {**world.headers(f"manager-{OWN}"), "Last-Event-ID": str(first)})
    try:
        assert reader.next()["entity_id"] == "b"
    finally:
        reader.close()


def test_stream_carries_alert_timeline_changes_from_the_database(world: World, live: LiveServer) -> None:
    """A detector writing an incident and its timeline (no API involved) reaches the control room."""
    reader = SseReader(f"{live.url}/stream?access_token={world.headers(f'technician-{OWN}')['Authorization'][7:]}", {})
    try:
        assert reader.opened.wait(10) and reader.status == 200
        with psycopg.connect(world.dsn) as conn:
            for community in (OTHER, OWN):
                row = conn.execute(
                    "INSERT INTO incidents (dedup_key, community_id, scope, scope_id, condition, tier, title, "
                    "opened_at, updated_at) VALUES (%s, %s, 'device', 'd', 'leak', 2, 'Leak', now(), now()) "
                    "RETURNING id", (f"{community}:leak", community)).fetchone()
                assert row is not None
                conn.execute("INSERT INTO incident_timeline (incident_id, at, kind, actor) "
                             "VALUES (%s, now(), 'opened', 'detector')", (row[0],))
        message = reader.next()
        assert message["event"] == "alert" and message["community_id"] == OWN and message["change"] == "opened"
        assert message["data"]["tier"] == 2  # type: ignore[index]
        assert not list(_iter(reader, 1.5))
    finally:
        reader.close()


def test_stream_refuses_a_missing_token(live: LiveServer) -> None:
    r = httpx.get(f"{live.url}/stream", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
