"""The control-room page: one HTML page and its static files, no build step.

``GET /`` is the page; ``GET /ui/{name}`` its assets (only files that exist in
``api/static``); ``GET /ui/config.json`` the work-order transitions and the
permission each action needs, read from `workorders.machine` so the page never
keeps a second copy of the state machine. The page talks to the API with the
caller's bearer token like any other client; nothing here needs a login and
nothing here reveals data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from api.errors import NotFound
from domain import conditions

STATIC = Path(__file__).resolve().parent.parent / "static"
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json"}
# Same origin only: the page loads nothing from elsewhere (the control room may have no internet) and may not
# be framed (clickjacking of the Acknowledge button).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False)


def _file(path: Path) -> FileResponse:
    # no-cache: the browser revalidates (ETag) so an upgraded server never runs with yesterday's script.
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix],
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/")
def page() -> FileResponse:
    return _file(STATIC / "index.html")


@router.get("/ui/config.json")
def config() -> JSONResponse:
    transitions: dict[str, list[dict[str, Any]]] = {}
    try:
        from api.routes.workorders import action_permission
        from workorders.machine import TRANSITIONS
    except ModuleNotFoundError:  # the work-order part is optional in the app; the page then hides its panel
        return JSONResponse({"work_orders": False, "transitions": {}, "conditions": conditions.for_the_page()},
                            headers=SECURITY_HEADERS)
    from workorders import why
    for (state, action), target in TRANSITIONS.items():
        needs = [action_permission(action).value]
        transitions.setdefault(state.value, []).append({"action": action.value, "to": target.value,
                                                        "needs_any": needs})
    return JSONResponse({"work_orders": True, "transitions": transitions, "conditions": conditions.for_the_page(),
                         "dispatch_reasons": why.for_the_page()}, headers=SECURITY_HEADERS)


@router.get("/ui/{name}")
def asset(name: str) -> FileResponse:
    # Only plain file names of this folder: no sub-paths, no dot-files, known types only.
    path = (STATIC / name).resolve()
    if "/" in name or name.startswith(".") or path.parent != STATIC or path.suffix not in MEDIA_TYPES \
            or not path.is_file():
        raise NotFound(f"no file {name!r} in the control-room page")
    return _file(path)
