//! `alias-monitor`: watches DNS names for what breaks aliases — a CNAME at a zone apex or
//! beside other data, MX/NS/SRV targets and SOA MNAMEs that are aliases, long or looping
//! chains, dangling targets (and takeover risks under claimable hosting suffixes), drift of
//! flattened (ALIAS/ANAME) apexes, servers that disagree — and posts what changed. See
//! README.md.
//!
//! - [`engine`]: the analysis, host-independent, over the small [`engine::Lookup`] trait.
//! - the plugin (`plugin.rs`): config, the `dns` and `check` commands and the watch timer,
//!   over the SDK's `dns`, `kv`, `chat` and `timer` capabilities.

pub mod engine;
mod plugin;
