"""Webhooks: requests to `/hooks/<plugin>/<path>` on the daemon's HTTP server, given to
`Plugin.on_webhook` when the plugin's grants say `webhooks = true`. The daemon asks no
token of webhook callers (GitHub, Slack and home devices cannot send one), so a plugin
checks who sent a request with the functions here before it acts on it:

- `verify_github`: GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the body).
- `verify_slack`: Slack's signing secret (`X-Slack-Signature` over `v0:timestamp:body`,
  with the timestamp at most five minutes off, so an old request cannot be replayed).
- `verify_hmac_sha256`: any sender that puts a hex HMAC-SHA256 of the body in a header.

Each compares in constant time and raises a `SignatureError` saying why it refused. Keep
the shared secret in `roost.secrets`, not in config:

    def on_webhook(self, request):
        try:
            webhook.verify_github(secrets.get("github_webhook_secret"), request)
        except webhook.SignatureError as e:
            return webhook.Response.text(str(e), status=401)
        ...
        return webhook.Response.ok()
"""

from __future__ import annotations

import hashlib
import hmac
import json as _json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Union

from . import clock

#: How far a Slack request's timestamp may be from now, in seconds (Slack's own advice).
SLACK_WINDOW_SECS = 5 * 60

_HEX = frozenset("0123456789abcdefABCDEF")

Headers = Union[Mapping[str, str], Iterable[tuple[str, str]]]


def _header_list(headers: Headers) -> list[tuple[str, str]]:
    """Headers given as a dict or as pairs, as a list of pairs."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), str(v)) for k, v in pairs]


def _as_bytes(data: Union[bytes, bytearray, str]) -> bytes:
    """A body or a secret given as text or bytes, as bytes (text as UTF-8)."""
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


@dataclass
class Request:
    """A webhook as the host read it: the whole body, at most the plugin's `webhook_kb`.
    Build one by hand in tests: `Request(headers={"X-Hub-Signature-256": sig}, body=b"…")`
    (header names are kept in lowercase, as the host sends them)."""

    method: str = "POST"
    """"POST", the only method the host passes on."""
    path: str = "/"
    """What followed `/hooks/<plugin>` in the URL, starting with `/`."""
    query: str = ""
    """The query string without its `?` ("" when none)."""
    headers: Headers = field(default_factory=list)
    """Every header as `(name, value)` in the order received, names in lowercase."""
    body: Union[bytes, str] = b""
    """The body's bytes."""

    def __post_init__(self) -> None:
        self.headers = [(k.lower(), v) for k, v in _header_list(self.headers)]
        self.body = _as_bytes(self.body)

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of header `name` (any case), or `default`."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), default)

    def text(self) -> str:
        """The body as UTF-8; raises `UnicodeDecodeError` (a `ValueError`) if it is not."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON; raises `ValueError` if it is not JSON."""
        return _json.loads(self.body)


@dataclass
class Response:
    """What the plugin answers: a status, headers and a body, sent to the caller as they
    are. `Response.ok()`, `Response.text("…", status=401)` and `Response.json({...})` make
    the usual ones; `header(name, value)` adds a header and returns the response."""

    status: int = 200
    headers: Headers = field(default_factory=list)
    body: Union[bytes, str] = b""

    def __post_init__(self) -> None:
        self.headers = _header_list(self.headers)
        self.body = _as_bytes(self.body)

    @classmethod
    def ok(cls) -> "Response":
        """`200 OK` with an empty body."""
        return cls(200)

    @classmethod
    def text(cls, text: str, status: int = 200) -> "Response":
        """A plain-text body (with a trailing newline, for people reading it in a
        terminal)."""
        body = text if text.endswith("\n") else text + "\n"
        return cls(status, [("content-type", "text/plain; charset=utf-8")], body)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> "Response":
        """A JSON body."""
        return cls(status, [("content-type", "application/json")], _json.dumps(value))

    @classmethod
    def not_found(cls) -> "Response":
        """`404`: what a plugin that takes no webhooks answers (the default hook)."""
        return cls.text("this plugin takes no webhooks here", status=404)

    def header(self, name: str, value: str) -> "Response":
        """Adds a header; returns the response, for chaining."""
        self.headers.append((name, value))
        return self


class SignatureError(Exception):
    """Why a request's signature was not accepted; `str(e)` says it in words fit for a 401
    body, `reason` in one word ("missing", "malformed", "stale", "mismatch")."""

    reason = ""


class MissingSignature(SignatureError):
    """The header carrying the signature (or Slack's timestamp) is absent."""

    reason = "missing"

    def __init__(self, header: str):
        super().__init__(f"no {header} header")
        self.header = header


class MalformedSignature(SignatureError):
    """The header is there but not in the sender's format."""

    reason = "malformed"

    def __init__(self, header: str):
        super().__init__(f"the {header} header is malformed")
        self.header = header


class StaleSignature(SignatureError):
    """Slack's timestamp is more than `SLACK_WINDOW_SECS` from now: a replay, or a clock
    far off."""

    reason = "stale"

    def __init__(self, timestamp: int, now: int):
        super().__init__(f"the request's timestamp {timestamp} is more than "
                         f"{SLACK_WINDOW_SECS} s from now ({now})")
        self.timestamp, self.now = timestamp, now


class SignatureMismatch(SignatureError):
    """The signature does not match the body and the secret."""

    reason = "mismatch"

    def __init__(self) -> None:
        super().__init__("the signature does not match")


def verify_github(secret: Union[str, bytes], request: Request) -> None:
    """Checks GitHub's `X-Hub-Signature-256: sha256=<hex>` against the body and `secret`
    (the webhook's "Secret" in GitHub's settings). Raises `SignatureError`."""
    header = "x-hub-signature-256"
    value = _required(request, header)
    if not value.startswith("sha256="):
        raise MalformedSignature(header)
    _check(secret, [request.body], value[len("sha256="):], header)


def verify_slack(secret: Union[str, bytes], request: Request, now: Optional[float] = None) -> None:
    """Checks Slack's `X-Slack-Signature: v0=<hex>` over `v0:<timestamp>:<body>` with the
    app's signing secret, and that `X-Slack-Request-Timestamp` is within
    `SLACK_WINDOW_SECS` of `now` (default: `roost.clock.now()`). Raises `SignatureError`."""
    stamp_header, sig_header = "x-slack-request-timestamp", "x-slack-signature"
    stamp = _required(request, stamp_header).strip()
    if not (stamp.isascii() and stamp.isdigit()):
        raise MalformedSignature(stamp_header)
    now_secs = int(clock.now() if now is None else now)
    if abs(int(stamp) - now_secs) > SLACK_WINDOW_SECS:
        raise StaleSignature(int(stamp), now_secs)
    value = _required(request, sig_header)
    if not value.startswith("v0="):
        raise MalformedSignature(sig_header)
    _check(secret, [f"v0:{stamp}:".encode(), request.body], value[len("v0="):], sig_header)


def verify_hmac_sha256(secret: Union[str, bytes], request: Request, header: str) -> None:
    """Checks a hex HMAC-SHA256 of the body in header `header` (a `sha256=` prefix is
    allowed), for senders with a shared secret of their own (a home device, a script).
    Raises `SignatureError`."""
    value = _required(request, header).strip()
    if value.startswith("sha256="):
        value = value[len("sha256="):]
    _check(secret, [request.body], value, header)


def sign_hmac_sha256(secret: Union[str, bytes], *parts: Union[str, bytes]) -> str:
    """The hex HMAC-SHA256 of `parts` (joined) under `secret`: what a sender puts in its
    header, for tests and for plugins that sign what they send."""
    mac = hmac.new(_as_bytes(secret), digestmod=hashlib.sha256)
    for part in parts:
        mac.update(_as_bytes(part))
    return mac.hexdigest()


def _required(request: Request, header: str) -> str:
    value = request.header(header)
    if value is None:
        raise MissingSignature(header.lower())
    return value


def _check(secret: Union[str, bytes], parts: list[bytes], signature: str, header: str) -> None:
    """Compares the HMAC of `parts` with the hex `signature`, in constant time."""
    if len(signature) % 2 or not all(c in _HEX for c in signature):
        raise MalformedSignature(header.lower())
    given = bytes.fromhex(signature)
    expected = bytes.fromhex(sign_hmac_sha256(secret, *parts))
    if not hmac.compare_digest(given, expected):
        raise SignatureMismatch()
