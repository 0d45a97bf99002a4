//! `admin`: control of the host's plugins, for plugins whose grant says `admin = true`
//! (the bot). The supervisor implements [`PluginControl`]; this module only checks the grant
//! and translates.

use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;

use wasmtime::component::{HasSelf, Linker};

use super::denied;
use super::registry::{Capability, InstanceEnv};
use crate::config::Config;
use crate::runtime::bindings::GuestError;
use crate::runtime::bindings::roost::plugin::admin::{self, PluginInfo};
use crate::runtime::state::PluginState;

/// A boxed future, so [`PluginControl`] can be used as a trait object.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the admin interface can ask of the host. Implemented by the supervisor; kept as a
/// trait so this capability does not depend on the runtime's internals.
pub trait PluginControl: Send + Sync {
    /// One line each about the host: uptime, gateways, outbox, config problems.
    fn host_status(&self) -> BoxFuture<Vec<String>>;
    /// Every plugin the host knows, running or not.
    fn list_plugins(&self) -> Vec<PluginInfo>;
    /// Reloads `name` from its source; the new version serves only after its `init`.
    fn reload(&self, name: String) -> BoxFuture<Result<String, String>>;
    /// Enables `name` (until the next config change) and loads it.
    fn enable(&self, name: String) -> BoxFuture<Result<String, String>>;
    /// Disables `name` (until the next config change) and unloads it.
    fn disable(&self, name: String) -> BoxFuture<Result<String, String>>;
}

/// Per-instance context: whether admin is granted, and a weak link to the supervisor (weak
/// because the supervisor owns this instance).
pub struct AdminCtx {
    plugin: String,
    granted: bool,
    control: Option<Weak<dyn PluginControl>>,
}

impl AdminCtx {
    /// Context for `plugin`; `control` is `None` where no supervisor runs (`roost invoke`).
    pub fn new(plugin: &str, granted: bool, control: Option<Weak<dyn PluginControl>>) -> Self {
        Self {
            plugin: plugin.to_string(),
            granted,
            control,
        }
    }

    fn control(&self) -> Result<std::sync::Arc<dyn PluginControl>, GuestError> {
        if !self.granted {
            return Err(denied(
                &self.plugin,
                format!(
                    "admin is not granted to plugin `{}` (set admin = true in [plugins.{}.grants])",
                    self.plugin, self.plugin
                ),
            ));
        }
        self.control
            .as_ref()
            .and_then(Weak::upgrade)
            .ok_or_else(|| GuestError::Other("no daemon is running to administer".into()))
    }
}

type AdminResult<T> = wasmtime::Result<Result<T, GuestError>>;

impl admin::Host for AdminCtx {
    async fn host_status(&mut self) -> AdminResult<Vec<String>> {
        Ok(match self.control() {
            Ok(control) => Ok(control.host_status().await),
            Err(e) => Err(e),
        })
    }

    async fn list_plugins(&mut self) -> AdminResult<Vec<PluginInfo>> {
        Ok(self.control().map(|c| c.list_plugins()))
    }

    async fn reload(&mut self, name: String) -> AdminResult<String> {
        let control = match self.control() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(control.reload(name).await.map_err(GuestError::Other))
    }

    async fn enable(&mut self, name: String) -> AdminResult<String> {
        let control = match self.control() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(control.enable(name).await.map_err(GuestError::Other))
    }

    async fn disable(&mut self, name: String) -> AdminResult<String> {
        let control = match self.control() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        Ok(control.disable(name).await.map_err(GuestError::Other))
    }
}

/// The `admin` capability: `admin = true` in the plugin's grants (meant for the bot).
pub struct Admin;

impl Capability for Admin {
    type Grant = bool;
    type Ctx = AdminCtx;

    fn grant(config: &Config, plugin: &str) -> bool {
        config.plugin(plugin).is_some_and(|p| p.grants.admin)
    }

    fn context(env: &InstanceEnv<'_>, granted: &bool) -> AdminCtx {
        AdminCtx::new(env.plugin, *granted, env.services.control.clone())
    }

    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        admin::add_to_linker::<PluginState, HasSelf<AdminCtx>>(linker, |s| &mut s.caps.admin)
    }
}
