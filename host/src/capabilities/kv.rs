//! `kv`: each plugin's own namespace in the host database. The namespace is the plugin's
//! name, fixed by the host, so no key a plugin can write names another plugin's data.

use wasmtime::component::{HasSelf, Linker};

use super::host_failure;
use crate::runtime::bindings::GuestError;
use crate::runtime::bindings::roost::plugin::kv::{self, Op};
use crate::runtime::state::PluginState;
use crate::store::{KvOp, Store};

/// Longest key; keys are names, not data.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value; the guest chooses the size, and every value is held in host memory while
/// it is written.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most operations in one atomic batch (one SQLite transaction holds the store's lock).
pub const MAX_BATCH_OPS: usize = 10_000;
/// Most keys one `list` returns; the reply is copied into guest memory.
pub const MAX_LIST_KEYS: usize = 100_000;

/// Per-instance context: the plugin's namespace and the store handle.
pub struct KvCtx {
    plugin: String,
    store: Store,
}

impl KvCtx {
    /// Context for one instance of `plugin`.
    pub fn new(plugin: &str, store: Store) -> Self {
        Self {
            plugin: plugin.to_string(),
            store,
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

    fn check_value(value: &[u8]) -> Result<(), GuestError> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(GuestError::TooLarge(format!(
                "value of {} bytes (limit {MAX_VALUE_BYTES})",
                value.len()
            )));
        }
        Ok(())
    }
}

type KvResult<T> = wasmtime::Result<Result<T, GuestError>>;

impl kv::Host for KvCtx {
    async fn get(&mut self, key: String) -> KvResult<Option<Vec<u8>>> {
        if let Err(e) = Self::check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self
            .store
            .kv_get(&self.plugin, &key)
            .map_err(|e| host_failure(&self.plugin, "kv get", e)))
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> KvResult<()> {
        if let Err(e) = Self::check_key(&key).and_then(|_| Self::check_value(&value)) {
            return Ok(Err(e));
        }
        Ok(self
            .store
            .kv_set(&self.plugin, &key, &value)
            .map_err(|e| host_failure(&self.plugin, "kv set", e)))
    }

    async fn delete(&mut self, key: String) -> KvResult<()> {
        if let Err(e) = Self::check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self
            .store
            .kv_delete(&self.plugin, &key)
            .map(|_| ())
            .map_err(|e| host_failure(&self.plugin, "kv delete", e)))
    }

    async fn keys(&mut self, prefix: String) -> KvResult<Vec<String>> {
        if let Err(e) = Self::check_key(&prefix) {
            return Ok(Err(e));
        }
        Ok(self
            .store
            .kv_list(&self.plugin, &prefix, MAX_LIST_KEYS)
            .map_err(|e| host_failure(&self.plugin, "kv list", e)))
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
                    if let Err(e) = Self::check_key(&key).and_then(|_| Self::check_value(&value)) {
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
        Ok(self
            .store
            .kv_batch(&self.plugin, &checked)
            .map_err(|e| host_failure(&self.plugin, "kv batch", e)))
    }
}

/// Links `roost:plugin/kv` to each instance's [`KvCtx`].
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    kv::add_to_linker::<PluginState, HasSelf<KvCtx>>(linker, |s| &mut s.kv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv::Host as _;

    fn ctx(plugin: &str, store: &Store) -> KvCtx {
        KvCtx::new(plugin, store.clone())
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
        let big = vec![0u8; MAX_VALUE_BYTES + 1];
        let err = a.set("k".into(), big).await.unwrap().unwrap_err();
        assert!(matches!(err, GuestError::TooLarge(_)));
        assert_eq!(a.get("k".into()).await.unwrap().unwrap(), None);
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
