"""Login throttling that slows the attacker without locking the right people out.

Failures are counted three ways, each in its own row of ``api_login_throttle``
(reset after ``window_seconds`` without a failure):

- **pair** — this account from this address. After ``free_failures`` failures
  each further attempt must wait an exponentially growing delay (1, 2, 4 … s,
  at most ``max_delay_seconds``); after ``lock_after`` failures the pair is
  locked for ``lock_seconds``. The lock is the pair's only: the same account
  from another address is not locked, so the right password still works from
  the control room while an attacker hammers from elsewhere.
- **address** — every account from this address (password spraying, or one
  NAT for a whole control room): past ``address_free_failures`` every attempt
  from the address waits the exponential delay — a few seconds for the people
  behind it, never a lock.
- **account** — this account from every address (a distributed guess): past
  ``account_free_failures`` the delay applies to the addresses that have
  themselves failed for the account; an address that has not is unaffected.

An attempt that must wait is refused with 429 and Retry-After *before* the
password is checked. The check and the counting are atomic: the three rows are
locked (``FOR UPDATE``, always in the same order) for the attempt's whole
evaluation, so 40 concurrent attempts are judged one after the other, each
seeing the failures before it.

Waiting for those locks must not cost the rest of the API its connections:
`LoginGate` lets one login per address and at most ``login_max_concurrent``
in all reach the database at once; the others wait without a thread or a
connection (an async wait) for at most ``login_wait_seconds``, then 429.
(150 concurrent logins from one address used to hold every pooled connection
while they queued for the address's row: the API answered 503 to everybody.)
Times are the API's clock (`api.clock`), the
time of the request: a failure is stamped when it was attempted, not when a
slow password check let its transaction read the database's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import psycopg

Scope = Literal["account", "address", "pair"]  # also the order rows are locked in


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 3
    first_delay_seconds: int = 1
    lock_after: int = 10
    lock_seconds: int = 15 * 60
    max_delay_seconds: int = 60
    address_free_failures: int = 20
    account_free_failures: int = 20
    window_seconds: int = 15 * 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0
    why: str = ""


@dataclass
class _Row:
    failures: int
    last_failure_at: dt.datetime | None
    locked_until: dt.datetime | None


def _keys(username: str, address: str) -> dict[Scope, str]:
    return {"account": username, "address": address, "pair": f"{username}\x1f{address}"}


def _delay(failures: int, free: int, first: int, cap: int) -> int:
    return 0 if failures < free else min(first * 2 ** (failures - free), cap)


class Attempt:
    """One login attempt's throttle state, locked from `begin` until the caller's transaction ends."""

    def __init__(self, conn: psycopg.Connection, *, username: str, address: str, policy: ThrottlePolicy,
                 now: dt.datetime) -> None:
        self.conn, self.policy, self.now = conn, policy, now
        self.keys = _keys(username, address)
        window = dt.timedelta(seconds=policy.window_seconds)
        rows: list[tuple] = []
        while len(rows) < len(self.keys):  # a row another login removed meanwhile is made again
            # Rows to lock must exist: make the missing ones, then lock all three in one order (no deadlock).
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO api_login_throttle (scope, key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                                list(self.keys.items()))
            rows = conn.execute(
                "SELECT scope, failures, last_failure_at, locked_until FROM api_login_throttle "
                "WHERE (scope, key) IN ((%s, %s), (%s, %s), (%s, %s)) ORDER BY scope, key FOR UPDATE",
                [part for item in self.keys.items() for part in item],
            ).fetchall()
        self.rows: dict[Scope, _Row] = {}
        for scope, failures, last, locked in rows:
            if last is not None and self.now - last > window:
                failures, locked = 0, None  # a quiet window forgives
            self.rows[scope] = _Row(failures, last, locked)

    def verdict(self) -> Verdict:
        p, now = self.policy, self.now
        pair, address, account = self.rows["pair"], self.rows["address"], self.rows["account"]
        if pair.locked_until is not None and pair.locked_until > now:
            return Verdict(False, _ceil(pair.locked_until - now), "locked")
        waits = [
            (_delay(pair.failures, p.free_failures, p.first_delay_seconds, p.max_delay_seconds),
             pair.last_failure_at, "pair"),
            (_delay(address.failures, p.address_free_failures, p.first_delay_seconds, p.max_delay_seconds),
             address.last_failure_at, "address"),
            (_delay(account.failures, p.account_free_failures, p.first_delay_seconds, p.max_delay_seconds)
             if pair.failures else 0, account.last_failure_at, "account"),
        ]
        for delay, last, why in waits:
            if delay and last is not None and now < last + dt.timedelta(seconds=delay):
                return Verdict(False, _ceil(last + dt.timedelta(seconds=delay) - now), why)
        return Verdict(True)

    def failed(self) -> bool:
        """Count the failure everywhere; True when it locks the pair now."""
        locked_now = False
        for scope, row in self.rows.items():
            row.failures += 1
            row.last_failure_at = self.now
            if scope == "pair" and row.failures >= self.policy.lock_after and not (
                    row.locked_until and row.locked_until > self.now):
                row.locked_until = self.now + dt.timedelta(seconds=self.policy.lock_seconds)
                locked_now = True
            self.conn.execute(
                "UPDATE api_login_throttle SET failures = %s, last_failure_at = %s, locked_until = %s "
                "WHERE scope = %s AND key = %s",
                (row.failures, row.last_failure_at, row.locked_until, scope, self.keys[scope]))
        return locked_now

    def succeeded(self) -> None:
        """The pair starts afresh; what the address and the account saw stays for its window."""
        self.conn.execute("DELETE FROM api_login_throttle WHERE scope = 'pair' AND key = %s", (self.keys["pair"],))
        for scope in ("address", "account"):
            if self.rows[scope].failures == 0:
                self.conn.execute("DELETE FROM api_login_throttle WHERE scope = %s AND key = %s",
                                  (scope, self.keys[scope]))
        # Forget what no window remembers any more: the table holds only recent failures.
        self.conn.execute(
            "DELETE FROM api_login_throttle WHERE last_failure_at < %s AND (locked_until IS NULL OR locked_until < %s)",
            (self.now - dt.timedelta(seconds=2 * self.policy.window_seconds), self.now))


def _ceil(delta: dt.timedelta) -> int:
    seconds = delta.total_seconds()
    return max(1, int(seconds) + (0 if seconds == int(seconds) else 1))


class LoginGate:
    """Logins that may reach the database at once: one per address, ``total`` in all (made in the server's loop)."""

    def __init__(self, *, total: int, wait_s: float) -> None:
        self.wait_s = wait_s
        self._all = asyncio.Semaphore(total)
        self._addresses: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # address -> (its lock, [logins using it])

    @contextlib.asynccontextmanager
    async def slot(self, address: str) -> AsyncIterator[bool]:
        """Yields True once this login may go on, False when it waited ``wait_s`` in vain (refuse it: 429)."""
        lock, users = self._addresses.setdefault(address, (asyncio.Lock(), [0]))
        users[0] += 1
        held: list[asyncio.Lock | asyncio.Semaphore] = []
        try:
            try:
                async with asyncio.timeout(self.wait_s):
                    await lock.acquire()
                    held.append(lock)
                    await self._all.acquire()
                    held.append(self._all)
            except TimeoutError:
                yield False
                return
            yield True
        finally:
            for primitive in reversed(held):
                primitive.release()
            users[0] -= 1
            if users[0] == 0:
                del self._addresses[address]

    def in_use(self) -> int:
        """Addresses with a login waiting or running (0 when the gate is idle)."""
        return len(self._addresses)
