"""The edge every request passes before any route: hostile input is refused here, with the field named.

One validator, `unstorable`, is applied to **every string the API takes** —
path segments, query parameter names and values, header values, form fields
(URL-encoded and multipart),
and every key and string value of a JSON body at any depth (a body without a
Content-Type too, when it is JSON; two Content-Types are 400) — because
PostgreSQL cannot store some of what HTTP and JSON can carry: NUL (U+0000,
in ``text`` and ``jsonb`` alike) and lone UTF-16 surrogates (``"\\ud800"``,
which are not UTF-8). Such input used to reach the database and answer 500;
here it is 422 ``invalid`` with ``field`` = ``query.username``,
``body.attributes.note``, ``path.device_id``, ``header.x-api-key``…

JSON bodies have documented limits (`Limits`): at most ``max_body_bytes``
(413 ``too_large``; 8 MiB), nesting at most ``max_depth`` deep, numbers finite (no
``NaN``/``Infinity``, nothing that overflows a double) and integers of at most
``max_int_digits`` digits (422 naming the field). A body that is not JSON at
all is 400 ``malformed_json`` (documented on every operation).

This module only refuses; it never changes a request it lets through (the
body is replayed to the app byte for byte).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_json

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Why PostgreSQL could not store ``text`` (None when it can)."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "contains NUL (\\u0000), which cannot be stored"
    return f"contains a lone surrogate (\\u{ord(char):04x}), which is not valid Unicode text"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 8 * 1024 * 1024  # a 1,000,000-character roster, every character JSON-escaped (6 bytes)
    max_depth: int = 32
    max_int_digits: int = 30  # well past bigint (19 digits) and any reading; Python's own cap is 4300


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _field(prefix: str, path: list[str | int]) -> str:
    return ".".join([prefix, *(str(p) for p in path)])


def check_json(value: Any, limits: Limits) -> None:
    """Every key and string at any depth storable; depth, numbers within the limits (iterative: no recursion)."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if len(path) > limits.max_depth:
            raise Refused(422, "invalid", f"body: nested deeper than {limits.max_depth} levels", "body")
        if isinstance(item, str):
            reason = unstorable(item)
            if reason:
                field = _field("body", path)
                raise Refused(422, "invalid", f"{field}: {reason}", field)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, float) and not math.isfinite(item):
            field = _field("body", path)
            raise Refused(422, "invalid", f"{field}: the number is out of range (finite, at most "
                                          f"{limits.max_int_digits} digits)", field)
        elif isinstance(item, dict):
            for key, child in item.items():
                reason = unstorable(key)
                if reason:
                    field = _field("body", [*path, key])
                    raise Refused(422, "invalid", f"{field}: the key {reason}", field)
                stack.append((child, [*path, key]))
        elif isinstance(item, list):
            stack.extend((child, [*path, i]) for i, child in enumerate(item))


def parse_json(raw: bytes, limits: Limits) -> Any:
    def number(text: str) -> float:
        return float(text)  # 1e400 is inf here: check_json names its field

    def integer(text: str) -> int | float:
        if len(text.lstrip("-")) > limits.max_int_digits:
            return math.inf  # out of range, named by check_json
        return int(text)

    def constant(name: str) -> Any:
        raise Refused(422, "invalid", f"body: {name} is not a JSON number", "body")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "malformed_json", "the body is not UTF-8", "body") from None
    try:
        return json.loads(text, parse_float=number, parse_int=integer, parse_constant=constant)
    except RecursionError:
        raise Refused(422, "invalid", f"body: nested deeper than {limits.max_depth} levels", "body") from None
    except ValueError as exc:
        raise Refused(400, "malformed_json", f"the body is not JSON: {exc}", "body") from None


class InputGuard:
    """Pure ASGI middleware: streaming answers (/stream) pass untouched; bodies are read once and replayed."""

    def __init__(self, app: ASGIApp, *, limits: Limits | None = None,
                 route_paths: Callable[[], list[str]] | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self._route_paths = route_paths
        self._compiled: list[tuple[re.Pattern[str], list[str]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_path(scope)
            self._check_query(scope)
            self._check_headers(scope)
            body = await self._read_body(scope, receive)
            if body is not None:
                await self._check_body(scope, body)
        except Refused as refused:
            response = error_json(refused.status, refused.code, refused.message, refused.field)
            await response(scope, receive, send)
            return
        if body is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    # --- the parts of a request ---------------------------------------------------------------

    def _templates(self) -> list[tuple[re.Pattern[str], list[str]]]:
        if self._compiled is None:
            self._compiled = []
            for template in self._route_paths() if self._route_paths else []:
                regex, _, convertors = compile_path(template)
                self._compiled.append((regex, list(convertors)))
        return self._compiled

    def _check_path(self, scope: Scope) -> None:
        path: str = scope["path"]
        reason = unstorable(path)
        if reason is None:
            return
        field = "path"
        for regex, names in self._templates():
            match = regex.match(path)
            if match:
                field = next((f"path.{n}" for n in names if unstorable(match.group(n) or "")), "path")
                break
        raise Refused(422, "invalid", f"{field}: {reason}", field)

    def _check_query(self, scope: Scope) -> None:
        raw: bytes = scope.get("query_string", b"")
        if not raw:
            return
        try:
            pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8",
                              errors="surrogateescape")
        except ValueError:
            raise Refused(400, "bad_request", "the query string cannot be parsed", "query") from None
        for name, value in pairs:
            for text, what in ((name, "name"), (value, "value")):
                reason = "is not UTF-8" if _has_escaped_bytes(text) else unstorable(text)
                if reason:
                    field = f"query.{name}" if what == "value" else "query"
                    raise Refused(422, "invalid", f"{field}: the {what} {reason}", field)

    def _check_headers(self, scope: Scope) -> None:
        # Two Content-Types are ambiguous: this edge and the route could each read another one (the route reads
        # the first), and a body checked as text would reach the route as JSON.
        if sum(1 for name, _ in scope.get("headers", []) if name.lower() == b"content-type") > 1:
            raise Refused(400, "bad_request", "the request has more than one Content-Type header",
                          "header.content-type")
        for name, value in scope.get("headers", []):
            if b"\x00" in value:
                field = f"header.{name.decode('latin-1')}"
                raise Refused(422, "invalid", f"{field}: contains NUL (\\u0000), which cannot be stored", field)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return None
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            raise Refused(413, "too_large", f"the body is larger than {self.limits.max_body_bytes} bytes", "body")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                raise Refused(413, "too_large", f"the body is larger than {self.limits.max_body_bytes} bytes",
                              "body")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _check_body(self, scope: Scope, body: bytes) -> None:
        if not body:
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type == b"application/json" or content_type.endswith(b"+json"):
            check_json(parse_json(body, self.limits), self.limits)
        elif not content_type:
            # No Content-Type: a route may still read the body as JSON (an action link's POST does), so JSON is
            # checked like JSON; anything else is left to the route, which refuses what it cannot read.
            try:
                document = parse_json(body, self.limits)
            except Refused as refused:
                if refused.status == 400:
                    return
                raise
            check_json(document, self.limits)
        elif content_type == b"application/x-www-form-urlencoded":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise Refused(422, "invalid", "body: the form is not UTF-8", "body") from None
            for name, value in parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="surrogateescape"):
                for part in (name, value):
                    reason = "is not UTF-8" if _has_escaped_bytes(part) else unstorable(part)
                    if reason:
                        field = f"body.{name}" if unstorable(name) is None else "body"
                        raise Refused(422, "invalid", f"{field}: {reason}", field)
        elif content_type == b"multipart/form-data":
            # The login form may come as multipart too (FastAPI reads both): its fields reach the database alike.
            await _check_multipart(scope, body)


async def _check_multipart(scope: Scope, body: bytes) -> None:
    async def stream() -> Any:
        yield body

    try:
        form = await MultiPartParser(Headers(scope=scope), stream()).parse()
    except MultiPartException as exc:
        raise Refused(400, "bad_request", f"the multipart body cannot be parsed: {exc.message}", "body") from None
    try:
        for name, value in form.multi_items():
            texts = [value] if isinstance(value, str) else [value.filename or ""]  # a file: its name
            for text in texts:
                reason = unstorable(text)
                if reason:
                    field = f"body.{name}" if unstorable(name) is None else "body"
                    raise Refused(422, "invalid", f"{field}: {reason}", field)
            if unstorable(name):
                raise Refused(422, "invalid", f"body: the field name {unstorable(name)}", "body")
    finally:
        await form.close()


def _has_escaped_bytes(text: str) -> bool:
    # parse_qsl with errors="surrogateescape" maps bytes that are not UTF-8 to U+DC80..U+DCFF.
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then whatever comes next (a disconnect)

    return replayed


# Answers any operation may give, whatever its route declares: the edge's and the server's own.
COMMON_RESPONSES = {
    "400": "Unreadable request: a body that is not JSON (`malformed_json`), a query string that cannot be parsed",
    "413": "The body is larger than the limit (`too_large`)",
    "422": "Invalid input; `field` names it (also: text PostgreSQL cannot store, nesting or numbers past the limits)",
    "503": "The database is unavailable for now (`unavailable`, with Retry-After)",
}


def document_common_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the edge's answers to every operation of an OpenAPI document (once; returns it)."""
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in COMMON_RESPONSES.items():
                if status == "413" and "requestBody" not in operation:
                    continue
                operation["responses"].setdefault(status, {
                    "description": description, "content": {"application/json": {"schema": ref}}})
    return schema
