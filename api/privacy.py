"""Free text and residents' personal data: what a role without ``resident.pii`` sees of what staff wrote.

Staff write free text — a work order's description, its reporter and return
visit note, progress notes, alert comments, resolve notes and escalation
reasons — and they write residents' names and phone numbers into it ("Mrs
Wang, 13800138000, fell in the bathroom"). The decision: **free text is shown
as written only to roles that may see residents' personal data**
(``resident.pii``: operator, supervisor, admin). Every other role (technician,
manager) gets it through `Scrubber`: every phone number (seven digits or
more, however spaced) masked to its last four digits, the names of the
community's residents and of their emergency contacts masked like the
resident record (``W**``), and a work order's reporter (name, phone, unit)
reduced to its unit. The work itself stays readable ("fell in the bathroom,
unit 1203"): a technician still knows what to do and where.

A name that is in no resident record cannot be recognised; the README says
so. It is a scrub of what is shown, not of what is stored: the control room
keeps what it needs to call back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import psycopg

from api.deps import can
from api.security import Permission
from api.store.residents import mask_name, mask_phone
from api.users import Caller

_PHONE = re.compile(r"(?<![\w])\+?\d(?:[\s\-.()]*\d){6,}")
FREE_TEXT_FIELDS = ("description", "return_visit_note", "body", "note", "reason", "text", "comment")


def _mask_number(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return mask_phone(digits)


class Scrubber:
    """Masks phone numbers and the given names in free text (built per request for one caller)."""

    def __init__(self, names: Iterable[str]) -> None:
        # Longest first, so "Wang Xiuying" is masked before a "Wang" of another resident could cut it.
        wanted = sorted({n.strip() for n in names if len(n.strip()) >= 2}, key=len, reverse=True)
        self._names = re.compile("|".join(re.escape(n) for n in wanted), re.IGNORECASE) if wanted else None

    def text(self, value: str | None) -> str | None:
        if not value:
            return value
        value = _PHONE.sub(_mask_number, value)
        if self._names is not None:
            value = self._names.sub(lambda m: mask_name(m.group()), value)
        return value

    def detail(self, value: Any) -> Any:
        """Every string inside a JSON-like value (a timeline entry's detail)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.detail(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.detail(v) for v in value]
        return value

    def reporter(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {k: v for k, v in value.items() if k in ("unit", "unit_id", "building", "building_id")} | {
            "masked": True}


def scrubber_for(conn: psycopg.Connection, caller: Caller, communities: Iterable[str]) -> Scrubber | None:
    """None when the caller may see free text as written; else a scrubber knowing these communities' residents."""
    if can(caller, Permission.RESIDENT_PII):
        return None
    rows = conn.execute(
        "SELECT full_name, emergency_contact_name FROM residents WHERE community_id = ANY(%s)",
        (sorted(set(communities)),)).fetchall()
    return Scrubber(name for row in rows for name in row if name)
