"""The page's routes without a browser: what is served, with which headers, and what is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from workorders.machine import TRANSITIONS


@pytest.fixture(scope="module")
def client(admin_dsn: str) -> Iterator[TestClient]:
    # These routes read no data: the server's admin database is enough for the pool (no migration needed).
    with TestClient(create_app(database_url=admin_dsn), raise_server_exceptions=False) as c:
        yield c


def test_page_and_assets_are_served_same_origin_only(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for name, kind in (("app.js", "text/javascript"), ("api.js", "text/javascript"), ("app.css", "text/css")):
        r = client.get(f"/ui/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), name
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "http://" not in r.text and "https://" not in r.text, f"{name} must not load anything from elsewhere"


@pytest.mark.parametrize("name", ["missing.js", "..%2Fapp.py", "%2E%2E%2Fui.py", ".hidden.js", "README.md",
                                  "..%2F..%2Fsecurity.py"])
def test_only_files_of_the_static_folder(client: TestClient, name: str) -> None:
    r = client.get(f"/ui/{name}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_config_carries_the_machines_transitions(client: TestClient) -> None:
    config = client.get("/ui/config.json").json()
    assert config["work_orders"] is True
    served = {(state, t["action"]): t["to"] for state, ts in config["transitions"].items() for t in ts}
    assert served == {(s.value, a.value): to.value for (s, a), to in TRANSITIONS.items()}
    accept = next(t for t in config["transitions"]["dispatched"] if t["action"] == "accept")
    assert accept["needs_any"] == ["workorder.work"]  # a field step: not the control room's (api/README)
    dispatch = next(t for t in config["transitions"]["created"] if t["action"] == "dispatch")
    assert dispatch["needs_any"] == ["workorder.manage"]


def test_the_page_is_not_part_of_the_api_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/ui") for p in paths)


def test_every_timeline_entry_the_server_writes_reads_in_both_languages(client: TestClient) -> None:
    """A zh-CN operator reads every alert and work-order timeline kind in Chinese, not as a code."""
    import re
    import typing

    from domain.incidents import ChangeKind
    from workorders.machine import Action

    script = client.get("/ui/i18n.js").text
    block = script[script.index("export const TIMELINE_TEXT"):script.index("export const KPI_TEXT")]
    en, zh = block.split("\n  zh:")
    # Detectors (opened/updated/escalated/cleared, reopened), staff on alerts, the closed loop's hook, and every
    # work-order action and event (workorders/store.py).
    kinds = {*typing.get_args(ChangeKind), "reopened", "acknowledged", "assigned", "commented", "resolved",
             "work_order_created", "created", "dispatch_failed", "note", "condition_cleared", "condition_returned",
             "repeat_failure", "failed_again", "tier_raised", *(a.value for a in Action)}
    for language, text in (("en", en), ("zh", zh)):
        named = set(re.findall(r"(\w+):\s*\"", text))
        assert kinds <= named, (language, sorted(kinds - named))
