//! The config in force, shared by every part of the daemon and swapped whole on reload.

use std::sync::{Arc, RwLock};

use crate::config::Config;

/// Cheap-to-clone handle to the running config. Readers take an `Arc` snapshot, so a reload
/// never changes the config under a call that is in progress.
#[derive(Clone)]
pub struct LiveConfig {
    inner: Arc<RwLock<Arc<Config>>>,
}

impl LiveConfig {
    /// Starts with `config` in force.
    pub fn new(config: Config) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(config))),
        }
    }

    /// The config in force now.
    pub fn get(&self) -> Arc<Config> {
        match self.inner.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `config` in force; returns the one it replaces.
    pub fn replace(&self, config: Config) -> Arc<Config> {
        let new = Arc::new(config);
        match self.inner.write() {
            Ok(mut guard) => std::mem::replace(&mut *guard, new),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), new),
        }
    }
}
