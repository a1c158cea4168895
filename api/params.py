"""Query-parameter checks shared by the routes: time ranges, buckets, page sizes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from api.errors import InvalidInput

UTC = dt.timezone.utc
Limit = Annotated[int, Query(ge=1, le=500, description="Rows per page (at most 500)")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")]
EARLIEST, LATEST = dt.datetime(2000, 1, 1, tzinfo=UTC), dt.datetime(2200, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: object) -> object:
    # Pydantic would read 0.5 or "1800000000" as Unix seconds; an instant here is written as one.
    if isinstance(value, dt.datetime) or (isinstance(value, str) and _RFC3339.match(value)):
        return value
    raise ValueError("must be an RFC 3339 instant with a UTC offset, e.g. 2026-11-22T08:00:00+08:00")


def _in_range(value: dt.datetime) -> dt.datetime:
    # Far-off instants are typing mistakes, and near the datetime limits arithmetic overflows.
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 2000-01-01 and 2200-01-01")
    return value.astimezone(UTC)


# THE instant type of every query and body: RFC 3339 with an offset, 2000..2200, returned in UTC.
Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_range),
                    Field(description="RFC 3339 with a UTC offset, e.g. 2026-03-02T08:00:00+08:00")]
Since = Annotated[Instant | None, Query(alias="from", description="Start of the time range (inclusive, RFC 3339 with offset)")]
Until = Annotated[Instant | None, Query(alias="to", description="End of the time range (exclusive, RFC 3339 with offset)")]
IDENT = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"

_BUCKET = re.compile(r"^(\d{1,6})(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def aware(value: dt.datetime | None, *, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput(f"{field} must carry a UTC offset, e.g. 2026-11-22T08:00:00Z", field=field)
    return value.astimezone(UTC)


def time_range(since: dt.datetime | None, until: dt.datetime | None, *, default_span: dt.timedelta | None,
               now: dt.datetime | None = None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Checked (from, to); with ``default_span`` a missing end is now and a missing start is end - span."""
    since, until = aware(since, field="query.from"), aware(until, field="query.to")
    if default_span is not None:
        if now is None:
            raise TypeError("time_range with a default span needs the request's now")
        until = until or now
        since = since or until - default_span
    if since is not None and until is not None and since >= until:
        raise InvalidInput("from must be before to", field="query.from")
    return since, until


def parse_bucket(text: str) -> dt.timedelta:
    """``30s``, ``5m``, ``1h``, ``1d``: a whole number of seconds, minutes, hours or days (1 s .. 31 d)."""
    match = _BUCKET.match(text)
    if not match:
        raise InvalidInput(f"bucket {text!r} must be a number and a unit s, m, h or d, e.g. 5m", field="query.bucket")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not 1 <= seconds <= 31 * 86400:
        raise InvalidInput("bucket must be between 1s and 31d", field="query.bucket")
    return dt.timedelta(seconds=seconds)


def cursor_time(text: object, *, field: str = "query.cursor") -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidInput("cursor is not one this API returned", field=field) from None
    if value.tzinfo is None:
        raise InvalidInput("cursor is not one this API returned", field=field)
    return value

MAX_ID = 2**63 - 1  # bigint: a larger id is a 422, not a database error
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdCursor = Annotated[int | None, Query(ge=0, le=MAX_ID, description="`next_cursor` of the previous page")]
