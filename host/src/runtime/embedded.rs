//! First-party plugins built into the binary (Zellij's approach): `build.rs` compiles the
//! `plugins/` workspace for wasm32-wasip2 and this module includes each component's bytes.
//! A `<name>.wasm` in the plugins folder overrides the built-in one. Each comes compiled
//! ahead of time too, so a first start need not compile it.

include!(concat!(env!("OUT_DIR"), "/embedded_plugins.rs"));

/// The built-in plugin `name`, if there is one.
pub fn get(name: &str) -> Option<&'static [u8]> {
    PLUGINS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, b, _)| *b)
}

/// What `build.rs` compiled ahead of time from `component`, when it is one of the built-in
/// plugins (compared by content, so a plugins-folder copy of one is served too). Compiled
/// with the daemon's Cranelift settings; wasmtime checks at load that they still match.
pub fn precompiled(component: &[u8]) -> Option<&'static [u8]> {
    PLUGINS
        .iter()
        .find(|(_, bytes, _)| *bytes == component)
        .map(|(_, _, compiled)| *compiled)
}

/// Names of the built-in plugins.
pub fn names() -> impl Iterator<Item = &'static str> {
    PLUGINS.iter().map(|(n, _, _)| *n)
}

#[cfg(test)]
mod tests {
    /// The plugins the build embeds must match the first-party list users read about.
    #[test]
    fn embedded_plugins_match_the_first_party_list() {
        let names: Vec<_> = super::names().collect();
        assert_eq!(names, super::FIRST_PARTY);
        for (name, bytes, _) in super::PLUGINS {
            assert!(
                bytes.starts_with(b"\0asm\x0d\0\x01\0"),
                "{name} is not a component"
            );
        }
    }
}
