//! Everything a plugin usually needs, in one glob import: `use roost_plugin::prelude::*;`.

pub use crate::admin::{self, PluginInfo, PluginState};
pub use crate::clock;
pub use crate::dns;
pub use crate::http;
pub use crate::kv;
pub use crate::process::{self, JobEnded, JobId};
pub use crate::secrets;
pub use crate::sqlite;
pub use crate::timer::{self, TimerId};
pub use crate::watch::{self, FilesChanged, SubscriptionId};
pub use crate::webhook;
pub use crate::{
    Command, CommandSpec, Config, Error, Manifest, Plugin, Reply, Role, chat, export_plugin, log,
};
pub use std::time::Duration;
