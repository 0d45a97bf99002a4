"""roost.webhook: requests and responses, the signature checks against GitHub's and Slack's
documented examples, and `on_webhook` as the runtime calls it (exceptions and bad return
values become 500s)."""

import pytest

from roost import Plugin, chat, secrets, webhook
from roost.testing import FakeHost, PluginTest, github_headers, slack_headers
from roost.webhook import (MalformedSignature, MissingSignature, Request, Response,
                           SignatureError, SignatureMismatch, StaleSignature)

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = 1531420618
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)


def slack_request(body=SLACK_BODY, signature=SLACK_SIGNATURE):
    return Request(headers={"X-Slack-Request-Timestamp": str(SLACK_TIMESTAMP),
                            "X-Slack-Signature": signature}, body=body)


# -- requests and responses --

def test_request_headers_are_found_in_any_case_and_the_body_reads_as_text_and_json():
    r = Request(headers=[("Content-Type", "application/json"), ("X-A", "1"), ("x-a", "2")],
                body='{"n": 1}')
    assert r.header("content-type") == r.header("CONTENT-TYPE") == "application/json"
    assert r.header("x-a") == "1"
    assert r.header("missing") is None and r.header("missing", "d") == "d"
    assert r.headers[0] == ("content-type", "application/json")
    assert r.body == b'{"n": 1}' and r.text() == '{"n": 1}' and r.json() == {"n": 1}
    with pytest.raises(ValueError):
        Request(body=b"\xff").text()
    with pytest.raises(ValueError):
        Request(body=b"not json").json()


def test_responses_are_made_by_helpers_and_chain_headers():
    assert (Response.ok().status, Response.ok().body) == (200, b"")
    text = Response.text("no", status=401)
    assert (text.status, text.body, text.headers) == (
        401, b"no\n", [("content-type", "text/plain; charset=utf-8")])
    js = Response.json({"ok": True}).header("x-id", "7")
    assert js.body == b'{"ok": true}' and ("x-id", "7") in js.headers
    assert Response.not_found().status == 404
    assert Response(202, {"a": "b"}, "é").body == "é".encode()


# -- GitHub --

def test_githubs_documented_example_verifies():
    r = Request(headers={"X-Hub-Signature-256": GITHUB_SIGNATURE}, body="Hello, World!")
    webhook.verify_github(GITHUB_SECRET, r)
    webhook.verify_github(GITHUB_SECRET.encode(), r)
    with pytest.raises(SignatureMismatch):
        webhook.verify_github("another secret", r)


def test_github_refuses_a_tampered_body_a_missing_header_and_bad_hex():
    headers = github_headers("k", "body")
    webhook.verify_github("k", Request(headers=headers, body="body"))
    with pytest.raises(SignatureMismatch) as e:
        webhook.verify_github("k", Request(headers=headers, body="bodY"))
    assert (e.value.reason, str(e.value)) == ("mismatch", "the signature does not match")
    with pytest.raises(MissingSignature) as e:
        webhook.verify_github("k", Request(body="body"))
    assert str(e.value) == "no x-hub-signature-256 header" and e.value.reason == "missing"
    for bad in ("sha256=zz", "sha256=abc", "sha1=00", "sha256=ab cd"):
        with pytest.raises(MalformedSignature):
            webhook.verify_github("k", Request(headers={"x-hub-signature-256": bad}, body="body"))
    assert issubclass(MalformedSignature, SignatureError)


# -- Slack --

def test_slacks_documented_example_verifies_inside_the_window_only():
    webhook.verify_slack(SLACK_SECRET, slack_request(), now=SLACK_TIMESTAMP + 60)
    webhook.verify_slack(SLACK_SECRET, slack_request(), now=SLACK_TIMESTAMP - 300)
    with pytest.raises(StaleSignature) as e:
        webhook.verify_slack(SLACK_SECRET, slack_request(), now=SLACK_TIMESTAMP + 301)
    assert e.value.reason == "stale" and e.value.timestamp == SLACK_TIMESTAMP
    with pytest.raises(SignatureMismatch):
        webhook.verify_slack(SLACK_SECRET, slack_request(SLACK_BODY + "&x=1"), now=SLACK_TIMESTAMP)


def test_slack_refuses_missing_and_malformed_headers_and_uses_the_host_clock():
    with pytest.raises(MissingSignature, match="x-slack-request-timestamp"):
        webhook.verify_slack(SLACK_SECRET, Request(body=SLACK_BODY), now=SLACK_TIMESTAMP)
    no_sig = Request(headers={"x-slack-request-timestamp": str(SLACK_TIMESTAMP)}, body="")
    with pytest.raises(MissingSignature, match="x-slack-signature"):
        webhook.verify_slack(SLACK_SECRET, no_sig, now=SLACK_TIMESTAMP)
    with pytest.raises(MalformedSignature):
        webhook.verify_slack(SLACK_SECRET, slack_request(signature="v1=00"), now=SLACK_TIMESTAMP)
    bad_stamp = Request(headers={"x-slack-request-timestamp": "soon", "x-slack-signature": "v0=00"})
    with pytest.raises(MalformedSignature):
        webhook.verify_slack(SLACK_SECRET, bad_stamp, now=SLACK_TIMESTAMP)
    # Without `now`, the host's clock (the fake one here) decides.
    with PluginTest(Plugin) as t:
        now = int(t.host.clock_now_ms() / 1000)
        webhook.verify_slack("s", Request(headers=slack_headers("s", "b", now), body="b"))
        with pytest.raises(StaleSignature):
            webhook.verify_slack("s", Request(headers=slack_headers("s", "b", now - 301), body="b"))


def test_a_generic_header_takes_plain_or_prefixed_hex():
    hexdigest = webhook.sign_hmac_sha256("s", "{}")
    webhook.verify_hmac_sha256("s", Request(headers={"x-signature": hexdigest}, body="{}"), "X-Signature")
    webhook.verify_hmac_sha256("s", Request(headers={"x-signature": "sha256=" + hexdigest}, body="{}"),
                               "x-signature")
    with pytest.raises(SignatureMismatch):
        webhook.verify_hmac_sha256("t", Request(headers={"x-signature": hexdigest}, body="{}"),
                                   "x-signature")
    with pytest.raises(MissingSignature):
        webhook.verify_hmac_sha256("s", Request(body="{}"), "x-signature")


# -- on_webhook through the runtime --

class Hooks(Plugin):
    """Posts GitHub pushes to `announce` once their signature checks out."""

    def on_webhook(self, request):
        try:
            webhook.verify_github(secrets.get("github_webhook_secret"), request)
        except webhook.SignatureError as e:
            return Response.text(str(e), status=401)
        if request.path == "/boom":
            raise RuntimeError("kaboom")
        if request.path == "/bad":
            return "ok"
        if request.path == "/bad-status":
            return Response(70000)
        chat.send("announce", f"pushed: {request.json()['head_commit']}")
        return Response.ok()


def hooks_test():
    return PluginTest(Hooks, host=FakeHost(channels=["announce"],
                                           secrets={"github_webhook_secret": GITHUB_SECRET}))


def test_a_signed_webhook_is_acted_on_and_a_bad_signature_gets_401_and_nothing_sent():
    with hooks_test() as t:
        body = '{"head_commit": "fix"}'
        assert t.webhook(body, github_headers(GITHUB_SECRET, body)).status == 200
        forged = t.webhook('{"head_commit": "EVIL"}', github_headers("guess", '{"head_commit": "EVIL"}'))
        assert (forged.status, forged.body) == (401, b"the signature does not match\n")
        assert t.webhook(body).status == 401
        assert t.host.sent_text() == [("announce", "pushed: fix")]


def test_an_exception_and_a_bad_return_value_become_500s_with_the_reason_logged():
    with hooks_test() as t:
        body = "{}"
        headers = github_headers(GITHUB_SECRET, body)
        boom = t.webhook(body, headers, path="/boom")
        assert boom.status == 500 and b"kaboom" not in boom.body
        assert any(level == "error" and "RuntimeError: kaboom" in m for level, m in t.host.logs)
        bad = t.webhook(body, headers, path="/bad")
        assert bad.status == 500
        assert bad.body == b"on_webhook returned str, not a roost.webhook.Response\n"
        status = t.webhook(body, headers, path="/bad-status")
        assert status.status == 500 and b"70000" in status.body
        assert t.host.sent == []


def test_a_plugin_without_on_webhook_answers_404():
    with PluginTest(Plugin) as t:
        assert t.webhook("{}").status == 404
