"""The interactive API documentation, served from this process: Swagger UI on ``/docs`` and ReDoc on ``/redoc``.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so ``/docs`` is blank
in a control room without internet. The same pages are built here with the
asset files of the ``fastapi-offline`` package (Swagger UI 5 and ReDoc, MIT),
served under ``/docs-assets/``; nothing is fetched from another origin.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import NotFound

ASSETS = Path(str(resources.files("fastapi_offline") / "static"))
ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8",
               "redoc.standalone.js": "text/javascript; charset=utf-8", "favicon.png": "image/png"}


def install_offline_docs(app: FastAPI) -> None:
    """Add /docs, /docs/oauth2-redirect, /redoc and /docs-assets/{file}; create the app with docs_url=None."""
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{title} - Swagger UI",
                                   oauth2_redirect_url="/docs/oauth2-redirect",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{title} - ReDoc",
                              redoc_js_url="/docs-assets/redoc.standalone.js",
                              redoc_favicon_url="/docs-assets/favicon.png", with_google_fonts=False)

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in ASSET_TYPES:
            raise NotFound(f"no documentation asset {name!r}")
        return FileResponse(ASSETS / name, media_type=ASSET_TYPES[name],
                            headers={"Cache-Control": "public, max-age=86400"})
