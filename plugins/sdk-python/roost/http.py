"""Outgoing HTTP, blocking, over the standard `wasi:http/outgoing-handler`.

    from roost import http

    entries = http.get("https://api.example.com/feed").raise_for_status().json()
    http.Request("POST", "https://api.example.com/seen").json({"id": "42"}).timeout(5).send()

Every request must be granted: `[plugins.NAME.grants] http_hosts = ["api.example.com",
"https://*.example.org:8443"]`. The host refuses anything else (`AccessDenied`), refuses
loopback and private addresses unless `http_private = true` and an entry names the host
exactly (`Prohibited`, an `AccessDenied` too), and caps each request's time
(`http_timeout_ms`: `Timeout`) and response size (`http_response_kb`: `TooLarge`).

Redirects are followed here, up to `MAX_REDIRECTS`: each hop is a new request that the
host checks against the grant again, so a granted API cannot send the plugin to a host it
was not granted. A status code is not an error: check `Response.status` or call
`raise_for_status()`.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from . import _host
from .errors import (AccessDenied, DecodeError, InvalidArgument, Other, Prohibited,
                     StatusError, Timeout, TooLarge, TooManyRedirects, Unreachable)

#: Redirects followed before `TooManyRedirects`.
MAX_REDIRECTS = 5

_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Url:
    """An absolute http(s) URL split as wasi:http takes it."""

    https: bool
    authority: str
    """host[:port], as written in the URL."""
    path: str
    """The path and query, "/" at least."""

    @property
    def scheme(self) -> str:
        return "https" if self.https else "http"


def parse_url(url: str) -> Url:
    """Splits an absolute http(s) URL; raises `InvalidArgument` for anything else."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise InvalidArgument(f"`{url}` has no scheme")
    if scheme.lower() not in ("http", "https"):
        raise InvalidArgument(f"scheme `{scheme.lower()}`")
    rest = rest.split("#", 1)[0]
    cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0], default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if not authority or "@" in authority:
        raise InvalidArgument(f"`{url}`: bad host")
    if path.startswith("?"):
        path = "/" + path
    return Url(scheme.lower() == "https", authority, path or "/")


def resolve(base: str, location: str) -> str:
    """A redirect's `location` made absolute against the URL that answered."""
    if "://" in location:
        return location
    url = parse_url(base)
    if location.startswith("//"):
        return f"{url.scheme}:{location}"
    if location.startswith("/"):
        return f"{url.scheme}://{url.authority}{location}"
    directory = url.path.split("?", 1)[0].rpartition("/")[0]
    return f"{url.scheme}://{url.authority}{directory}/{location}"


class WasiError(Exception):
    """What a host's `http_send` raises when wasi:http reports an error: `code` names the
    `error-code` case as the bindings' classes do ("HttpRequestDenied",
    "ConnectionTimeout", …), `detail` is its payload. `roost.http` turns it into the
    SDK's exceptions; a fake host raises it to act out a failure."""

    def __init__(self, code: str, detail: Any = None):
        super().__init__(code if detail is None else f"{code}({detail!r})")
        self.code, self.detail = code, detail


_TIMEOUTS = ("ConnectionTimeout", "ConnectionReadTimeout", "ConnectionWriteTimeout",
             "HttpResponseTimeout", "DnsTimeout")
_UNREACHABLE = ("ConnectionRefused", "DestinationUnavailable", "DestinationIpUnroutable")


def _error(url: str, e: WasiError) -> Exception:
    """The SDK's exception for a wasi:http error, worded as the Rust SDK's `HttpError`."""
    if e.code == "HttpRequestDenied":
        return AccessDenied(f"{url}: the host is not in this plugin's http_hosts grant "
                            "(the roost log names the entry to add)")
    if e.code == "DestinationIpProhibited":
        return Prohibited(f"{url}: resolves to a loopback, private or link-local address "
                          "(needs http_private = true and an exact http_hosts entry)")
    if e.code in _TIMEOUTS:
        return Timeout(url)
    if e.code == "HttpResponseBodySize":
        cap = "the cap" if e.detail is None else f"{e.detail} bytes"
        return TooLarge(f"{url}: the response body is over {cap} (http_response_kb)")
    if e.code == "ConnectionLimitReached":
        return Other(f"{url}: too many requests (http_requests_per_minute, http_concurrent)")
    if e.code in _UNREACHABLE:
        return Unreachable(f"{url}: {e}")
    if e.code in ("HttpRequestUriInvalid", "HttpRequestMethodInvalid"):
        return InvalidArgument(f"{url}: {e}")
    return Other(f"{url}: {e}")


@dataclass
class Response:
    """A response, read in full."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    """Every header as `(name, value)`, in order."""
    content: bytes = b""
    """The body's bytes."""
    url: str = ""
    """The URL that answered (after redirects)."""

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of header `name` (any case), or `default`."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), default)

    def raise_for_status(self) -> "Response":
        """The response itself if its status is 2xx, else raises `StatusError`."""
        if not self.ok:
            raise StatusError(self.status, self.url, self)
        return self

    def text(self) -> str:
        """The body as UTF-8; raises `DecodeError` (a `ValueError`) if it is not."""
        try:
            return self.content.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"{self.url}: {e}") from None

    def json(self) -> Any:
        """The body parsed as JSON; raises `DecodeError` (a `ValueError`) if it is not."""
        try:
            return _json.loads(self.content)
        except ValueError as e:
            raise DecodeError(f"JSON: {e}") from None


class Request:
    """A request being built: `Request("PUT", url).header(k, v).body(b"…").timeout(5)`,
    then `send()`. Each builder method returns the request."""

    def __init__(self, method: str, url: str):
        self.method = method.upper()
        self.url = url
        self.headers: list[tuple[str, str]] = []
        self.data = b""
        self.timeout_secs: Optional[float] = None
        self.redirects = True

    def header(self, name: str, value: str) -> "Request":
        """Adds a header."""
        self.headers.append((name, value))
        return self

    def body(self, data: Union[bytes, bytearray, str]) -> "Request":
        """Sets the body (text as UTF-8)."""
        self.data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        return self

    def json(self, value: Any) -> "Request":
        """Sets a JSON body and its content type."""
        return self.header("content-type", "application/json").body(_json.dumps(value))

    def timeout(self, seconds: float) -> "Request":
        """Gives up after `seconds` (the host's `http_timeout_ms` applies too: the shorter
        wins)."""
        self.timeout_secs = seconds
        return self

    def follow_redirects(self, follow: bool) -> "Request":
        """Whether to follow redirects (default: yes, up to `MAX_REDIRECTS`)."""
        self.redirects = follow
        return self

    def send(self) -> Response:
        """Sends the request and reads the whole response, following redirects."""
        method, url, headers, data = self.method, self.url, list(self.headers), self.data
        for _ in range(MAX_REDIRECTS + 1):
            response = _send_once(method, url, headers, data, self.timeout_secs)
            location = response.header("location")
            if not (self.redirects and location and response.status in _REDIRECTS):
                return response
            next_url = resolve(url, location)
            if parse_url(next_url).authority.lower() != parse_url(url).authority.lower():
                # Credentials meant for one server are not handed to the next.
                headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
            url = next_url
            # 303, and 301/302 after a POST, turn into a GET without a body.
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, data = "GET", b""
        raise TooManyRedirects(url)


def _send_once(method: str, url: str, headers: list[tuple[str, str]], data: bytes,
               timeout_secs: Optional[float]) -> Response:
    """One hop through the host."""
    parsed = parse_url(url)
    timeout_ms = None if timeout_secs is None else max(1, int(timeout_secs * 1000))
    try:
        status, got, content = _host.current().http_send(method, parsed, headers, data, timeout_ms)
    except WasiError as e:
        raise _error(url, e) from None
    return Response(status, got, content, url)


def get(url: str, headers: Optional[dict] = None, timeout: Optional[float] = None) -> Response:
    """`GET url`."""
    return _build("GET", url, headers, timeout).send()


def post(url: str, body: Union[bytes, str] = b"", headers: Optional[dict] = None,
         timeout: Optional[float] = None) -> Response:
    """`POST url` with `body`."""
    return _build("POST", url, headers, timeout).body(body).send()


def _build(method: str, url: str, headers: Optional[dict], timeout: Optional[float]) -> Request:
    request = Request(method, url)
    for name, value in (headers or {}).items():
        request.header(name, value)
    if timeout is not None:
        request.timeout(timeout)
    return request
