"""The API's one clock.

Every route that needs "now" takes it as the `Now` dependency, which reads the
clock the app was created with (`create_app(clock=...)`): the wall clock in
service, a clock the test sets in tests. No route reads the wall clock itself,
and none compares its time with the database's ``now()``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

Clock = Callable[[], dt.datetime]


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def request_time(request: Request) -> dt.datetime:
    return request.app.state.clock()


Now = Annotated[dt.datetime, Depends(request_time)]
