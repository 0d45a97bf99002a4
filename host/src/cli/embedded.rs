//! The sources `roost new` and `roost build` write out, embedded in the binary so both work
//! outside the repository: the Python SDK (`plugins/sdk-python/roost`) and the WIT contract
//! (`wit/`) componentize-py generates bindings from. A test keeps these lists equal to the
//! folders.

/// `(file name, contents)` of the Python SDK's `roost` package.
pub const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../plugins/sdk-python/roost/__init__.py"),
    ),
    (
        "_fake_http.py",
        include_str!("../../../plugins/sdk-python/roost/_fake_http.py"),
    ),
    (
        "_host.py",
        include_str!("../../../plugins/sdk-python/roost/_host.py"),
    ),
    (
        "_runtime.py",
        include_str!("../../../plugins/sdk-python/roost/_runtime.py"),
    ),
    (
        "_wasi_http.py",
        include_str!("../../../plugins/sdk-python/roost/_wasi_http.py"),
    ),
    (
        "_wit.py",
        include_str!("../../../plugins/sdk-python/roost/_wit.py"),
    ),
    (
        "admin.py",
        include_str!("../../../plugins/sdk-python/roost/admin.py"),
    ),
    (
        "chat.py",
        include_str!("../../../plugins/sdk-python/roost/chat.py"),
    ),
    (
        "clock.py",
        include_str!("../../../plugins/sdk-python/roost/clock.py"),
    ),
    (
        "dns.py",
        include_str!("../../../plugins/sdk-python/roost/dns.py"),
    ),
    (
        "errors.py",
        include_str!("../../../plugins/sdk-python/roost/errors.py"),
    ),
    (
        "http.py",
        include_str!("../../../plugins/sdk-python/roost/http.py"),
    ),
    (
        "kv.py",
        include_str!("../../../plugins/sdk-python/roost/kv.py"),
    ),
    (
        "log.py",
        include_str!("../../../plugins/sdk-python/roost/log.py"),
    ),
    (
        "plugin.py",
        include_str!("../../../plugins/sdk-python/roost/plugin.py"),
    ),
    (
        "process.py",
        include_str!("../../../plugins/sdk-python/roost/process.py"),
    ),
    (
        "reply.py",
        include_str!("../../../plugins/sdk-python/roost/reply.py"),
    ),
    (
        "secrets.py",
        include_str!("../../../plugins/sdk-python/roost/secrets.py"),
    ),
    (
        "sqlite.py",
        include_str!("../../../plugins/sdk-python/roost/sqlite.py"),
    ),
    (
        "testing.py",
        include_str!("../../../plugins/sdk-python/roost/testing.py"),
    ),
    (
        "timer.py",
        include_str!("../../../plugins/sdk-python/roost/timer.py"),
    ),
    (
        "watch.py",
        include_str!("../../../plugins/sdk-python/roost/watch.py"),
    ),
    (
        "webhook.py",
        include_str!("../../../plugins/sdk-python/roost/webhook.py"),
    ),
];

/// `(path under wit/, contents)` of `wit/`: package `roost:plugin`, and in `deps/` the WASI
/// packages its world imports (`wasi:http` and what that uses), which componentize-py
/// resolves from there.
pub const WIT: &[(&str, &str)] = &[
    ("admin.wit", include_str!("../../../wit/admin.wit")),
    ("chat.wit", include_str!("../../../wit/chat.wit")),
    ("dns.wit", include_str!("../../../wit/dns.wit")),
    ("kv.wit", include_str!("../../../wit/kv.wit")),
    ("log.wit", include_str!("../../../wit/log.wit")),
    ("process.wit", include_str!("../../../wit/process.wit")),
    ("secrets.wit", include_str!("../../../wit/secrets.wit")),
    ("sqlite.wit", include_str!("../../../wit/sqlite.wit")),
    ("timer.wit", include_str!("../../../wit/timer.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("watch.wit", include_str!("../../../wit/watch.wit")),
    ("world.wit", include_str!("../../../wit/world.wit")),
    ("deps/cli.wit", include_str!("../../../wit/deps/cli.wit")),
    (
        "deps/clocks.wit",
        include_str!("../../../wit/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../../wit/deps/filesystem.wit"),
    ),
    ("deps/http.wit", include_str!("../../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../../wit/deps/io.wit")),
    (
        "deps/random.wit",
        include_str!("../../../wit/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../../wit/deps/sockets.wit"),
    ),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn names_in(dir: &str, ext: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("the folder is in the repository")
            .map(|e| {
                e.expect("readable")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| n.ends_with(ext))
            .collect();
        names.sort();
        names
    }

    fn listed(files: &[(&str, &str)]) -> Vec<String> {
        let mut names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn every_python_sdk_module_is_embedded() {
        assert_eq!(
            listed(super::PYTHON_SDK),
            names_in("../plugins/sdk-python/roost", ".py")
        );
    }

    #[test]
    fn every_wit_file_is_embedded() {
        let mut on_disk = names_in("../wit", ".wit");
        on_disk.extend(
            names_in("../wit/deps", ".wit")
                .into_iter()
                .map(|n| format!("deps/{n}")),
        );
        on_disk.sort();
        assert_eq!(listed(super::WIT), on_disk);
    }
}
