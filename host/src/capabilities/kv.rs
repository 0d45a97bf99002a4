//! `kv`: each plugin's own namespace in the host database. The namespace is the plugin's
//! name, fixed by the host, so no key a plugin can write names another plugin's data.

use wasmtime::component::{HasSelf, Linker};

use super::host_failure;
use super::registry::{Capability, InstanceEnv};
use crate::config::{Config, Limits};
use crate::runtime::bindings::GuestError;
use crate::runtime::bindings::roost::plugin::kv::{self, Op};
use crate::runtime::state::PluginState;
use crate::store::{KvLimits, KvOp, KvWriteError, Store};

/// Longest key; keys are names, not data.
pub const MAX_KEY_BYTES: usize = 1024;
/// Most operations in one atomic batch (one SQLite transaction holds the store's lock).
pub const MAX_BATCH_OPS: usize = 10_000;
/// Most keys one `list` returns; the reply is copied into guest memory.
pub const MAX_LIST_KEYS: usize = 100_000;

/// Per-instance context: the plugin's namespace, the store handle, and the quota and value
/// cap (`kv_mb`, `kv_value_kb`) the store holds its writes to.
pub struct KvCtx {
    plugin: String,
    store: Store,
    limits: KvLimits,
}

/// `kv_mb` and `kv_value_kb` in bytes, as the store checks them.
pub fn kv_limits(limits: &Limits) -> KvLimits {
    KvLimits {
        max_bytes: limits.kv_mb.saturating_mul(1024 * 1024),
        max_value_bytes: limits.kv_value_kb.saturating_mul(1024),
    }
}

impl KvCtx {
    /// Context for one instance of `plugin`, held to its `limits`.
    pub fn new(plugin: &str, store: Store, limits: &Limits) -> Self {
        Self {
            plugin: plugin.to_string(),
            store,
            limits: kv_limits(limits),
        }
    }

    fn check_key(key: &str) -> Result<(), GuestError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(GuestError::TooLarge(format!(
                "key of {} bytes (limit {MAX_KEY_BYTES})",
                key.len()
            )));
        }
        Ok(())
    }

    /// Applies `ops` within the plugin's limits: a refusal is the plugin's (`too-large`,
    /// logged at info), a database failure the host's (logged, generic error).
    async fn write(&self, what: &str, ops: Vec<KvOp>) -> Result<(), GuestError> {
        let (plugin, limits) = (self.plugin.clone(), self.limits);
        let written = self
            .store
            .try_run(move |s| s.kv_batch(&plugin, &ops, &limits))
            .await;
        match written {
            Ok(()) => Ok(()),
            Err(KvWriteError::Store(e)) => Err(host_failure(&self.plugin, what, e)),
            Err(refused) => {
                tracing::info!(plugin = %self.plugin, blame = "guest", "{what} refused: {refused}");
                Err(GuestError::TooLarge(refused.to_string()))
            }
        }
    }
}

type KvResult<T> = wasmtime::Result<Result<T, GuestError>>;

impl kv::Host for KvCtx {
    async fn get(&mut self, key: String) -> KvResult<Option<Vec<u8>>> {
        if let Err(e) = Self::check_key(&key) {
            return Ok(Err(e));
        }
        let plugin = self.plugin.clone();
        let found = self.store.try_run(move |s| s.kv_get(&plugin, &key)).await;
        Ok(found.map_err(|e| host_failure(&self.plugin, "kv get", e)))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> KvResult<()> {
        if let Err(e) = Self::check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.write("kv set", vec![KvOp::Set(key, value)]).await)
    }

    async fn delete(&mut self, key: String) -> KvResult<()> {
        if let Err(e) = Self::check_key(&key) {
            return Ok(Err(e));
        }
        let plugin = self.plugin.clone();
        let deleted = self
            .store
            .try_run(move |s| s.kv_delete(&plugin, &key))
            .await;
        Ok(deleted
            .map(|_| ())
            .map_err(|e| host_failure(&self.plugin, "kv delete", e)))
    }

    async fn keys(&mut self, prefix: String) -> KvResult<Vec<String>> {
        if let Err(e) = Self::check_key(&prefix) {
            return Ok(Err(e));
        }
        let plugin = self.plugin.clone();
        let keys = self
            .store
            .try_run(move |s| s.kv_list(&plugin, &prefix, MAX_LIST_KEYS))
            .await;
        Ok(keys.map_err(|e| host_failure(&self.plugin, "kv list", e)))
    }

    async fn batch(&mut self, ops: Vec<Op>) -> KvResult<()> {
        if ops.len() > MAX_BATCH_OPS {
            return Ok(Err(GuestError::TooLarge(format!(
                "batch of {} operations (limit {MAX_BATCH_OPS})",
                ops.len()
            ))));
        }
        let mut checked = Vec::with_capacity(ops.len());
        for op in ops {
            let op = match op {
                Op::Set((key, value)) => {
                    if let Err(e) = Self::check_key(&key) {
                        return Ok(Err(e));
                    }
                    KvOp::Set(key, value)
                }
                Op::Delete(key) => {
                    if let Err(e) = Self::check_key(&key) {
                        return Ok(Err(e));
                    }
                    KvOp::Delete(key)
                }
            };
            checked.push(op);
        }
        Ok(self.write("kv batch", checked).await)
    }
}

/// The `kv` capability: always granted, each plugin in its own namespace of the host store,
/// within its `kv_mb` and `kv_value_kb` limits.
pub struct Kv;

impl Capability for Kv {
    type Grant = ();
    type Ctx = KvCtx;

    fn grant(_: &Config, _: &str) {}

    fn context(env: &InstanceEnv<'_>, (): &()) -> KvCtx {
        KvCtx::new(env.plugin, env.services.store.clone(), env.limits)
    }

    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        kv::add_to_linker::<PluginState, HasSelf<KvCtx>>(linker, |s| &mut s.caps.kv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv::Host as _;

    fn ctx(plugin: &str, store: &Store) -> KvCtx {
        KvCtx::new(plugin, store.clone(), &Limits::default())
    }

    #[tokio::test]
    async fn a_plugin_cannot_read_another_plugins_keys() {
        let store = Store::open_in_memory().expect("store");
        let mut a = ctx("a", &store);
        let mut b = ctx("b", &store);
        a.set("secret".into(), b"1".to_vec())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.get("secret".into()).await.unwrap().unwrap(), None);
        assert!(b.keys(String::new()).await.unwrap().unwrap().is_empty());
        assert_eq!(
            a.get("secret".into()).await.unwrap().unwrap(),
            Some(b"1".to_vec())
        );
    }

    #[tokio::test]
    async fn oversized_values_are_refused_not_stored() {
        let store = Store::open_in_memory().expect("store");
        let mut a = ctx("a", &store);
        let limit = usize::try_from(Limits::default().kv_value_kb * 1024).unwrap();
        let big = vec![0u8; limit + 1];
        let err = a.set("k".into(), big).await.unwrap().unwrap_err();
        assert!(
            matches!(&err, GuestError::TooLarge(m) if m.contains("kv_value_kb")),
            "{err:?}"
        );
        assert_eq!(a.get("k".into()).await.unwrap().unwrap(), None);
    }

    #[tokio::test]
    async fn the_quota_comes_from_the_plugins_limits() {
        let store = Store::open_in_memory().expect("store");
        let limits = Limits {
            kv_mb: 1,
            kv_value_kb: 600,
            ..Limits::default()
        };
        let mut a = KvCtx::new("a", store.clone(), &limits);
        let value = vec![0u8; 600 * 1024];
        a.set("one".into(), value.clone()).await.unwrap().unwrap();
        let err = a
            .set("two".into(), value.clone())
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&err, GuestError::TooLarge(m) if m.contains("kv_mb")),
            "{err:?}"
        );
        let err = a
            .batch(vec![Op::Set(("two".into(), value))])
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, GuestError::TooLarge(_)), "{err:?}");
        assert_eq!(a.get("two".into()).await.unwrap().unwrap(), None);
    }

    #[tokio::test]
    async fn batches_apply_all_their_writes() {
        let store = Store::open_in_memory().expect("store");
        let mut a = ctx("a", &store);
        a.set("gone".into(), b"x".to_vec()).await.unwrap().unwrap();
        let ops = vec![
            Op::Set(("k1".into(), b"1".to_vec())),
            Op::Set(("k2".into(), b"2".to_vec())),
            Op::Delete("gone".into()),
        ];
        a.batch(ops).await.unwrap().unwrap();
        assert_eq!(
            a.keys(String::new()).await.unwrap().unwrap(),
            vec!["k1".to_string(), "k2".to_string()]
        );
    }
}
