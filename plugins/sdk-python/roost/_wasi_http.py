"""One outgoing HTTP request over `wasi:http/outgoing-handler`, blocking, as componentize-py
binds it: what `roost._wit.WitHost.http_send` does for `roost.http`. Like `_wit`, it touches
the generated bindings and exists only inside the component.

Every resource is owned here and released in order, children before parents (a body's
stream before the body, a future's pollable before the future, a response's headers and
body before the response): left to the garbage collector, a parent can go first and the
component traps ("resource has children") later, in some unrelated call. Resources that
a call takes over (the request, its options, a finished body) are not released again.
No threads and no event loop: `pollable.block()` waits for the response.
"""

from __future__ import annotations

from typing import Any, Optional

from componentize_py_types import Err
from wit_world.imports import outgoing_handler, streams
from wit_world.imports import wasi_http_types as wasi

from .errors import InvalidArgument, Other
from .http import Url, WasiError

#: Bytes per `blocking_write_and_flush`: wasi:io takes at most 4,096 (more traps).
WRITE_CHUNK = 4096
#: Bytes asked for per read of the response body.
READ_CHUNK = 64 * 1024

_METHODS = {
    "GET": wasi.Method_Get, "HEAD": wasi.Method_Head, "POST": wasi.Method_Post,
    "PUT": wasi.Method_Put, "DELETE": wasi.Method_Delete, "PATCH": wasi.Method_Patch,
    "OPTIONS": wasi.Method_Options,
}


def send(method: str, url: Url, headers: list[tuple[str, str]], body: bytes,
         timeout_ms: Optional[int]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Sends one request and reads the whole response: (status, headers, body). Raises
    `WasiError` for wasi:http's errors, `InvalidArgument` for headers it refuses."""
    request = _request(method, url, headers)
    out_body = request.body()
    try:
        future = outgoing_handler.handle(request, _options(timeout_ms))
    except Err as e:
        _drop(out_body)
        raise _wasi_error(e.value) from None
    # `handle` first, then the body: writing more than a chunk before it would block.
    try:
        _write_or_explain(future, out_body, body)
        response = _await(future)
    finally:
        _drop(future)
    try:
        return _read(response)
    finally:
        _drop(response)


def _drop(resource: Any) -> None:
    """Releases a resource now."""
    resource.__exit__(None, None, None)


def _request(method: str, url: Url, headers: list[tuple[str, str]]) -> Any:
    try:
        fields = wasi.Fields.from_list([(k.lower(), v.encode("utf-8")) for k, v in headers])
    except Err as e:
        raise InvalidArgument(f"headers: {type(e.value).__name__.split('_')[-1]}") from None
    request = wasi.OutgoingRequest(fields)
    kind = _METHODS.get(method)
    try:
        request.set_method(kind() if kind else wasi.Method_Other(method))
        request.set_scheme(wasi.Scheme_Https() if url.https else wasi.Scheme_Http())
        request.set_authority(url.authority)
        request.set_path_with_query(url.path)
    except Err:
        _drop(request)
        raise InvalidArgument(f"bad method, host or path: {method} {url.scheme}://{url.authority}{url.path}") from None
    return request


def _options(timeout_ms: Optional[int]) -> Any:
    """Request options with every timeout at `timeout_ms` (the host treats them as bounds
    on the whole request), or None for the host's own."""
    if timeout_ms is None:
        return None
    options = wasi.RequestOptions()
    nanos = timeout_ms * 1_000_000
    for setter in (options.set_connect_timeout, options.set_first_byte_timeout,
                   options.set_between_bytes_timeout):
        try:
            setter(nanos)
        except Err:
            pass
    return options


def _write(out_body: Any, data: bytes) -> None:
    """Writes the request body in chunks and finishes it (which takes the body over)."""
    stream = out_body.write()
    try:
        for start in range(0, len(data), WRITE_CHUNK):
            stream.blocking_write_and_flush(data[start:start + WRITE_CHUNK])
    except Err as e:
        _drop(stream)
        _drop(out_body)
        raise _stream_error(e.value) from None
    _drop(stream)
    try:
        wasi.OutgoingBody.finish(out_body, None)
    except Err as e:
        raise _wasi_error(e.value) from None


def _write_or_explain(future: Any, out_body: Any, data: bytes) -> None:
    """`_write`; when the host has refused the request meanwhile (it checks the grant once
    `handle` has returned), the body stream just breaks: the refusal is in the response,
    so it is raised instead of the stream's error."""
    try:
        _write(out_body, data)
    except WasiError:
        _drop(_await(future))
        raise


def _await(future: Any) -> Any:
    """Blocks until the response's head arrives; the incoming response."""
    pollable = future.subscribe()
    try:
        pollable.block()
    finally:
        _drop(pollable)
    ready = future.get()
    if ready is None or isinstance(ready, Err):
        raise Other("the response was not ready, or taken twice")
    if isinstance(ready.value, Err):
        raise _wasi_error(ready.value.value)
    return ready.value.value


def _read(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    status = response.status()
    fields = response.headers()
    try:
        headers = [(k, v.decode("utf-8", "replace")) for k, v in fields.entries()]
    finally:
        _drop(fields)
    try:
        body = response.consume()
    except Err:
        raise Other("the response body was taken twice") from None
    return status, headers, _read_body(body)


def _read_body(body: Any) -> bytes:
    """Reads the body to its end and finishes it (which takes the body over)."""
    stream = body.stream()
    try:
        data = _drain(stream)
    except BaseException:
        _drop(stream)
        _drop(body)
        raise
    _drop(stream)
    _drop(wasi.IncomingBody.finish(body))
    return data


def _drain(stream: Any) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(stream.blocking_read(READ_CHUNK))
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                return b"".join(chunks)
            raise _stream_error(e.value) from None


def _wasi_error(code: Any) -> WasiError:
    """A wasi:http `error-code` as `WasiError("HttpRequestDenied")`, payload as detail."""
    return WasiError(type(code).__name__.removeprefix("ErrorCode_"), getattr(code, "value", None))


def _stream_error(error: Any) -> WasiError:
    """A stream's error: the HTTP error behind it when there is one."""
    if isinstance(error, streams.StreamError_Closed):
        return WasiError("StreamClosed")
    io_error = error.value
    try:
        code = wasi.http_error_code(io_error)
        return _wasi_error(code) if code is not None else _from_text(io_error.to_debug_string())
    finally:
        _drop(io_error)


#: How wasmtime-wasi-http 48 words the errors a response body can end with. It keeps them
#: as its own error type, which `http-error-code` does not recognise, so the text is all
#: that reaches the plugin (measured: a body over `http_response_kb` with no
#: Content-Length). Unknown texts stay a "StreamError" (an `Other`).
_STREAM_TEXTS = (
    ("HTTP response body size exceeds limit", "HttpResponseBodySize"),
    ("connection read timeout", "ConnectionReadTimeout"),
    ("HTTP response timeout", "HttpResponseTimeout"),
    ("connection terminated", "ConnectionTerminated"),
    ("incomplete HTTP response", "HttpResponseIncomplete"),
)


def _from_text(text: str) -> WasiError:
    """A stream error known only by its text, as the error code it names."""
    for start, code in _STREAM_TEXTS:
        if start in text:
            if code == "HttpResponseBodySize":
                size = text.rsplit(": ", 1)[-1].split(" ", 1)[0]
                return WasiError(code, int(size) if size.isdigit() else None)
            return WasiError(code)
    return WasiError("StreamError", text)
