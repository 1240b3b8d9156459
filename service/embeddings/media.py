"""Turn an ``image`` / ``pdf`` input value into bytes: base64, data URI, or (when enabled) an http(s) URL.

Remote fetching is guarded (SSRF):

- every URL is parsed and validated first (:func:`parse_url`): a malformed one (bad IPv6 literal, port outside
  1..65535 or not a number, a host that is no valid DNS name or IP address, longer than 253 characters, or a URL
  over ``MAX_URL_CHARS``) is a 422 ``invalid_url`` naming the input and what is wrong, never a 500;
- off unless ``allow_remote_urls``; only ``http``/``https`` (``file://`` and every other scheme are refused);
- the host must match ``allowed_url_hosts`` when that list is non-empty (``example.com`` exact,
  ``.example.com`` the domain and its subdomains);
- the host is resolved FIRST and every address must be public (not private, loopback, link-local, multicast,
  reserved, unspecified, shared or IPv4-mapped private); the connection then goes to the checked address
  (HTTP ``Host`` and TLS SNI keep the name), so DNS rebinding cannot swap in another address;
- redirects are followed by hand, each hop checked again, at most ``max_redirects``;
- the body is streamed and cut at ``max_download_bytes`` (413); the whole fetch has ``download_timeout_s``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import httpx

from model.errors import NotAnImageError
from service.errors import (
    DownloadError,
    PayloadTooLargeError,
    RemoteURLDisabledError,
    UnprocessableError,
    UnsupportedMediaTypeError,
    URLNotAllowedError,
    naming,
)

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "MediaLimits",
    "check_address",
    "decode_base64_or_data_uri",
    "fetch_bytes",
    "host_allowed",
    "load_source",
    "parse_url",
    "wrong_kind",
]


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """The limits that apply to one media value (built from Settings)."""

    max_bytes: int
    max_bytes_setting: str = "max_download_bytes"  # the field of Settings that ``max_bytes`` comes from
    allow_remote_urls: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allow_private_addresses: bool = False
    timeout_s: float = 10.0
    max_redirects: int = 3

    @classmethod
    def from_settings(cls, settings: Settings, max_bytes_setting: str = "max_download_bytes") -> MediaLimits:
        """The limits of ``settings``, the size cap taken from its field ``max_bytes_setting``."""
        return cls(
            max_bytes=getattr(settings, max_bytes_setting),
            max_bytes_setting=max_bytes_setting,
            allow_remote_urls=settings.allow_remote_urls,
            allowed_hosts=settings.allowed_url_hosts,
            allow_private_addresses=settings.allow_private_addresses,
            timeout_s=settings.download_timeout_s,
            max_redirects=settings.max_redirects,
        )


def is_url(value: str) -> bool:
    """True when the value names a scheme we must treat as a URL (http, https, file, ftp, ...)."""
    head = value[:16].lower()
    return "://" in head


async def load_source(value: str, limits: MediaLimits, *, what: str = "input") -> bytes:
    """Bytes of a base64 string, a data URI, or an http(s) URL (guarded as described in the module doc); a size
    error names ``limits.max_bytes_setting``."""
    with naming((PayloadTooLargeError, limits.max_bytes_setting)):
        if is_url(value.strip()):
            return await fetch_bytes(value.strip(), limits, what=what)
        return decode_base64_or_data_uri(value, max_bytes=limits.max_bytes, what=what)


def decode_base64_or_data_uri(value: str, *, max_bytes: int, what: str = "input") -> bytes:
    """Decode ``data:<mime>;base64,<payload>`` or raw base64 (standard or URL-safe; whitespace ignored)."""
    text = value.strip()
    if text.startswith("data:"):
        header, sep, payload = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise UnprocessableError(
                f"{what}: a data URI must look like 'data:<mime type>;base64,<data>', got {header[:40]!r}",
                code="invalid_base64",
            )
        text = payload
    text = "".join(text.split())
    if not text:
        raise UnprocessableError(f"{what}: empty value; expected base64 data, a data URI or a URL", code="empty_input")
    # 4 base64 characters carry 3 bytes: refuse before decoding anything huge.
    if len(text) // 4 * 3 > max_bytes + 3:
        raise PayloadTooLargeError(
            f"{what}: decoded data would be about {len(text) // 4 * 3} bytes, above the limit of {max_bytes}"
        )
    try:
        if "-" in text or "_" in text:
            data = base64.urlsafe_b64decode(_pad(text))
        else:
            data = base64.b64decode(_pad(text), validate=True)
    except (binascii.Error, ValueError):
        raise UnprocessableError(
            f"{what}: not valid base64 (expected base64 data, a data URI or an http(s) URL)",
            code="invalid_base64",
        ) from None
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"{what}: {len(data)} bytes, more than the limit of {max_bytes}")
    return data


def _pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Exact host match, or a ``.domain`` entry matching the domain and its subdomains (case-insensitive)."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("."):
            if host == entry[1:] or host.endswith(entry):
                return True
        elif host == entry:
            return True
    return False


def check_address(address: str) -> None:
    """Raise URLNotAllowedError unless ``address`` is a globally routable unicast IP.

    Every address family the resolver can return is covered: IPv4; IPv6 including IPv4-mapped
    (``::ffff:a.b.c.d``), 6to4 (``2002::/16``, the embedded IPv4 is checked too), Teredo, NAT64, site-local
    (``fec0::/10``, deprecated) and zone-scoped (``fe80::1%eth0``) forms.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            candidates = [ip.ipv4_mapped]
        if ip.sixtofour is not None:
            candidates.append(ip.sixtofour)
        if ip.teredo is not None:
            candidates.extend(ip.teredo)
        if ip.is_site_local:
            candidates.append(ipaddress.ip_address("::1"))  # treat as non-global
    for candidate in candidates:
        if not candidate.is_global or candidate.is_multicast or candidate.is_reserved or candidate.is_unspecified:
            raise URLNotAllowedError(
                f"remote URL resolves to {ip}, a private, loopback, link-local or reserved address; refused"
            )


MAX_URL_CHARS = 8192  # longer than any real media URL; refused before it is parsed
_MAX_HOST_CHARS = 253  # RFC 1035: a DNS name is at most 253 characters, each label at most 63
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


@dataclass(frozen=True, slots=True)
class URLParts:
    """A URL that passed :func:`parse_url`: lower-case scheme, host (IDNA-encoded, no brackets) and port."""

    scheme: str
    host: str
    port: int


def _invalid_url(url: str, what: str, problem: str) -> UnprocessableError:
    shown = url if len(url) <= 120 else url[:100] + f"... ({len(url)} characters)"
    return UnprocessableError(
        f"{what}: invalid URL {shown!r}: {problem}; send an absolute http(s) URL such as "
        "'https://example.com/page.png', or the data as base64 or a data URI",
        code="invalid_url",
    )


def _checked_host(host: str) -> str:
    """The host as it goes on the wire (IDNA ASCII) or ValueError naming what is wrong with it."""
    if len(host) > _MAX_HOST_CHARS:
        raise ValueError(f"the host has {len(host)} characters, more than {_MAX_HOST_CHARS}")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("the host is not a valid domain name") from None
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > _MAX_HOST_CHARS or not all(_LABEL.match(label) for label in labels):
        raise ValueError(
            "the host is not a valid domain name (labels of 1-63 letters, digits or '-', at most 253 characters)"
        )
    return ascii_host


def parse_url(url: str, *, what: str = "input") -> URLParts:
    """Parse and validate ``url`` before anything uses it; a malformed one is a 422 ``invalid_url``."""
    if len(url) > MAX_URL_CHARS:
        raise _invalid_url(url, what, f"longer than {MAX_URL_CHARS} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise _invalid_url(url, what, "it contains a space or a control character (percent-encode them)")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", "Port could not be cast ..."
        raise _invalid_url(url, what, str(exc)) from None
    scheme = parts.scheme.lower()
    if not host:
        raise _invalid_url(url, what, "it has no host")
    if port == 0:
        raise _invalid_url(url, what, "port 0 is not a port to connect to (use 1-65535)")
    try:
        wire_host = _checked_host(host)
    except ValueError as exc:
        raise _invalid_url(url, what, str(exc)) from None
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _invalid_url(url, what, str(exc)) from None
    return URLParts(scheme, wire_host, port or (443 if scheme == "https" else 80))


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DownloadError(f"cannot resolve host {host!r}: {exc.strerror or exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _checked_target(url: str, limits: MediaLimits, what: str) -> tuple[httpx.URL, str, str]:
    """Validate one URL and return (URL with the checked IP as host, original host, scheme)."""
    scheme = url.partition(":")[0].lower()  # before parsing: a file:// or ftp:// URL is refused as such
    if scheme not in ("http", "https"):
        raise URLNotAllowedError(f"{what}: only http(s) URLs can be fetched, got scheme {scheme!r}")
    parts = parse_url(url, what=what)
    if not limits.allow_remote_urls:
        raise RemoteURLDisabledError(
            f"{what}: remote URLs are disabled on this server; send the data as base64 or a data URI "
            "(or start the server with JEV4_ALLOW_REMOTE_URLS=1)"
        )
    host, port = parts.host, parts.port
    if limits.allowed_hosts and not host_allowed(host, limits.allowed_hosts):
        raise URLNotAllowedError(f"{what}: host {host!r} is not in the server's allowed URL hosts")
    addresses = await _resolve(host, port)
    if not addresses:
        raise DownloadError(f"{what}: host {host!r} has no address")
    if not limits.allow_private_addresses:
        for address in addresses:
            check_address(address)
    pinned = httpx.URL(url).copy_with(host=addresses[0])
    return pinned, host, scheme


async def fetch_bytes(url: str, limits: MediaLimits, *, what: str = "input") -> bytes:
    """Download ``url`` under ``limits`` (see the module doc); errors are ServiceErrors naming the cause."""
    try:
        async with asyncio.timeout(limits.timeout_s):
            return await _fetch(url, limits, what)
    except TimeoutError:
        raise DownloadError(
            f"{what}: download took longer than {limits.timeout_s} s (JEV4_DOWNLOAD_TIMEOUT_S)"
        ) from None


async def _fetch(url: str, limits: MediaLimits, what: str) -> bytes:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=limits.timeout_s) as client:
        for _hop in range(limits.max_redirects + 1):
            target, host, scheme = await _checked_target(url, limits, what)
            headers = {"Host": _host_header(url), "User-Agent": "jev4-serve"}
            extensions = {"sni_hostname": host} if scheme == "https" else {}
            request = client.build_request("GET", target, headers=headers, extensions=extensions)
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise DownloadError(f"{what}: cannot fetch {host!r}: {type(exc).__name__}") from None
            async with _closing(response):
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise DownloadError(f"{what}: redirect without a Location header")
                    try:
                        url = urljoin(url, location)
                    except ValueError:
                        raise DownloadError(f"{what}: redirect to a malformed URL {location[:200]!r}") from None
                    continue
                if response.status_code != 200:
                    raise DownloadError(f"{what}: {host!r} answered HTTP {response.status_code}")
                return await _read_limited(response, limits.max_bytes, what)
    raise DownloadError(f"{what}: more than {limits.max_redirects} redirects (JEV4_MAX_REDIRECTS)")


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1]


class _closing:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response

    async def __aenter__(self) -> httpx.Response:
        return self.response

    async def __aexit__(self, *exc: object) -> None:
        await self.response.aclose()


async def _read_limited(response: httpx.Response, max_bytes: int, what: str) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"{what}: download of {declared} bytes, more than the limit of {max_bytes}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLargeError(f"{what}: download exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def wrong_kind(what: str, exc: NotAnImageError, instead: dict[str, str]) -> UnsupportedMediaTypeError:
    """415 for bytes given as an image that are not one: names the input (``what``), says what the bytes look
    like and what to send instead (``instead[exc.looks_like]``, e.g. ``{"pdf": 'send it as {"pdf": ...}'}``)."""
    _name, _sep, description = str(exc).partition("the bytes look like ")
    hint = instead.get(exc.looks_like, "send a PNG, JPEG, WebP, GIF, BMP or TIFF image")
    return UnsupportedMediaTypeError(
        f"{what}: not an image: the bytes look like {description or exc.looks_like}; {hint}",
        code="pdf_sent_as_image" if exc.looks_like == "pdf" else "invalid_image",
    )
