//! What a plugin component was built from, read from its bytes before it is compiled, so
//! the host can give a Python plugin the memory limit that fits it.
//!
//! A componentize-py component (what `roost build` makes of a Python plugin) links CPython
//! and componentize-py's runtime as shared libraries inside it: each nested core module of
//! those carries a `dylink.0` custom section naming the libraries it needs, and one of them
//! always needs `libcomponentize_py_runtime.so`. That name is the mark: it is written by the
//! tool, not by the plugin, so it is there whichever way the component was built (`roost
//! build`, or componentize-py by hand), and no Rust component links such a library.

use wasmparser::{Parser, Payload};

/// The shared library every componentize-py component links; see the module docs.
const COMPONENTIZE_PY_RUNTIME: &[u8] = b"libcomponentize_py_runtime.so";

/// How a component was built, as far as its limits care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// A Python plugin built by componentize-py: CPython and its heap live inside the
    /// component's own memory, which starts at about 12 MiB before the plugin does anything.
    Python,
    /// Anything else (Rust and other languages that compile straight to wasm).
    Native,
}

impl ComponentKind {
    /// Reads the kind from the component's bytes. Bytes that do not parse are
    /// [`ComponentKind::Native`]: compiling them reports the real error.
    pub fn of(bytes: &[u8]) -> Self {
        for payload in Parser::new(0).parse_all(bytes) {
            let Ok(payload) = payload else {
                return ComponentKind::Native;
            };
            if let Payload::CustomSection(section) = payload
                && section.name() == "dylink.0"
                && section
                    .data()
                    .windows(COMPONENTIZE_PY_RUNTIME.len())
                    .any(|w| w == COMPONENTIZE_PY_RUNTIME)
            {
                return ComponentKind::Python;
            }
        }
        ComponentKind::Native
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A custom section: id 0, size, name, data.
    fn custom(name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = vec![u8::try_from(name.len()).expect("short name")];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        let mut out = vec![0, u8::try_from(body.len()).expect("short section")];
        out.extend(body);
        out
    }

    /// A component holding one core module with `sections` after its header.
    fn component_with_module(sections: &[u8]) -> Vec<u8> {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend_from_slice(sections);
        let mut out = b"\0asm\x0d\0\x01\0".to_vec();
        out.push(1); // core module section
        out.push(u8::try_from(module.len()).expect("short module"));
        out.extend(module);
        out
    }

    /// `dylink.0` with a needed-libraries subsection (id 2) naming `libs`.
    fn dylink_needing(libs: &[&str]) -> Vec<u8> {
        let mut needed = vec![u8::try_from(libs.len()).expect("few libs")];
        for lib in libs {
            needed.push(u8::try_from(lib.len()).expect("short name"));
            needed.extend_from_slice(lib.as_bytes());
        }
        let mut data = vec![2, u8::try_from(needed.len()).expect("short subsection")];
        data.extend(needed);
        custom("dylink.0", &data)
    }

    #[test]
    fn a_module_needing_componentize_py_runtime_marks_a_python_component() {
        let bytes = component_with_module(&dylink_needing(&[
            "libc.so",
            "libcomponentize_py_runtime.so",
        ]));
        assert_eq!(ComponentKind::of(&bytes), ComponentKind::Python);
    }

    #[test]
    fn other_shared_libraries_and_the_name_elsewhere_do_not() {
        let libc_only = component_with_module(&dylink_needing(&["libc.so"]));
        assert_eq!(ComponentKind::of(&libc_only), ComponentKind::Native);
        // The name in a section that is not `dylink.0` (a string a Rust plugin prints,
        // say) is not the mark.
        let in_name = component_with_module(&custom("name", COMPONENTIZE_PY_RUNTIME));
        assert_eq!(ComponentKind::of(&in_name), ComponentKind::Native);
        assert_eq!(ComponentKind::of(b"not wasm"), ComponentKind::Native);
    }

    #[test]
    fn the_embedded_rust_plugins_are_native() {
        for name in crate::runtime::embedded::names() {
            let bytes = crate::runtime::embedded::get(name).expect("embedded");
            assert_eq!(ComponentKind::of(bytes), ComponentKind::Native, "{name}");
        }
    }
}
