//! The [`Plugin`] trait: what a plugin implements.

use crate::{Command, Config, Manifest, Reply};

/// A roost plugin. The host creates one value with `Default`, calls [`Plugin::init`] once,
/// then the other hooks one at a time (never concurrently) until the instance is dropped
/// (reload, disable, shutdown, or rebuild after a trap).
///
/// Only `init` is required: every other hook has a default, so a plugin writes only what it
/// needs. Register the type with [`export_plugin!`](crate::export_plugin).
pub trait Plugin: Default + 'static {
    /// Called once after the instance starts, with the plugin's `[plugins.NAME.config]`
    /// table. Returns the manifest: the plugin's name, version and commands. An `Err` stops
    /// the plugin from loading; the host shows the text in `!status` and keeps serving the
    /// previous version, if any.
    fn init(&mut self, cfg: Config) -> Result<Manifest, String>;

    /// Called for a chat command that names one of the manifest's commands, after the host
    /// has checked the sender's role and the argument count. `Ok` is the reply sent to the
    /// conversation; `Err` is sent back as an error line. The default refuses every command,
    /// for plugins that only react to timers.
    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        Err(format!("command `{}` is not implemented", cmd.name()))
    }

    /// Called when a timer set with [`timer::every`](crate::timer::every) or
    /// [`timer::after`](crate::timer::after) fires, with the tag it was set with. Nobody
    /// waits for the result: report problems with [`log`](crate::log) or [`chat`](crate::chat).
    fn on_timer(&mut self, tag: &str) {
        let _ = tag;
    }

    /// Called for a note from the host, such as `"config-changed"`. Ignored by default.
    fn on_notice(&mut self, notice: &str) {
        let _ = notice;
    }

    /// Called with each debounced batch of changes from a subscription made with
    /// [`watch::Subscription`](crate::watch::Subscription). Ignored by default.
    fn on_files_changed(&mut self, batch: crate::watch::FilesChanged) {
        let _ = batch;
    }

    /// Called when a job started with [`process::Job::start`](crate::process::Job::start)
    /// ended: exited, was cancelled, or timed out. Ignored by default.
    fn on_job_ended(&mut self, ended: crate::process::JobEnded) {
        let _ = ended;
    }

    /// Called for a request to `/hooks/<plugin>/<path>` on the daemon's HTTP server, when
    /// the plugin's grants say `webhooks = true`. The host asks the caller for no token:
    /// check the sender's signature with [`webhook::verify_github`](crate::webhook::verify_github)
    /// and friends before acting. The response goes back to the caller. The default
    /// answers 404.
    fn on_webhook(&mut self, request: crate::webhook::Request) -> crate::webhook::Response {
        let _ = request;
        crate::webhook::Response::not_found()
    }

    /// One short line for `!status`, such as "watching 3 domains". Empty by default.
    fn status(&self) -> String {
        String::new()
    }
}
