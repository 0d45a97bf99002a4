//! Leveled logging into the host's log, tagged by the host with the plugin's name. Needs no
//! grant. Stdout and stderr are not a plugin's log: use these.

use crate::__bindings::roost::plugin::log::{self as wit, Level};

/// Very detailed tracing, normally filtered out by the host.
pub fn trace(message: impl AsRef<str>) {
    wit::log(Level::Trace, message.as_ref());
}

/// Detail useful when debugging the plugin.
pub fn debug(message: impl AsRef<str>) {
    wit::log(Level::Debug, message.as_ref());
}

/// Something worth knowing happened.
pub fn info(message: impl AsRef<str>) {
    wit::log(Level::Info, message.as_ref());
}

/// Something looks wrong but the plugin carries on.
pub fn warn(message: impl AsRef<str>) {
    wit::log(Level::Warn, message.as_ref());
}

/// Something failed; nobody else will hear of it unless it is logged.
pub fn error(message: impl AsRef<str>) {
    wit::log(Level::Error, message.as_ref());
}
