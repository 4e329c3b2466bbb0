"""The interactive API reference at /docs: served entirely by this service (closed networks), with
a Content-Security-Policy that allows exactly that page, and no key needed."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

from factories import auth

from points_service.api.docs import PAGE_POLICY

STRICT_POLICY = "default-src 'none'; frame-ancestors 'none'"


def fetch(client, url: str, **kwargs):
    """GET and close: a file answer keeps its file open until the response is closed."""
    response = client.get(url, **kwargs)
    response.get_data()
    response.close()
    return response


class References(HTMLParser):
    """Every URL the page makes a browser load: scripts, stylesheets and icons, images."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in attrs
            if "src" in attrs:
                self.urls.append(attrs["src"])
        for name in ("href", "src"):
            if tag in ("link", "img", "iframe", "source") and attrs.get(name):
                self.urls.append(attrs[name])
        if "style" in attrs:
            raise AssertionError(f"inline style on <{tag}>: the page's policy would refuse it")

    def handle_endtag(self, tag):
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_docs_loads_only_from_this_service_and_every_reference_answers(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    parser = References()
    parser.feed(page.get_data(as_text=True))
    assert parser.inline_scripts == 0
    assert len(parser.urls) >= 3  # the stylesheet, Swagger UI and the script that starts it
    for url in parser.urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), f"{url} is on another host"
        assert url.startswith("/"), url
        asset = fetch(client, url)
        assert asset.status_code == 200, url
        assert "Content-Security-Policy" in asset.headers
    kinds = {urlsplit(u).path.rsplit(".", 1)[-1] for u in parser.urls}
    assert {"css", "js"} <= kinds


def test_the_script_that_starts_swagger_ui_fetches_the_spec_of_this_service_only(client):
    page = client.get("/docs").get_data(as_text=True)
    assert 'data-spec-url="/openapi.json"' in page
    start = fetch(client, "/docs/start.js").get_data(as_text=True)
    assert "validatorUrl: null" in start  # the default loads a badge from validator.swagger.io
    assert "http" not in start
    spec = client.get("/openapi.json")
    assert spec.status_code == 200 and spec.get_json()["info"]["title"] == "points_service"


def test_docs_has_a_policy_for_that_page_and_every_other_response_keeps_the_strict_one(client, admin_key):
    page = client.get("/docs")
    assert page.headers["Content-Security-Policy"] == PAGE_POLICY
    directives = dict(d.strip().split(" ", 1) for d in PAGE_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in PAGE_POLICY
    for response in (
        fetch(client, "/docs/swagger-ui/swagger-ui-bundle.js"),
        fetch(client, "/docs/start.js"),
        client.get("/openapi.json"),
        client.get("/health/live"),
        client.get("/v1/policy", headers=auth(admin_key)),
        client.get("/v1/policy"),
    ):
        assert response.headers["Content-Security-Policy"] == STRICT_POLICY, response.request.path


def test_docs_needs_no_key_and_serves_no_file_it_does_not_use(client):
    assert client.get("/docs").status_code == 200
    assert fetch(client, "/docs/swagger-ui/swagger-ui.css").status_code == 200
    # the distribution's demo page points at a public petstore; it is not served
    assert client.get("/docs/swagger-ui/index.html").status_code == 404
    assert client.get("/docs/swagger-ui/swagger-initializer.js").status_code == 404
    assert client.get("/docs/swagger-ui/..%2f..%2f__init__.py").status_code == 404


def test_the_assets_may_be_cached_and_revalidated(client):
    asset = fetch(client, "/docs/swagger-ui/swagger-ui.css")
    assert asset.headers["Cache-Control"] == "public, max-age=3600"
    etag = asset.headers["ETag"]
    revalidated = fetch(client, "/docs/swagger-ui/swagger-ui.css", headers={"If-None-Match": etag})
    assert revalidated.status_code == 304
    assert client.get("/docs").headers["Cache-Control"] == "no-store"
