"""``python -m gateway``: only the gateway, configured from STEWARD_* (tests use it as a
process they can SIGKILL; production uses ``steward run`` or ``steward gateway``)."""

from steward.commands import gateway_main

if __name__ == "__main__":
    gateway_main()
