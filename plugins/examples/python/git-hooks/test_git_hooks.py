"""The Python git-hooks on the fake host: signed deliveries posted once, bad signatures
refused with nothing posted."""

import json

from roost.testing import FakeHost, PluginTest, github_headers

from git_hooks import GitHooks

SECRET = "It's a Secret to Everybody"
PUSH = json.dumps({
    "ref": "refs/heads/main", "repository": {"full_name": "acme/site"},
    "pusher": {"name": "alice"}, "commits": [{"message": "a"}, {"message": "b"}],
    "head_commit": {"message": "Fix the build\n\nlong text"},
})


def git_hooks():
    host = FakeHost(channels=["dev"], secrets={"github_webhook_secret": SECRET})
    return PluginTest(GitHooks, config={"channel": "dev"}, host=host, name="git-hooks")


def deliver(t, body, secret=SECRET, event="push", delivery="d-1"):
    headers = github_headers(secret, body, event)
    headers["X-GitHub-Delivery"] = delivery
    return t.webhook(body, headers)


def test_a_signed_push_is_posted_once_even_when_redelivered():
    with git_hooks() as t:
        assert deliver(t, PUSH).body == b"posted\n"
        again = deliver(t, PUSH)
        assert (again.status, again.body) == (200, b"already posted\n")
        assert t.host.sent_text() == [("dev", "alice pushed 2 commits to acme/site main: Fix the build")]
        assert t.status() == "1 events posted"


def test_a_forged_or_unsigned_delivery_gets_401_and_nothing_is_posted():
    with git_hooks() as t:
        assert deliver(t, PUSH, secret="a guess").status == 401
        assert t.webhook(PUSH, {"X-GitHub-Event": "push"}).status == 401
        assert t.host.sent == []


def test_only_completed_runs_are_posted_and_ping_answers_pong():
    run = {"action": "completed", "repository": {"full_name": "acme/site"},
           "workflow_run": {"name": "build", "head_branch": "main", "conclusion": "failure",
                            "html_url": "https://ci/1"}}
    with git_hooks() as t:
        assert deliver(t, json.dumps({**run, "action": "requested"}), event="workflow_run").status == 202
        assert deliver(t, json.dumps(run), event="workflow_run", delivery="d-2").status == 200
        assert deliver(t, "{}", event="ping").body == b"pong\n"
        assert deliver(t, "not json", delivery="d-3").status == 400
        assert t.host.sent_text() == [("dev", "CI build on acme/site main: failure https://ci/1")]
