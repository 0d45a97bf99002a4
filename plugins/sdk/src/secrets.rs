//! Secrets the plugin's grants name (`[plugins.NAME.grants] secrets = ["riot_api_key"]`):
//! API keys and passwords that stay out of `roost.toml`. The host reads each from the
//! variable `ROOST_SECRET_<NAME>` in its environment at start, or else from the file
//! `<data_dir>/secrets/<name>` (mode 0600).
//!
//! ```text
//! use roost_plugin::secrets;
//!
//! let key = secrets::get("riot_api_key")?;
//! ```
//!
//! The host never logs, stores or shows a value, and no job inherits one. Once the plugin
//! has a value, where it goes is up to the plugin: do not reply with it, log it, keep it in
//! [`kv`](crate::kv) or pass it to a job unless that is the point.

use crate::__bindings::roost::plugin::secrets as wit;
use crate::Error;

/// The value of secret `name`: [`Error::AccessDenied`] when the plugin's grants do not
/// name it, [`Error::NotFound`] when the host has no value for it.
pub fn get(name: &str) -> Result<String, Error> {
    wit::get(name).map_err(Error::from)
}
