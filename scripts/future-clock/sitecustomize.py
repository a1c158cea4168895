"""Loaded only by scripts/test-future.sh (it puts this folder on PYTHONPATH).

libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 makes Python's
time.sleep fail with EINVAL (its clock_nanosleep wrapper shifts an absolute
CLOCK_MONOTONIC deadline), while faking the monotonic clock too makes every
timed lock wait hang. A timed Event wait works either way, so sleep uses it.
"""

import threading
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


time.sleep = _sleep
