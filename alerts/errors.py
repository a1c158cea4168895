"""Alert errors are the closed loop's errors (one family for the API to map)."""

from workorders.errors import ClosedLoopError, IllegalTransition, InvalidInput, NotFound

__all__ = ["ClosedLoopError", "IllegalTransition", "InvalidInput", "NotFound"]
