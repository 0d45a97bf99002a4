//! Posting to chat outside a command's reply: digests, alerts, fan-out.

use crate::__bindings::roost::plugin::chat as wit;
use crate::{Error, Reply};

/// Posts `message` to `channel`, a channel alias from `roost.toml` (e.g. "announce") that
/// the plugin's grant lists under `channels`; any other name is
/// [`Error::AccessDenied`]. The host queues the message in its persistent outbox, so
/// `Ok` means "will be delivered", even while a gateway is down.
///
/// To answer a command, return a [`Reply`] from `on_command` instead: that needs no grant.
pub fn send(channel: &str, message: impl Into<Reply>) -> Result<(), Error> {
    wit::send(channel, &message.into().into_message()).map_err(Error::from)
}
