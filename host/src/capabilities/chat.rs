//! `chat`: a plugin sends to channel aliases from config, only those its grant names.
//! Messages go into the persistent outbox, never straight to a gateway.

use wasmtime::component::{HasSelf, Linker};

use super::registry::{Capability, InstanceEnv};
use super::{denied, host_failure};
use crate::config::Config;
use crate::live_config::LiveConfig;
use crate::message::Outgoing;
use crate::message::Part;
use crate::outbox::Outbox;
use crate::runtime::bindings::roost::plugin::chat;
use crate::runtime::bindings::{Attachment, CodeBlock, Content, GuestError};
use crate::runtime::state::PluginState;

/// Largest message a plugin may hand over (all parts, attachments included). What is
/// stored is smaller: the outbox cuts each copy to its target's platform limit
/// ([`crate::outbox::size_limit`]).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// What config grants: the channel aliases this plugin may send to. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatGrant {
    pub channels: Vec<String>,
}

/// Per-instance context.
pub struct ChatCtx {
    plugin: String,
    grant: ChatGrant,
    config: LiveConfig,
    outbox: Outbox,
}

impl ChatCtx {
    /// Context for one instance of `plugin` with its grant.
    pub fn new(plugin: &str, grant: ChatGrant, config: LiveConfig, outbox: Outbox) -> Self {
        Self {
            plugin: plugin.to_string(),
            grant,
            config,
            outbox,
        }
    }
}

fn message_size(msg: &[Content]) -> usize {
    msg.iter()
        .map(|c| match c {
            Content::Text(t) => t.len(),
            Content::Code(c) => c.code.len() + c.language.len(),
            Content::Attachment(a) => a.data.len() + a.filename.len(),
        })
        .sum()
}

impl chat::Host for ChatCtx {
    async fn send(
        &mut self,
        channel: String,
        msg: Vec<Content>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        if !self.grant.channels.iter().any(|c| c == &channel) {
            return Ok(Err(denied(
                &self.plugin,
                format!(
                    "channel `{channel}` is not granted to plugin `{}` (grant it in [plugins.{}.grants] channels)",
                    self.plugin, self.plugin
                ),
            )));
        }
        let size = message_size(&msg);
        if size > MAX_MESSAGE_BYTES {
            return Ok(Err(GuestError::TooLarge(format!(
                "message of {size} bytes (limit {MAX_MESSAGE_BYTES})"
            ))));
        }
        let config = self.config.get();
        let Some(targets) = config.channel_targets(&channel) else {
            return Ok(Err(GuestError::NotFound(format!(
                "no channel alias `{channel}` in config"
            ))));
        };
        let outgoing = Outgoing::from(msg);
        Ok(self
            .outbox
            .push(targets, &self.plugin, &outgoing)
            .await
            .map_err(|e| host_failure(&self.plugin, "queueing a chat message", e)))
    }
}

/// The `chat` capability: the channel aliases in the plugin's `channels` grant.
pub struct Chat;

impl Capability for Chat {
    type Grant = ChatGrant;
    type Ctx = ChatCtx;

    fn grant(config: &Config, plugin: &str) -> ChatGrant {
        ChatGrant {
            channels: config
                .plugin(plugin)
                .map(|p| p.grants.channels.clone())
                .unwrap_or_default(),
        }
    }

    fn context(env: &InstanceEnv<'_>, grant: &ChatGrant) -> ChatCtx {
        let services = env.services;
        ChatCtx::new(
            env.plugin,
            grant.clone(),
            services.config.clone(),
            services.outbox.clone(),
        )
    }

    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        chat::add_to_linker::<PluginState, HasSelf<ChatCtx>>(linker, |s| &mut s.caps.chat)
    }
}

/// A plugin's reply or message, from the WIT shape to the host's own.
impl From<Vec<Content>> for Outgoing {
    fn from(parts: Vec<Content>) -> Self {
        Self {
            parts: parts
                .into_iter()
                .map(|c| match c {
                    Content::Text(text) => Part::Text { text },
                    Content::Code(CodeBlock { language, code }) => Part::Code { language, code },
                    Content::Attachment(Attachment { filename, data }) => {
                        Part::Attachment { filename, data }
                    }
                })
                .collect(),
            relay: None,
        }
    }
}
