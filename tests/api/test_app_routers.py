"""Every router is part of the API: one that cannot be imported stops the start instead of vanishing.

Routers used to be "optional": a ModuleNotFoundError while importing one was logged at INFO and its routes
were simply absent from a running API (and from its tenancy matrix and OpenAPI document).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from api.app import ROUTERS, create_app

ROUTES = Path(__file__).resolve().parents[2] / "api" / "routes"


def test_a_router_whose_dependency_is_missing_fails_the_start_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # The on-call action links need msgspec; an installation without it must not start without them.
    monkeypatch.delitem(sys.modules, "api.routes.oncall_links", raising=False)
    monkeypatch.setitem(sys.modules, "msgspec", None)  # what `import msgspec` meets when it is not installed
    with pytest.raises(ModuleNotFoundError) as missing:
        create_app(database_url="postgresql://nobody@127.0.0.1:1/none")  # fails before any connection
    assert "msgspec" in str(missing.value)


def test_every_module_of_api_routes_is_a_router_of_the_app() -> None:
    modules = {p.stem for p in ROUTES.glob("*.py") if p.stem != "__init__"}
    assert modules == set(ROUTERS)
    app = create_app(database_url="postgresql://nobody@127.0.0.1:1/none")
    paths = set(app.openapi()["paths"])
    assert {"/oncall/schedules", "/tree", "/work-orders", "/alerts", "/staff", "/demo/phone"} <= paths
