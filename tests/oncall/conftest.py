"""Fixtures of the on-call tests (defined in oncall_helpers so tests can import its helpers by a unique name)."""

from oncall_helpers import (  # noqa: F401 - pytest finds fixtures by name here
    clock,
    configured_db,
    mailbox,
    oncall_db,
    receiver,
    settings,
    staff_app,
)
