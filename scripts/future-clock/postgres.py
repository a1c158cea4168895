"""A PostgreSQL server for scripts/test-future.sh, started under its faked clock.

The system PostgreSQL keeps today's date, so a test that compared a fixed date
with the database's ``now()`` (the failure of 2026-12-02) would still pass a
year-ahead run against it. Started from inside ``faketime``, this server (an
embedded one, as the tests start when no other is reachable) inherits the
moved clock: ``now()`` in SQL is a year ahead too.

    python postgres.py start DIR   # prints the admin DSN
    python postgres.py stop DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from steward.databases import EmbeddedPostgres  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print("usage: postgres.py start|stop DIR", file=sys.stderr)
        return 2
    server = EmbeddedPostgres(Path(argv[2]))
    if argv[1] == "start":
        print(server.start())
    else:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
