"""Security checks (issue 14 item 9): API keys compared in constant time, no secret in any log line, the SSRF
guard (every address family, redirects re-checked hop by hop), CORS configurable and closed by default."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from service.embeddings import media
from service.embeddings.media import MediaLimits, check_address, fetch_bytes
from service.errors import UnauthorizedError, URLNotAllowedError
from service.http import auth
from service.http.app import create_app
from service.http.origin import host_served, origin_refusal
from service.serving import ServingOptions
from service.settings import Settings
from tests.service.conftest import LiveServer

# --- keys ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("presented", ["k-one", "k-three", "wrong", "k-on", "k-one-and-more"])
def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch, presented: str) -> None:
    """No early exit: hmac.compare_digest runs once per configured key, whatever matches (so the time taken does
    not reveal which key, or how much of one, matched)."""
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    keys = ("k-one", "k-two", "k-three")
    if presented in keys:
        auth.check_bearer(f"Bearer {presented}", keys)
    else:
        with pytest.raises(UnauthorizedError):
            auth.check_bearer(f"Bearer {presented}", keys)
    assert [b for _, b in calls] == [k.encode() for k in keys]


def test_no_secret_in_any_log_line(live_server: LiveServer) -> None:
    wrong = "wrong-secret-7f3a9c"
    with httpx.Client(base_url=live_server.url, timeout=60) as anonymous:
        anonymous.post("/v1/embeddings", json={"input": ["x"]}, headers={"Authorization": f"Bearer {wrong}"})
        anonymous.post("/v1/embeddings", json={"input": ["x"]}, headers={"Authorization": f"Basic {wrong}"})
        anonymous.get(f"/v1/models?api_key={wrong}", headers={"Authorization": f"Bearer {live_server.api_key}"})
        anonymous.post(
            "/v1/embeddings",
            json={"input": [{"image": f"http://user:{wrong}@localhost:1/x.png"}]},
            headers={"Authorization": f"Bearer {live_server.api_key}"},
        )
    log = live_server.log()
    assert '"path"' in log  # the access log is there and was read
    for line in log.splitlines():
        assert live_server.api_key not in line
        assert wrong not in line


# --- SSRF ------------------------------------------------------------------------------------------------

REFUSED = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "255.255.255.255", "224.0.0.1", "240.0.0.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:1",
    "2002:7f00:1::", "2002:a00:1::", "2001::1", "2001:db8::1", "100::1",
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_refused(address: str) -> None:
    with pytest.raises(URLNotAllowedError):
        check_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2001:4860:4860::8888", "2002:808:808::"])
def test_public_addresses_allowed(address: str) -> None:
    check_address(address)


def _fake_network(monkeypatch: pytest.MonkeyPatch, routes: dict[str, httpx.Response]) -> list[str]:
    """Resolve names from a table and answer requests from ``routes`` (keyed by the name the client asked for);
    returns the list of hosts actually contacted (the pinned IPs)."""
    dns = {"public.example": ["93.184.216.34"], "internal.example": ["10.0.0.5"], "v6.example": ["fd00::5"]}
    contacted: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        return dns.get(host, [host])

    def handler(request: httpx.Request) -> httpx.Response:
        contacted.append(request.url.host)
        return routes[request.headers["host"] + request.url.path]

    real = httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(media, "_resolve", resolve)
    monkeypatch.setattr(media.httpx, "AsyncClient", client)
    return contacted


LIMITS = MediaLimits(max_bytes=1000, allow_remote_urls=True, max_redirects=3)


@pytest.mark.parametrize(
    "location",
    [
        "http://internal.example/secret",
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://v6.example/",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "gopher://public.example/",
    ],
)
def test_redirects_are_checked_at_every_hop(monkeypatch: pytest.MonkeyPatch, location: str) -> None:
    contacted = _fake_network(
        monkeypatch, {"public.example/start": httpx.Response(302, headers={"location": location})}
    )
    with pytest.raises(URLNotAllowedError):
        asyncio.run(fetch_bytes("http://public.example/start", LIMITS))
    assert contacted == ["93.184.216.34"]  # the refused hop was never contacted


def test_redirect_to_public_host_followed_and_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = {f"public.example/{i}": httpx.Response(302, headers={"location": f"/{i + 1}"}) for i in range(10)}
    _fake_network(monkeypatch, {**loop, "public.example/ok": httpx.Response(200, content=b"data")})
    assert asyncio.run(fetch_bytes("http://public.example/ok", LIMITS)) == b"data"
    with pytest.raises(media.DownloadError, match="redirects"):
        asyncio.run(fetch_bytes("http://public.example/0", LIMITS))


# --- CORS ------------------------------------------------------------------------------------------------


def test_cors_closed_by_default(live_server: LiveServer) -> None:
    origin = {"Origin": "https://evil.example"}
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        simple = c.get("/health", headers=origin)
        preflight = c.options(
            "/v1/embeddings",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
    for response in (simple, preflight):
        assert not any(h.lower().startswith("access-control-") for h in response.headers), response.headers


def test_cors_configured_origins_only(tmp_path: Any) -> None:
    settings = Settings(cors_allow_origins=("https://app.example",), data_dir=tmp_path, api_keys=("k",))
    app = create_app(settings, loader=_never_loaded)
    with TestClient(app=app) as c:
        allowed = c.options(
            "/v1/embeddings",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert allowed.status_code in (200, 204)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        simple = c.get("/health", headers={"Origin": "https://app.example"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        other = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def _never_loaded(_source: Any) -> Any:
    raise RuntimeError("the CORS test does not load a model")


# --- /metrics behind the keys ------------------------------------------------------------------------------


def _app_client(tmp_path: Any, **settings: Any) -> TestClient[Any]:
    return TestClient(app=create_app(Settings(data_dir=tmp_path, **settings), loader=_never_loaded))


def test_metrics_needs_an_api_key_when_keys_are_set(tmp_path: Any) -> None:
    with _app_client(tmp_path, api_keys=("k",)) as c:
        refused = c.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "missing_api_key"
        assert c.get("/metrics", headers={"Authorization": "Bearer k"}).status_code == 200
        assert c.get("/health").status_code == 200  # liveness stays open


def test_metrics_key_is_the_one_key_of_metrics(tmp_path: Any) -> None:
    with _app_client(tmp_path, api_keys=("k",), metrics_key="scrape") as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer k"}).status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer scrape"}).status_code == 200
        assert c.get("/v1/models", headers={"Authorization": "Bearer scrape"}).status_code == 401
    with _app_client(tmp_path, metrics_key="scrape") as keyless:  # a metrics key alone: only /metrics is closed
        assert keyless.get("/metrics").status_code == 401
        assert keyless.get("/metrics", headers={"Authorization": "Bearer scrape"}).status_code == 200


def test_metrics_open_without_any_key(tmp_path: Any) -> None:
    with _app_client(tmp_path) as c:
        assert c.get("/metrics").status_code == 200


# --- Host (DNS rebinding) and Origin (CSRF) ----------------------------------------------------------------


def _serving(settings: Settings) -> ServingOptions:
    return ServingOptions.from_settings(settings)


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("127.0.0.1:8080", True),
        ("[::1]:8080", True),
        ("192.168.1.20:8080", True),
        ("localhost:8080", True),
        ("LOCALHOST.", True),
        ("app.localhost", True),
        ("mybox.local:8080", True),
        ("evil.example", False),
        ("evil.example:8080", False),
        ("127.0.0.1.nip.io", False),
        ("localhost.evil.example", False),
    ],
)
def test_keyless_server_answers_only_its_own_host_names(host: str, served: bool) -> None:
    assert host_served(host, _serving(Settings())) is served


def test_allowed_hosts_and_keys_widen_the_host_check() -> None:
    listed = _serving(Settings(allowed_hosts=("search.example.com", ".corp.example")))
    assert host_served("search.example.com:443", listed)
    assert host_served("a.corp.example", listed)
    assert not host_served("evil.example", listed)
    assert host_served("localhost", listed)  # local names stay served
    assert host_served("evil.example", _serving(Settings(allowed_hosts=("*",))))
    assert host_served("evil.example", _serving(Settings(api_keys=("k",))))  # a rebinding page has no key to send
    assert not host_served("evil.example", _serving(Settings(api_keys=("k",), allowed_hosts=("a.example",))))


@pytest.mark.parametrize(
    ("method", "origin", "fetch_site", "refused"),
    [
        ("POST", "http://evil.example", None, True),
        ("DELETE", "https://evil.example", None, True),
        ("PATCH", "null", None, True),
        ("POST", None, "cross-site", True),
        ("POST", "http://127.0.0.1:8080", None, False),  # the server's own page (the search page)
        ("POST", "http://127.0.0.1:9999", None, True),  # another port is another origin
        ("POST", None, None, False),  # curl, SDKs, the CLI
        ("POST", None, "same-origin", False),
        ("POST", "null", "same-origin", False),  # the search page under its no-referrer policy
        ("POST", "http://evil.example", "cross-site", True),
        ("POST", None, "same-site", True),  # another port of localhost is another origin
        ("GET", "http://evil.example", None, False),  # reads: CORS keeps the answer from the page
    ],
)
def test_keyless_server_refuses_cross_origin_writes(
    method: str, origin: str | None, fetch_site: str | None, refused: bool
) -> None:
    assert bool(origin_refusal(method, origin, fetch_site, "127.0.0.1:8080", _serving(Settings()))) is refused


def test_origin_check_yields_to_keys_and_cors_origins() -> None:
    assert not origin_refusal(
        "POST", "http://evil.example", None, "127.0.0.1:8080", _serving(Settings(api_keys=("k",)))
    )
    cors = _serving(Settings(cors_allow_origins=("https://app.example",)))
    assert not origin_refusal("POST", "https://app.example", None, "127.0.0.1:8080", cors)
    assert origin_refusal("POST", "https://evil.example", None, "127.0.0.1:8080", cors)


def test_forged_requests_get_403_with_the_error_body(tmp_path: Any) -> None:
    with _app_client(tmp_path, allowed_hosts=("testserver.local",)) as c:  # TestClient's own Host name
        for response, code in (
            # a simple request (no preflight) from a page of another site, as a form would send it
            (
                c.post(
                    "/v1/collections",
                    content=b'{"name": "planted"}',
                    headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
                ),
                "cross_origin_refused",
            ),
            (c.get("/v1/collections", headers={"Host": "evil.example"}), "host_not_allowed"),
        ):
            assert response.status_code == 403, response.text
            error = response.json()["error"]
            assert error["code"] == code
            assert "JEV4_" in error["message"]  # names the setting that would allow it
        assert c.get("/v1/collections").status_code != 403
        assert not (tmp_path / "planted").exists()


@pytest.mark.parametrize(("ui", "target"), [(True, "/ui/"), (False, "/docs")])
def test_root_redirects_to_the_page_or_the_docs(tmp_path: Any, ui: bool, target: str) -> None:
    with _app_client(tmp_path, ui=ui) as c:
        response = c.get("/", follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == target
        assert c.get("/", headers={"Authorization": "Bearer whatever"}, follow_redirects=False).status_code == 302
