"""Posts a one-line summary of GitHub push and workflow-run webhooks to a channel, after
checking each delivery's signature: the Rust `plugins/examples/git-hooks` in Python.

    [http]
    listen = "127.0.0.1:8750"            # behind a reverse proxy that GitHub can reach
    [plugins.git-hooks.grants]
    webhooks = true
    secrets = ["github_webhook_secret"]  # ROOST_SECRET_GITHUB_WEBHOOK_SECRET, or a 0600 file
    channels = ["dev"]
    [plugins.git-hooks.config]
    channel = "dev"

- A missing or wrong `X-Hub-Signature-256` gets 401 and nothing is posted.
- `push` posts "alice pushed 2 commits to acme/site main: <head commit's first line>".
- `workflow_run` posts when a run completes: "CI build on acme/site main: failure <url>".
- `ping` answers 200 "pong"; other events 202.
- GitHub redelivers on timeouts: the last `REMEMBERED` delivery ids are kept in KV, so a
  redelivered event is answered 200 and not posted twice.
"""

from roost import Plugin, chat, kv, log, secrets, webhook
from roost.webhook import Response

#: How many delivery ids are remembered to spot redeliveries.
REMEMBERED = 200
#: The KV key holding them, newest last.
DELIVERIES_KEY = "deliveries"


def short_ref(git_ref):
    """The branch or tag a ref names (`refs/heads/main` → `main`)."""
    for prefix in ("refs/heads/", "refs/tags/"):
        if git_ref.startswith(prefix):
            return git_ref[len(prefix):]
    return git_ref


def push_line(push):
    """The line posted for a push."""
    target = f"{push['repository']['full_name']} {short_ref(push['ref'])}"
    who = push["pusher"]["name"]
    if push.get("deleted"):
        return f"{who} deleted {target}"
    n = len(push.get("commits", []))
    head = ((push.get("head_commit") or {}).get("message") or "").split("\n")[0]
    return f"{who} pushed {n} commit{'' if n == 1 else 's'} to {target}: {head}"


def run_line(event):
    """The line posted for a completed workflow run; None for the other actions."""
    if event.get("action") != "completed":
        return None
    run = event["workflow_run"]
    return (f"CI {run['name']} on {event['repository']['full_name']} "
            f"{run.get('head_branch') or '?'}: {run.get('conclusion') or 'unknown'} {run['html_url']}")


def redelivered(delivery):
    """Whether `delivery` was seen before; remembers it if not."""
    ids = kv.get_json(DELIVERIES_KEY) or []
    if delivery in ids:
        return True
    kv.set_json(DELIVERIES_KEY, (ids + [delivery])[-REMEMBERED:])
    return False


class GitHooks(Plugin):
    def init(self, config):
        self.channel = str(config.get("channel", ""))
        self.secret = str(config.get("secret", "github_webhook_secret"))
        self.posted = 0
        if not self.channel:
            raise ValueError("set channel in [plugins.git-hooks.config]")

    def on_webhook(self, request):
        try:
            webhook.verify_github(secrets.get(self.secret), request)
        except webhook.SignatureError as e:
            log.warn(f"webhook refused: {e}")
            return Response.text(f"signature: {e}", status=401)
        event = request.header("x-github-event", "")
        if event == "ping":
            return Response.text("pong")
        try:
            line = {"push": push_line, "workflow_run": run_line}.get(event, lambda _: None)(request.json())
        except (ValueError, KeyError, TypeError) as e:
            return Response.text(f"{event}: not the JSON expected ({e!r})", status=400)
        if line is None:
            return Response.text(f"{event}: nothing to post", status=202)
        delivery = request.header("x-github-delivery", "")
        if delivery and redelivered(delivery):
            return Response.text("already posted")
        chat.send(self.channel, line)
        self.posted += 1
        return Response.text("posted")

    def status(self):
        return f"{self.posted} events posted"
