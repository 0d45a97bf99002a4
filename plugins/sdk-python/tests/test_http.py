"""roost.http on the fake host: requests as built, responses read, redirects followed with
each hop checked against the grants again, and every failure as the SDK's exception."""

import pytest

from roost import (AccessDenied, DecodeError, InvalidArgument, Other, Plugin, Prohibited,
                   StatusError, Timeout, TooLarge, TooManyRedirects, Unreachable, command, http)
from roost.testing import FakeHost, PluginTest

API = "https://api.example.com"


def on_host(**grants):
    """A plugin test whose host has `grants`; the test adds routes to `t.host`."""
    grants.setdefault("http_hosts", ["api.example.com"])
    return PluginTest(Plugin, host=FakeHost(**grants))


# -- urls --

def test_urls_split_into_scheme_authority_and_path():
    assert http.parse_url("https://h.test:1/a?b") == http.Url(True, "h.test:1", "/a?b")
    assert http.parse_url("http://h.test").path == "/"
    assert http.parse_url("HTTP://h.test?q=1#frag").path == "/?q=1"
    for bad in ("ftp://h", "h.test/x", "http://", "http://user@h.test/"):
        with pytest.raises(InvalidArgument):
            http.parse_url(bad)


def test_redirect_locations_are_made_absolute():
    base = "http://a.test:8080/feed/x?y=1"
    assert http.resolve(base, "https://b.test/z") == "https://b.test/z"
    assert http.resolve(base, "/z") == "http://a.test:8080/z"
    assert http.resolve(base, "z") == "http://a.test:8080/feed/z"
    assert http.resolve(base, "//c.test/") == "http://c.test/"


# -- requests and responses --

def test_get_returns_status_headers_and_a_body_read_as_text_or_json():
    with on_host() as t:
        t.host.http_add(f"{API}/feed", json_body=[{"id": "m1"}], headers=[("X-Page", "1")])
        r = http.get(f"{API}/feed")
        assert (r.status, r.ok, r.url) == (200, True, f"{API}/feed")
        assert r.header("x-page") == "1" and r.header("Content-Type") == "application/json"
        assert r.json() == [{"id": "m1"}] and r.text() == '[{"id": "m1"}]'
        assert r.raise_for_status() is r
        assert [(c.method, c.url, c.body) for c in t.host.http_requests] == [("GET", f"{API}/feed", b"")]


def test_the_builder_sends_method_headers_json_and_timeout():
    with on_host() as t:
        t.host.http_add(f"{API}/seen", method="PUT", status=204)
        r = (http.Request("put", f"{API}/seen").header("Authorization", "Bearer k")
             .json({"id": "42"}).timeout(2.5).send())
        assert r.status == 204
        call = t.host.http_requests[0]
        assert (call.method, call.body, call.timeout_ms) == ("PUT", b'{"id": "42"}', 2500)
        assert call.header("authorization") == "Bearer k"
        assert call.header("content-type") == "application/json"
        http.post(f"{API}/seen", "text body", headers={"X-A": "b"})
        assert t.host.http_requests[1].body == b"text body"
        assert t.host.http_requests[1].header("x-a") == "b"


def test_a_status_is_not_an_error_until_raise_for_status_and_bad_bodies_raise_decode_error():
    with on_host() as t:
        t.host.http_add(f"{API}/fail", "boom", status=500)
        t.host.http_add(f"{API}/garbage", b"\xff{not json")
        r = http.get(f"{API}/fail")
        assert (r.status, r.ok, r.text()) == (500, False, "boom")
        with pytest.raises(StatusError) as e:
            r.raise_for_status()
        assert (str(e.value), e.value.status, e.value.response) == (f"HTTP 500: {API}/fail", 500, r)
        garbage = http.get(f"{API}/garbage")
        with pytest.raises(DecodeError, match="JSON"):
            garbage.json()
        with pytest.raises(ValueError):
            garbage.text()


# -- grants --

def test_an_ungranted_host_scheme_or_port_is_denied_and_never_reaches_the_server():
    with on_host() as t:
        for url in ("https://other.example.com/", "http://api.example.com/", "https://api.example.com:8443/"):
            with pytest.raises(AccessDenied, match="http_hosts"):
                http.get(url)
        assert t.host.http_requests == []


def test_host_patterns_follow_the_daemons_rules():
    with on_host(http_hosts=["*.example.org", "http://h.test:*", "*://any.test"]) as t:
        for url in ("https://a.example.org/", "http://h.test:81/", "http://any.test/", "https://any.test/"):
            assert http.get(url).status == 404  # reached the fake server: no route added
        for url in ("https://example.org/", "https://h.test:81/", "https://any.test:444/"):
            with pytest.raises(AccessDenied):
                http.get(url)
        assert len(t.host.http_requests) == 4


def test_private_addresses_need_http_private_and_an_exact_entry():
    with on_host(http_hosts=["http://127.0.0.1:8080", "http://localhost:8080", "http://*:9"]) as t:
        with pytest.raises(Prohibited, match="http_private"):
            http.get("http://127.0.0.1:8080/feed")
        with pytest.raises(Prohibited):
            http.get("http://localhost:8080/feed")
    with on_host(http_hosts=["http://127.0.0.1:8080", "http://*:9"], http_private=True) as t:
        t.host.http_add("http://127.0.0.1:8080/feed", json_body=[])
        assert http.get("http://127.0.0.1:8080/feed").json() == []
        with pytest.raises(Prohibited):  # a wildcard entry is not enough
            http.get("http://10.0.0.1:9/")
    assert issubclass(Prohibited, AccessDenied)


# -- redirects --

def test_redirects_are_followed_and_each_hop_is_checked_again():
    with on_host(http_hosts=["api.example.com", "cdn.example.com"]) as t:
        t.host.http_add(f"{API}/moved", status=301, headers=[("Location", "/feed")])
        t.host.http_add(f"{API}/feed", json_body=["ok"])
        t.host.http_add(f"{API}/away", status=302, headers=[("location", "https://evil.test/x")])
        t.host.http_add(f"{API}/cdn", status=307, headers=[("location", "https://cdn.example.com/f")])
        t.host.http_add("https://cdn.example.com/f", "x")
        r = http.get(f"{API}/moved")
        assert (r.json(), r.url) == (["ok"], f"{API}/feed")
        with pytest.raises(AccessDenied):
            http.get(f"{API}/away")
        assert http.Request("GET", f"{API}/away").follow_redirects(False).send().status == 302
        http.Request("GET", f"{API}/cdn").header("authorization", "k").header("x-k", "v").send()
        hop = t.host.http_requests[-1]
        assert hop.url == "https://cdn.example.com/f"
        assert hop.header("authorization") is None and hop.header("x-k") == "v"


def test_a_post_redirected_by_303_or_302_turns_into_a_get_without_a_body_and_307_keeps_it():
    with on_host() as t:
        t.host.http_add(f"{API}/form", method="POST", status=303, headers=[("location", "/done")])
        t.host.http_add(f"{API}/keep", method="POST", status=307, headers=[("location", "/form2")])
        t.host.http_add(f"{API}/done", "done")
        t.host.http_add(f"{API}/form2", "kept", method="POST")
        assert http.post(f"{API}/form", "a=1").text() == "done"
        assert [(c.method, c.body) for c in t.host.http_requests] == [("POST", b"a=1"), ("GET", b"")]
        assert http.post(f"{API}/keep", "b=2").text() == "kept"
        assert (t.host.http_requests[-1].method, t.host.http_requests[-1].body) == ("POST", b"b=2")


def test_a_redirect_loop_ends_with_too_many_redirects():
    with on_host() as t:
        t.host.http_add(f"{API}/loop", status=302, headers=[("location", "/loop")])
        with pytest.raises(TooManyRedirects):
            http.get(f"{API}/loop")
        assert len(t.host.http_requests) == http.MAX_REDIRECTS + 1


# -- failures --

@pytest.mark.parametrize("failure, exc, words", [
    ("ConnectionTimeout", Timeout, "timeout"),
    ("HttpResponseTimeout", Timeout, "timeout"),
    ("ConnectionRefused", Unreachable, "ConnectionRefused"),
    ("ConnectionLimitReached", Other, "http_requests_per_minute"),
    ("TlsCertificateError", Other, "TlsCertificateError"),
])
def test_wasi_http_failures_become_the_sdks_exceptions(failure, exc, words):
    with on_host() as t:
        t.host.http_add(f"{API}/x", failure=failure)
        with pytest.raises(exc, match=words) as e:
            http.get(f"{API}/x")
        assert f"{API}/x" in str(e.value)


def test_a_body_over_http_response_kb_is_too_large():
    with on_host(http_response_kb=1) as t:
        t.host.http_add(f"{API}/huge", b"x" * 1025)
        with pytest.raises(TooLarge, match="over 1024 bytes .http_response_kb."):
            http.get(f"{API}/huge")


class Feed(Plugin):
    """A command that fetches a feed: what an uncaught HTTP failure looks like in chat."""

    @command(help="count entries")
    def feed(self, ctx, url: str):
        return f"{len(http.get(url).raise_for_status().json())} entries"


def test_uncaught_http_errors_are_answered_with_one_line_like_a_rust_plugins():
    host = FakeHost(http_hosts=["api.example.com"])
    host.http_add(f"{API}/feed", json_body=[1, 2])
    host.http_add(f"{API}/fail", status=500)
    with PluginTest(Feed, host=host) as t:
        assert t.command(f"!feed {API}/feed") == "2 entries"
        assert t.command(f"!feed {API}/fail") == f"HTTP 500: {API}/fail"
        assert t.command("!feed https://evil.test/").startswith("access denied: https://evil.test/")
