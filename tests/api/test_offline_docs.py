"""/docs and /redoc load every asset from this server: they work in a control room without internet."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_pages_reference_only_local_assets(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200, page
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text) + re.findall(r"https?://[^\s'\"<>]+", r.text)
        assert urls, page
        assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], (page, urls)
        for url in re.findall(r"""(?:src|href)=["'](/docs-assets/[^"']+)["']""", r.text):
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
    bundle = client.get("/docs-assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in bundle
    assert client.get("/docs-assets/..%2Fcore.py").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 200
