"""One database listener per process for every live stream: LISTEN/NOTIFY fanned out in memory.

A stream used to open its own PostgreSQL connection and LISTEN on it, so 110
open streams took 110 connections and exhausted the server for everybody, the
gateway included. Now the process has one `ChangeHub`: one connection that
LISTENs on ``steward_changes``, reads each batch of new ``stream_changes`` rows
once and hands every row to the streams of that row's community (a bounded
in-memory queue each). Streams never hold a connection; they borrow one from
the API's pool for a moment to catch up after ``Last-Event-ID``, or when they
fell more than a queue behind.

Streams are capped per user and in total (`TooManyStreams`: 429 with
Retry-After), so neither the database nor the process is exhausted by
clients. The hub reconnects by itself after the database comes back, and
delivers what was committed meanwhile (it resumes from its cursor).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import psycopg

from api import tenancy
from api.store.changes import CHANNEL, Change, changes_after_async, latest_id_async
from api.users import Caller

log = logging.getLogger(__name__)
PAGE = 500


class TooManyStreams(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(eq=False)
class Subscription:
    """One open stream: the communities it may see and the changes waiting for it."""

    caller: Caller  # whose communities it may see (api.tenancy); refreshed by the stream as it re-checks
    joined_at: int  # the hub's cursor when it joined: rows after it come through the queue
    queue: asyncio.Queue[Change] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    overflowed: bool = False  # fell a whole queue behind: it must catch up from the database

    def offer(self, change: Change) -> None:
        if self.overflowed or not tenancy.sees_community(self.caller, change.community_id):
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True


class ChangeHub:
    def __init__(self, database_url: str, *, poll_s: float, max_total: int, max_per_user: int,
                 application_name: str = "steward-api-stream") -> None:
        self.database_url = database_url
        self.poll_s = poll_s
        self.max_total = max_total
        self.max_per_user = max_per_user
        self.application_name = application_name
        self.cursor = 0
        self.connected = asyncio.Event()
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    # --- streams ------------------------------------------------------------------------------

    @property
    def open_streams(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, caller: Caller) -> Subscription:
        """Join (or 429): its first queued row is the first one after the hub's cursor now."""
        if len(self._subscriptions) >= self.max_total:
            raise TooManyStreams(f"this server has {self.max_total} live streams open, its limit")
        mine = sum(1 for s in self._subscriptions if s.caller.user_id == caller.user_id)
        if mine >= self.max_per_user:
            raise TooManyStreams(f"you have {mine} live streams open, the limit per user")
        subscription = Subscription(caller, self.cursor)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    # --- the one listener ---------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="change-hub")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping, whatever it was doing
                pass

    async def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.database_url, autocommit=True, application_name=self.application_name) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if first:
                        self.cursor = await latest_id_async(conn)
                        first = False
                    self.connected.set()
                    while not self._stop.is_set():
                        await self._fan_out(conn)
                        async for _ in conn.notifies(timeout=self.poll_s, stop_after=1):
                            pass
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                self.connected.clear()
                log.warning("live-stream listener lost the database (%s); reconnecting in 1 s", exc)
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass

    async def _fan_out(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            rows = await changes_after_async(conn, communities=None, after_id=self.cursor, limit=PAGE)
            # No await from here to the end of the loop body: a stream that subscribes sees either all of
            # these rows in its queue or none (and then catches up to its joined_at from the database).
            for change in rows:
                self.cursor = change.id
                for subscription in self._subscriptions:
                    subscription.offer(change)
            if len(rows) < PAGE:
                return
