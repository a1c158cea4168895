"""Hostile input never reaches a 500 (issue 17, "Why" 4 and 10): generated from the OpenAPI document and the
route table, so a new parameter or body is covered without being listed here."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from api.app import _routers, create_app
from api.body import Body
from tests.api.conftest import OWN, World
from tests.api.test_oncall_routes import escalating_incident, issue, oncall_client  # noqa: F401 (the fixture)

SECRET = "hostile-input-secret-0123456789"
NUL = "a\x00b"


@pytest.fixture
def admin(world: World) -> dict[str, str]:
    return world.headers(f"admin-{OWN}")


@pytest.fixture
def api(world: World) -> Iterator[TestClient]:
    app = create_app(database_url=world.dsn, oncall_link_secret=SECRET, demo_phone_secret=SECRET)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def operations(client: TestClient) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in client.get("/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            if path != "/stream":  # never ends by itself; its parameters are an int and a header
                yield method.upper(), path, operation


def concrete(path: str, parameters: list[dict[str, Any]], nul_in: str | None = None) -> str:
    for p in parameters:
        if p["in"] == "path":
            integer = p["schema"].get("type") == "integer"
            value = NUL if p["name"] == nul_in else ("1" if integer else "x1")
            path = path.replace("{" + p["name"] + "}", value.replace("\x00", "%00"))
    return path


def assert_named(r: Any, field: str) -> None:
    assert r.status_code == 422, (field, r.status_code, r.text[:300])
    error = r.json()["error"]
    assert error["code"] == "invalid" and error["field"] == field, (field, error)
    assert "Traceback" not in r.text


def test_nul_in_every_string_parameter_is_refused_naming_it(api: TestClient, admin: dict[str, str]) -> None:
    checked = 0
    for method, path, operation in operations(api):
        parameters = operation.get("parameters", [])
        for p in parameters:
            if p["in"] not in ("query", "path") or p["schema"].get("type") == "integer":
                continue
            if p["in"] == "query":
                url = concrete(path, parameters)
                r = api.request(method, url, headers=admin, params={p["name"]: NUL})
            else:
                r = api.request(method, concrete(path, parameters, nul_in=p["name"]), headers=admin)
            assert_named(r, f"{p['in']}.{p['name']}")
            checked += 1
    assert checked >= 40, checked


def _string_properties(schema: dict[str, Any], components: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    names = []
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        if any(o.get("type") == "string" for o in options):
            names.append(name)
    return names


def test_nul_in_every_string_of_every_json_body_is_refused_naming_it(api: TestClient, admin: dict[str, str]) -> None:
    document = api.get("/openapi.json").json()
    components = document["components"]["schemas"]
    checked = 0
    for method, path, operation in operations(api):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        schema = content["application/json"]["schema"]
        url = concrete(path, operation.get("parameters", []))
        if schema.get("type") == "array":  # a list of objects: the first item's fields
            for name in _string_properties(schema["items"], components):
                assert_named(api.request(method, url, headers=admin, json=[{name: NUL}]), f"body.0.{name}")
                checked += 1
            continue
        for name in _string_properties(schema, components):
            assert_named(api.request(method, url, headers=admin, json={name: NUL}), f"body.{name}")
            checked += 1
        # Deeper too: inside a free-form object, and as a key.
        r = api.request(method, url, headers=admin, json={"attributes": {"note": {"deep": [NUL]}}})
        assert_named(r, "body.attributes.note.deep.0")
        r = api.request(method, url, headers=admin, json={"attributes": {NUL: 1}})
        assert_named(r, f"body.attributes.{NUL}")
    assert checked >= 60, checked


def test_the_login_form_and_headers_refuse_nul(api: TestClient) -> None:
    # Unauthenticated: the first thing an attacker reaches (it was a 500 with two tracebacks).
    assert_named(api.post("/auth/token", data={"username": NUL, "password": "x"}), "body.username")
    assert_named(api.post("/auth/token", data={"username": "admin", "password": NUL}), "body.password")
    assert_named(api.get("/devices?cursor=%00"), "query.cursor")
    assert_named(api.get("/devices?community=%ED%A0%80"), "query.community")  # a surrogate, UTF-8 encoded
    assert_named(api.get("/devices?community=%FF"), "query.community")  # not UTF-8 at all


def test_the_login_form_refuses_nul_when_sent_as_multipart(api: TestClient) -> None:
    # FastAPI reads a form from multipart/form-data as well as from URL-encoded: the same fields, the same edge
    # (multipart passed it unchecked and answered 500, unauthenticated).
    for fields, field in (({"username": NUL, "password": "x"}, "body.username"),
                          ({"username": "admin", "password": NUL}, "body.password")):
        assert_named(api.post("/auth/token", files={k: (None, v) for k, v in fields.items()}), field)
    r = api.post("/auth/token", files={"username": ("a\x00b.txt", b"x", "text/plain"), "password": (None, "x")})
    assert_named(r, "body.username")
    r = api.post("/auth/token", content=b"--b\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code in (400, 422) and "Traceback" not in r.text, r.text[:300]


@pytest.mark.parametrize(("raw", "status", "code", "field"), [
    (b"{x", 400, "malformed_json", "body"),
    (b"\xff\xfe", 400, "malformed_json", "body"),
    (b"[" * 5000 + b"]" * 5000, 422, "invalid", "body"),
    (b'{"attributes": ' + b'{"a": ' * 40 + b"1" + b"}" * 41, 422, "invalid", "body"),
    (b'{"attributes": {"a": 1e400}}', 422, "invalid", "body.attributes.a"),
    (b'{"attributes": {"a": NaN}}', 422, "invalid", "body"),
    (b'{"attributes": {"a": ' + b"9" * 5000 + b"}}", 422, "invalid", "body.attributes.a"),
    (b'{"name": "\\ud800"}', 422, "invalid", "body.name"),
])
def test_bodies_past_the_limits_are_refused(api: TestClient, admin: dict[str, str], raw: bytes, status: int,
                                            code: str, field: str) -> None:
    r = api.patch("/devices/north-meter-1", headers={**admin, "Content-Type": "application/json"}, content=raw)
    assert r.status_code == status, r.text[:300]
    assert r.json()["error"]["code"] == code and r.json()["error"]["field"] == field, r.text[:300]


def test_a_body_over_the_size_limit_is_413(api: TestClient, admin: dict[str, str]) -> None:
    r = api.patch("/devices/north-meter-1", headers={**admin, "Content-Type": "application/json"},
                  content=b'{"name": "' + b"x" * (8 * 1024 * 1024) + b'"}')
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_every_path_answers_405_with_allow_listing_its_methods(api: TestClient, admin: dict[str, str]) -> None:
    table: dict[str, set[str]] = {}
    for router in _routers():
        for route in router.routes:
            assert isinstance(route, APIRoute)
            table.setdefault(route.path, set()).update(route.methods)
    for path, methods in table.items():
        url = path.replace("{", "").replace("}", "")
        for method in ("OPTIONS", "TRACE", *({"GET", "POST", "PUT", "PATCH", "DELETE"} - methods)):
            r = api.request(method, url, headers=admin)
            if r.status_code == 405:
                allowed = {m.strip() for m in r.headers["Allow"].split(",")}
                # A path that also matches another template (/ui/{name} and /ui/config.json) lists both.
                assert methods <= allowed, (method, path, r.headers["Allow"])
                assert r.json()["error"]["code"] == "method_not_allowed"
            else:  # another template takes it (GET /alerts/acknowledge is GET /alerts/{alert_id}): refused as input
                assert method not in methods and r.status_code in (404, 422), (method, path, r.status_code)


def test_every_answer_code_is_documented(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status in ("400", "422", "503"):
                assert status in operation["responses"], (method, path, status)
            if "requestBody" in operation:
                assert "413" in operation["responses"], (method, path)


@pytest.mark.parametrize("value", ["0.5", "1800000000", "2026-11-22T08:00:00", "1970-01-01T00:00:00Z",
                                   "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "yesterday"])
def test_instants_are_rfc3339_with_an_offset_in_range(api: TestClient, admin: dict[str, str], value: str) -> None:
    for url, field in (("/events", "query.to"), ("/devices/north-meter-1/series", "query.to"),
                       ("/alerts", "query.to")):
        assert_named(api.get(url, headers=admin, params={"to": value}), field)


def body_models() -> Iterator[type[BaseModel]]:
    def walk(annotation: Any) -> Iterator[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield annotation
            for field in annotation.model_fields.values():
                yield from walk(field.annotation)
        for arg in typing.get_args(annotation):
            yield from walk(arg)

    for router in _routers():
        for route in router.routes:
            if isinstance(route, APIRoute) and route.body_field is not None:
                yield from walk(route.body_field.field_info.annotation)


def test_every_request_body_takes_json_types_as_json_has_them() -> None:
    """false is not 0, "5" is not 5, 1 is not true: for every field of every request body in the route table."""
    from api.body import _kinds

    checked = 0
    for model in set(body_models()):
        if model.__module__.startswith("fastapi"):
            continue  # the OAuth2 login form: form fields are strings on the wire
        assert issubclass(model, Body), f"{model.__module__}.{model.__name__} must derive from api.body.Body"
        for name, field in model.model_fields.items():
            kinds = _kinds(field.annotation)
            if kinds is None:
                continue
            for wrong in (True, 7, "7", [], {}):
                kind = bool if isinstance(wrong, bool) else type(wrong)
                if kind in kinds or (kind is int and float in kinds):
                    continue
                with pytest.raises(ValidationError) as refused:
                    model.model_validate({name: wrong})
                assert any(e["loc"][:1] == (name,) for e in refused.value.errors()), (model, name, wrong)
                checked += 1
    assert checked >= 200, checked


def test_a_json_body_without_a_content_type_is_checked_too(world: World, oncall_client: TestClient) -> None:
    # An action link's POST reads a body without Content-Type as JSON: NUL in its reason reached the database (500).
    token = issue(world.dsn, escalating_incident(world.dsn), "resolve", "n-wang")
    raw = json.dumps({"resolution": "confirmed", "reason": NUL}).encode()
    assert_named(oncall_client.post(f"/oncall/links/{token}", content=raw), "body.reason")
    r = oncall_client.patch("/devices/north-meter-1", headers=world.headers(f"admin-{OWN}"),
                            content=json.dumps({"name": NUL}).encode())
    assert_named(r, "body.name")
    # What is not JSON stays the route's to refuse (the edge does not guess a type it was not told).
    r = oncall_client.post(f"/oncall/links/{token}", content=b"resolution=confirmed")
    assert r.status_code == 422 and "Traceback" not in r.text, r.text[:300]


def test_two_content_types_are_refused(api: TestClient, admin: dict[str, str]) -> None:
    # The edge read the last Content-Type and let a "text/plain" body through unchecked; the route read the
    # first, application/json, and NUL reached the database (500).
    raw = json.dumps({"community_id": OWN, "title": NUL, "tier": 3, "auto_dispatch": False}).encode()
    for first, last in (("application/json", "text/plain"), ("text/plain", "application/json")):
        headers = [*admin.items(), ("Content-Type", first), ("Content-Type", last)]
        r = api.post("/work-orders", headers=httpx.Headers(headers), content=raw)
        assert r.status_code == 400, r.text[:300]
        assert r.json()["error"] == {"code": "bad_request", "field": "header.content-type",
                                     "message": "the request has more than one Content-Type header"}


def test_a_fraction_for_a_whole_number_says_so(api: TestClient, admin: dict[str, str]) -> None:
    # It said "must be a number or null, not a number".
    r = api.post("/work-orders", headers=admin, json={"community_id": OWN, "title": "x", "tier": 2.5})
    assert_named_message(r, "body.tier", "must be a whole number or null, not 2.5")


def assert_named_message(r: Any, field: str, message: str) -> None:
    assert r.status_code == 422, r.text[:300]
    assert r.json()["error"]["field"] == field and message in r.json()["error"]["message"], r.text[:300]


def test_reminder_minutes_false_is_not_zero(api: TestClient, world: World) -> None:
    r = api.post("/oncall/policies", headers=world.headers(f"supervisor-{OWN}"), json={
        "id": "n-any", "community_id": OWN, "tier": None, "reminder_minutes": False,
        "steps": [{"targets": ["team:n-eng"], "delay_minutes": 5}]})
    assert_named(r, "body.reminder_minutes")
    r = api.post("/alerts/1/escalate", headers=world.headers(f"operator-{OWN}"), json={"tier": True})
    assert_named(r, "body.tier")
