"""Why a call failed: the host's refusals as exceptions, and a command's bad usage."""

from __future__ import annotations


class HostError(Exception):
    """A capability call the host refused. `str(e)` is the host's message, spelt as the Rust
    SDK spells it ("access denied: channel `x` is not granted"), and `reason` the part after
    the kind. Uncaught in a command, it is answered as that one line, like a Rust plugin's
    `?`."""

    kind = ""
    #: Whether asking again may help (a timeout, an unreachable server).
    transient = False

    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        if not self.kind:
            return self.reason
        return f"{self.kind}: {self.reason}" if self.reason else self.kind


class AccessDenied(HostError):
    """The plugin's grants do not allow the call; the reason says what is missing."""

    kind = "access denied"


class NotFound(HostError):
    """The named thing does not exist (an unknown timer id, a reset cursor)."""

    kind = "not found"


class InvalidArgument(HostError):
    """An argument is malformed."""

    kind = "invalid argument"


class TooLarge(HostError):
    """A size limit or quota was exceeded; nothing of the call took effect."""

    kind = "too large"


class Other(HostError):
    """Anything else; the detail is in the host's log."""


class Timeout(HostError):
    """No answer in time: a DNS server (after the host's retries; never an empty answer),
    or an HTTP request past its timeout or `http_timeout_ms`. Asking again may help."""

    kind = "timeout"
    transient = True


class Unreachable(HostError):
    """A DNS or HTTP server could not be reached (connection refused, network
    unreachable). Asking again may help."""

    kind = "unreachable"
    transient = True


class Prohibited(AccessDenied):
    """An HTTP request to a granted name that resolves to a loopback, private or
    link-local address, which needs `http_private = true` and an exact `http_hosts` entry.
    An `AccessDenied`, so one `except` covers every refusal."""

    kind = "refused"


class TooManyRedirects(Other):
    """An HTTP request was redirected more than `roost.http.MAX_REDIRECTS` times."""

    kind = "too many redirects"


class DecodeError(HostError, ValueError):
    """A response body is not the text or JSON asked for. Also a `ValueError`, like what
    `json.loads` raises."""

    kind = "cannot decode"


class StatusError(HostError):
    """What `roost.http.Response.raise_for_status` raises for a status outside 2xx:
    `status`, `url` and the whole `response` are kept. Uncaught in a command it is answered
    as "HTTP 500: <url>", the line a Rust plugin's `error_for_status()?` gives."""

    def __init__(self, status: int, url: str, response: object = None):
        super().__init__(url)
        self.status, self.url, self.response = status, url, response

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.url}"


class UsageError(Exception):
    """A command was called with arguments that do not fit its signature. Raised by the SDK
    before the method runs (a plugin may raise it too); answered as "usage: !cmd ..."."""
