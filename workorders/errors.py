"""The few errors of the closed loop, shared by `alerts` and `workorders`.

The API maps them to HTTP: NotFound → 404, IllegalTransition → 409,
InvalidInput → 422. Messages are written for the person who made the request.
"""

from __future__ import annotations


class ClosedLoopError(Exception):
    """Base of every alert and work-order error."""


class NotFound(ClosedLoopError):
    """The alert, work order, staff member or team does not exist (or is outside the caller's communities)."""


class IllegalTransition(ClosedLoopError):
    """The action is not allowed from the current state; nothing was changed."""

    def __init__(self, message: str, *, state: str, action: str) -> None:
        super().__init__(message)
        self.state = state
        self.action = action


class InvalidInput(ClosedLoopError):
    """An argument is wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
