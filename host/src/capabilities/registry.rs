//! The one list of host capabilities. Each capability is a type implementing
//! [`Capability`]: how its grant is read from config, how one instance's context is built,
//! and how its host functions are linked. The [`registry!`] line below is the only place
//! that names them all; the per-plugin [`Grants`] (the reload key and what every instance
//! is built from), the per-instance [`Contexts`] and the linker are generated from it.

use std::fmt::Debug;

use tokio::sync::mpsc;
use wasmtime::component::Linker;

use crate::config::{Config, Limits};
use crate::runtime::actor::HostServices;
use crate::runtime::bindings::Event;
use crate::runtime::state::PluginState;

/// What a capability may use to build one instance's context.
pub struct InstanceEnv<'a> {
    /// The plugin's name (for logs, errors and namespaces).
    pub plugin: &'a str,
    /// The plugin's effective limits.
    pub limits: &'a Limits,
    /// What every plugin shares: the host store, the outbox, the live config, the
    /// supervisor.
    pub services: &'a HostServices,
    /// The instance's own event queue (timer fires, file changes, job ends).
    pub events: &'a mpsc::Sender<Event>,
}

/// One host capability, all of it in one place (Spin's factors, wasmtime-wasi's
/// `*Ctx`/`*View`): adding one means a module implementing this trait, its WIT file, its
/// grant keys in config, and one line in [`registry!`].
pub trait Capability {
    /// What config grants one plugin, resolved (paths made absolute, limits applied).
    /// Compared across config edits: a change reloads the plugin.
    type Grant: Debug + Clone + PartialEq + Send + Sync + 'static;
    /// What one instance's host calls work with; dropped with the instance.
    type Ctx: Send + 'static;

    /// Reads the grant for plugin `plugin` from a validated config.
    fn grant(config: &Config, plugin: &str) -> Self::Grant;

    /// Builds one instance's context.
    fn context(env: &InstanceEnv<'_>, grant: &Self::Grant) -> Self::Ctx;

    /// Links the capability's WIT interface to its context in each instance's state.
    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()>;

    /// What the instance holds of this capability now, for `!status` ("2 timers");
    /// `None` when it holds nothing worth showing.
    fn usage(_ctx: &mut Self::Ctx) -> Option<String> {
        None
    }
}

/// "1 timer", "2 timers": a count with its noun, for [`Capability::usage`]; `None` for 0.
pub fn counted(n: usize, one: &str, many: &str) -> Option<String> {
    match n {
        0 => None,
        1 => Some(format!("1 {one}")),
        n => Some(format!("{n} {many}")),
    }
}

/// Generates [`Grants`], [`Contexts`] and [`add_to_linker`] from one list of
/// `field: CapabilityType` pairs.
macro_rules! registry {
    ($($field:ident: $cap:ty),+ $(,)?) => {
        /// Every capability's grant for one plugin: built once per load from config, used
        /// as part of the reload key and handed to every instance built.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Grants {
            $(
                #[doc = concat!("The `", stringify!($field), "` grant.")]
                pub $field: <$cap as Capability>::Grant,
            )+
        }

        impl Grants {
            /// Reads every capability's grant for `plugin`.
            pub fn from_config(config: &Config, plugin: &str) -> Self {
                Self { $($field: <$cap as Capability>::grant(config, plugin),)+ }
            }
        }

        /// Every capability's context for one instance.
        pub struct Contexts {
            $(
                #[doc = concat!("The `", stringify!($field), "` context.")]
                pub $field: <$cap as Capability>::Ctx,
            )+
        }

        impl Contexts {
            /// Builds every capability's context for one instance.
            pub fn build(env: &InstanceEnv<'_>, grants: &Grants) -> Self {
                Self { $($field: <$cap as Capability>::context(env, &grants.$field),)+ }
            }

            /// What the instance holds now, capability by capability.
            pub fn usage(&mut self) -> Vec<String> {
                [$(<$cap as Capability>::usage(&mut self.$field)),+]
                    .into_iter()
                    .flatten()
                    .collect()
            }
        }

        /// Links every capability's interface.
        pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
            $(<$cap as Capability>::add_to_linker(linker)?;)+
            Ok(())
        }
    };
}

registry! {
    log: super::log::Log,
    kv: super::kv::Kv,
    chat: super::chat::Chat,
    timer: super::timer::Timer,
    admin: super::admin::Admin,
    sqlite: super::sqlite::Sqlite,
    dns: super::dns::Dns,
    watch: super::watch::Watch,
    process: super::process::Process,
    secrets: super::secrets::Secrets,
    http: super::http::Http,
    webhook: super::webhook::Webhook,
}
