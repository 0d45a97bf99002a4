//! Posts a one-line summary of GitHub push and workflow-run webhooks to a channel, after
//! checking each delivery's signature.
//!
//! ```toml
//! [http]
//! listen = "127.0.0.1:8750"            # behind a reverse proxy that GitHub can reach
//! [plugins.git-hooks.grants]
//! webhooks = true
//! secrets = ["github_webhook_secret"]  # ROOST_SECRET_GITHUB_WEBHOOK_SECRET, or a 0600 file
//! channels = ["dev"]
//! [plugins.git-hooks.config]
//! channel = "dev"
//! ```
//!
//! In the repository's Settings → Webhooks: payload URL `https://<host>/hooks/git-hooks`,
//! content type `application/json`, the same secret, events "Pushes" and "Workflow runs".
//!
//! - A missing or wrong `X-Hub-Signature-256` gets `401` and nothing is posted.
//! - `push` posts "alice pushed 2 commits to acme/site main: <head commit's first line>".
//! - `workflow_run` posts when a run completes: "CI build on acme/site main: failure <url>".
//! - `ping` (sent when the webhook is created) answers `200 pong`; other events `202`.
//! - GitHub redelivers on timeouts: the last [`REMEMBERED`] delivery ids are kept in KV, so
//!   a redelivered event is answered `200` and not posted twice.

use roost_plugin::prelude::*;
use serde::Deserialize;

/// How many delivery ids are remembered to spot redeliveries.
const REMEMBERED: usize = 200;
/// The KV key holding them, newest last, one per line.
const DELIVERIES_KEY: &str = "deliveries";

#[derive(Default)]
struct GitHooks {
    /// The channel alias summaries go to.
    channel: String,
    /// The secret holding the webhook's shared secret.
    secret: String,
    /// Events posted since the instance started, for `!status`.
    posted: u64,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Pusher {
    name: String,
}

#[derive(Deserialize)]
struct Commit {
    message: String,
}

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    repository: Repository,
    pusher: Pusher,
    #[serde(default)]
    commits: Vec<Commit>,
    head_commit: Option<Commit>,
    #[serde(default)]
    deleted: bool,
}

#[derive(Deserialize)]
struct WorkflowRun {
    name: String,
    head_branch: Option<String>,
    conclusion: Option<String>,
    html_url: String,
}

#[derive(Deserialize)]
struct WorkflowRunEvent {
    action: String,
    workflow_run: WorkflowRun,
    repository: Repository,
}

/// The branch or tag a ref names (`refs/heads/main` → `main`).
fn short_ref(git_ref: &str) -> &str {
    git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(git_ref)
}

/// The line posted for a push.
fn push_line(p: &Push) -> String {
    let target = format!("{} {}", p.repository.full_name, short_ref(&p.git_ref));
    if p.deleted {
        return format!("{} deleted {target}", p.pusher.name);
    }
    let n = p.commits.len();
    let noun = if n == 1 { "commit" } else { "commits" };
    let head = p
        .head_commit
        .as_ref()
        .and_then(|c| c.message.lines().next())
        .unwrap_or("");
    format!("{} pushed {n} {noun} to {target}: {head}", p.pusher.name)
}

/// The line posted for a completed workflow run; `None` for the other actions.
fn run_line(e: &WorkflowRunEvent) -> Option<String> {
    if e.action != "completed" {
        return None;
    }
    let run = &e.workflow_run;
    Some(format!(
        "CI {} on {} {}: {} {}",
        run.name,
        e.repository.full_name,
        run.head_branch.as_deref().unwrap_or("?"),
        run.conclusion.as_deref().unwrap_or("unknown"),
        run.html_url
    ))
}

/// What an event says, as the line to post (`Ok(None)`: nothing to post).
fn summary(event: &str, req: &webhook::Request) -> Result<Option<String>, String> {
    match event {
        "push" => Ok(Some(push_line(&req.json()?))),
        "workflow_run" => Ok(run_line(&req.json()?)),
        _ => Ok(None),
    }
}

/// Whether `delivery` was seen before; remembers it if not.
fn redelivered(delivery: &str) -> Result<bool, Error> {
    let known = kv::get_string(DELIVERIES_KEY)?.unwrap_or_default();
    if known.lines().any(|d| d == delivery) {
        return Ok(true);
    }
    let mut ids: Vec<&str> = known.lines().collect();
    ids.push(delivery);
    let keep = ids.len().saturating_sub(REMEMBERED);
    kv::set_string(DELIVERIES_KEY, &ids[keep..].join("\n"))?;
    Ok(false)
}

impl GitHooks {
    fn handle(&mut self, req: &webhook::Request) -> Result<webhook::Response, String> {
        let secret = secrets::get(&self.secret).map_err(|e| e.to_string())?;
        if let Err(e) = webhook::verify_github(secret.as_bytes(), req) {
            log::warn(format!("webhook refused: {e}"));
            return Ok(webhook::Response::status(401).text(format!("signature: {e}")));
        }
        let event = req.header("x-github-event").unwrap_or("");
        if event == "ping" {
            return Ok(webhook::Response::ok().text("pong"));
        }
        let Some(line) = summary(event, req)? else {
            return Ok(webhook::Response::status(202).text(format!("{event}: nothing to post")));
        };
        let delivery = req.header("x-github-delivery").unwrap_or("");
        if !delivery.is_empty() && redelivered(delivery).map_err(|e| e.to_string())? {
            return Ok(webhook::Response::ok().text("already posted"));
        }
        chat::send(&self.channel, line).map_err(|e| e.to_string())?;
        self.posted += 1;
        Ok(webhook::Response::ok().text("posted"))
    }
}

impl Plugin for GitHooks {
    fn init(&mut self, cfg: Config) -> Result<Manifest, String> {
        self.channel = cfg.get_or("channel", "");
        self.secret = cfg.get_or("secret", "github_webhook_secret");
        if self.channel.is_empty() {
            return Err("set channel in [plugins.git-hooks.config]".into());
        }
        Ok(Manifest::new("git-hooks", env!("CARGO_PKG_VERSION")))
    }

    fn on_webhook(&mut self, req: webhook::Request) -> webhook::Response {
        match self.handle(&req) {
            Ok(response) => response,
            Err(e) => {
                log::warn(format!("webhook failed: {e}"));
                webhook::Response::status(400).text(e)
            }
        }
    }

    fn status(&self) -> String {
        format!("{} events posted", self.posted)
    }
}

export_plugin!(GitHooks);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_is_one_line_with_the_head_commits_first_line() {
        let p: Push = serde_json::from_str(
            r#"{"ref":"refs/heads/main","repository":{"full_name":"acme/site"},"pusher":{"name":"alice"},
                "commits":[{"message":"a"},{"message":"Fix the build\n\nlong text"}],
                "head_commit":{"message":"Fix the build\n\nlong text"}}"#,
        )
        .expect("push");
        assert_eq!(
            push_line(&p),
            "alice pushed 2 commits to acme/site main: Fix the build"
        );
    }

    #[test]
    fn only_completed_runs_are_posted() {
        let json = |action: &str| {
            format!(
                r#"{{"action":"{action}","repository":{{"full_name":"acme/site"}},
                    "workflow_run":{{"name":"build","head_branch":"main","conclusion":"failure","html_url":"https://ci/1"}}}}"#
            )
        };
        let done: WorkflowRunEvent = serde_json::from_str(&json("completed")).expect("run");
        assert_eq!(
            run_line(&done).as_deref(),
            Some("CI build on acme/site main: failure https://ci/1")
        );
        let started: WorkflowRunEvent = serde_json::from_str(&json("requested")).expect("run");
        assert_eq!(run_line(&started), None);
    }
}
