"""Keyset pagination: an opaque cursor holding the sort key of the last row of a page.

A page is stable under concurrent inserts (no OFFSET), and the cursor is
checked like any other input: a tampered one is a 422 naming ``query.cursor``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from api.errors import InvalidInput


def encode_cursor(key: list[Any]) -> str:
    raw = json.dumps(key, default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, arity: int, field: str = "query.cursor") -> list[Any] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API returned", field=field) from None
    if not isinstance(key, list) or len(key) != arity or any(k is None or isinstance(k, (dict, list)) for k in key):
        raise InvalidInput("cursor is not one this API returned", field=field)
    return key
