//! `webhook`: whether requests to `/hooks/<plugin>/…` reach the plugin's `on-webhook`
//! export, and how large they may be. The only capability that links no host functions:
//! the host calls the plugin, not the other way round. Its grant still lives here so a
//! grant change reloads the plugin like any other, and the web server reads it from the
//! running plugin's handle (`PluginHandle::webhook_grant`), never from a newer config the
//! instance was not built with.

use wasmtime::component::Linker;

use super::registry::{Capability, InstanceEnv};
use crate::config::Config;
use crate::runtime::state::PluginState;

/// Largest webhook body taken when `webhook_kb` is not set: GitHub's push events with
/// many commits run to tens of KiB.
pub const DEFAULT_BODY_KB: u64 = 256;

/// What config grants one plugin: `webhooks = true` and its `webhook_kb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookGrant {
    /// Whether `/hooks/<plugin>/…` reaches the plugin at all.
    pub enabled: bool,
    /// Largest request (and response) body, in bytes.
    pub body_limit: usize,
}

/// The `webhook` capability.
pub struct Webhook;

impl Capability for Webhook {
    type Grant = WebhookGrant;
    type Ctx = ();

    fn grant(config: &Config, plugin: &str) -> WebhookGrant {
        let grants = config.plugin(plugin).map(|p| &p.grants);
        let kb = grants.and_then(|g| g.webhook_kb).unwrap_or(DEFAULT_BODY_KB);
        WebhookGrant {
            enabled: grants.is_some_and(|g| g.webhooks),
            body_limit: usize::try_from(kb.saturating_mul(1024)).unwrap_or(usize::MAX),
        }
    }

    fn context(_env: &InstanceEnv<'_>, _grant: &WebhookGrant) {}

    fn add_to_linker(_linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        Ok(())
    }
}
