"""Outgoing HTTP for `roost.testing.FakeHost`: answers from routes the test adds, and the
daemon's grant checks (`http_hosts` with Spin's `[scheme://]host[:port]` patterns,
`http_private`, `http_response_kb`), so a plugin's use of `roost.http` is tested without
a network. Only `roost.testing` uses it."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Union

from .http import Url, WasiError

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSET: Any = object()


@dataclass
class HttpCall:
    """A request the plugin made (one hop: a redirect followed is a second call)."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    timeout_ms: Optional[int]

    def header(self, name: str) -> Optional[str]:
        """The first value of header `name` (any case)."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class HttpRoute:
    """What the fake server answers for one method and URL: a response, or a wasi:http
    failure such as "ConnectionTimeout" or "ConnectionRefused"."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    failure: Optional[str] = None


@dataclass(frozen=True)
class _Pattern:
    """One `http_hosts` entry, as the daemon reads it."""

    scheme: Optional[str]
    host: str
    port: Optional[str]

    @classmethod
    def parse(cls, text: str) -> "_Pattern":
        scheme, sep, rest = text.strip().rstrip("/").partition("://")
        if not sep:
            scheme, rest = "https", scheme
        host, port = _split_host_port(rest)
        return cls(None if scheme == "*" else scheme.lower(), host.lower(), port)

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.scheme is not None and self.scheme != scheme:
            return False
        if self.port == "*":
            port_ok = True
        elif self.port is None:
            port_ok = _DEFAULT_PORTS.get(scheme) == port
        else:
            port_ok = int(self.port) == port
        if self.host == "*":
            host_ok = True
        elif self.host.startswith("*."):
            suffix = self.host[1:]
            host_ok = host.endswith(suffix) and len(host) > len(suffix)
        else:
            host_ok = host == self.host
        return port_ok and host_ok


def _split_host_port(authority: str) -> tuple[str, Optional[str]]:
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    host, sep, port = authority.rpartition(":")
    return (host, port) if sep else (authority, None)


def _restricted(host: str) -> bool:
    """Whether `host` is a loopback, private or otherwise non-public address. The fake
    resolves nothing: only IP literals and `localhost` names count."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


class FakeHttp:
    """The HTTP half of `FakeHost` (a mixin): `http_add` routes, `http_requests` records,
    `http_send` checks the grants like the daemon and answers."""

    def _init_http(self, hosts: Iterable[str], private: bool, response_kb: int) -> None:
        self.http_hosts = [_Pattern.parse(h) for h in hosts]
        self.http_private = private
        self.http_response_kb = response_kb
        #: (METHOD, url) -> what the fake server answers; see `http_add`.
        self.http_routes: dict[tuple[str, str], HttpRoute] = {}
        #: Every request that got past the grants, in order.
        self.http_requests: list[HttpCall] = []

    def http_add(self, url: str, body: Union[bytes, str] = b"", *, status: int = 200,
                 headers: Iterable[tuple[str, str]] = (), json_body: Any = _UNSET,
                 method: str = "GET", failure: Optional[str] = None) -> None:
        """Makes `method url` answer `status`, `headers` and `body` (or `json_body`, sent
        as JSON), every time; or fail with wasi:http error `failure` ("ConnectionTimeout",
        "ConnectionRefused", …). A redirect is a 3xx with a `location` header."""
        headers = list(headers)
        if json_body is not _UNSET:
            body = json.dumps(json_body)
            headers.append(("content-type", "application/json"))
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.http_routes[(method.upper(), url)] = HttpRoute(status, headers, data, failure)

    def http_send(self, method: str, url: Url, headers: list[tuple[str, str]], body: bytes,
                  timeout_ms: Optional[int]) -> tuple[int, list[tuple[str, str]], bytes]:
        self._http_check(url)
        full = f"{url.scheme}://{url.authority}{url.path}"
        self.http_requests.append(HttpCall(method, full, list(headers), body, timeout_ms))
        route = self.http_routes.get((method, full)) or self.http_routes.get((method, full.rstrip("/")))
        if route is None:
            return 404, [], f"FakeHost: no response added for {method} {full} (http_add)".encode()
        if route.failure:
            raise WasiError(route.failure)
        cap = self.http_response_kb * 1024
        if len(route.body) > cap:
            raise WasiError("HttpResponseBodySize", cap)
        return route.status, list(route.headers), route.body

    def _http_check(self, url: Url) -> None:
        """The daemon's checks: an entry must match; a private address also needs
        `http_private` and an entry naming the host exactly."""
        host, port = _split_host_port(url.authority)
        host = host.lower().rstrip(".")
        number = int(port) if port else _DEFAULT_PORTS[url.scheme]
        entry = next((p for p in self.http_hosts if p.matches(url.scheme, host, number)), None)
        if entry is None:
            raise WasiError("HttpRequestDenied")
        if _restricted(host) and not (self.http_private and entry.host == host):
            raise WasiError("DestinationIpProhibited")
