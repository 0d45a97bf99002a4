//! `roost new NAME --lang python|rust`: scaffolds a plugin project in `./NAME` — the
//! plugin, a test file, a README, a `.gitignore`, `roost-plugin.toml` (what `roost build`
//! reads) and what the language's toolchain needs. Python projects also get the SDK in
//! `.roost/sdk` (from the copy embedded in this binary, so it works outside the repo) and a
//! `conftest.py` that puts it on pytest's path.

use std::path::{Path, PathBuf};

use super::embedded;

/// The plugin languages `roost new` and `roost build` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// componentize-py with the `roost` SDK (`plugins/sdk-python`).
    Python,
    /// cargo for wasm32-wasip2 with the `roost-plugin` crate (`plugins/sdk`).
    Rust,
}

/// The project marker `roost build` reads.
pub const PROJECT_FILE: &str = "roost-plugin.toml";

/// Where a Python project keeps the SDK copy and its build output.
pub const PY_WORK_DIR: &str = ".roost";

/// Why `roost new` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error(
        "`{0}` cannot be a plugin name: use lowercase letters, digits and `-`, starting with a letter"
    )]
    BadName(String),
    #[error("{0} already exists")]
    Exists(PathBuf),
    #[error("writing {0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
}

/// A plugin name is its `.wasm` file stem and, for Python, a module name (with `_` for `-`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// The Python module (and Rust crate) form of a plugin name.
pub fn module_name(name: &str) -> String {
    name.replace('-', "_")
}

/// `dice-bot` → `DiceBot`, the plugin's class or struct.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Writes the project into `parent/NAME`; returns that folder. Refuses to touch an
/// existing one.
pub fn new(parent: &Path, name: &str, lang: Lang) -> Result<PathBuf, NewError> {
    if !valid_name(name) {
        return Err(NewError::BadName(name.to_string()));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(NewError::Exists(dir));
    }
    let files = match lang {
        Lang::Python => python_files(name),
        Lang::Rust => rust_files(name),
    };
    for (path, contents) in files {
        write(&dir.join(path), &contents)?;
    }
    if lang == Lang::Python {
        write_python_sdk(&dir)?;
    }
    Ok(dir)
}

/// (Re)writes the embedded SDK into `DIR/.roost/sdk/roost`, so that plain `pytest` and
/// `roost build` use the SDK of this roost.
pub fn write_python_sdk(dir: &Path) -> Result<PathBuf, NewError> {
    let sdk = dir.join(PY_WORK_DIR).join("sdk");
    for (file, contents) in embedded::PYTHON_SDK {
        write(&sdk.join("roost").join(file), contents)?;
    }
    Ok(sdk)
}

fn write(path: &Path, contents: &str) -> Result<(), NewError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| NewError::Io(parent.to_path_buf(), e))?;
    }
    std::fs::write(path, contents).map_err(|e| NewError::Io(path.to_path_buf(), e))
}

fn python_files(name: &str) -> Vec<(String, String)> {
    let module = module_name(name);
    let class = type_name(name);
    vec![
        (PROJECT_FILE.into(), project_file(name, "python")),
        (
            format!("{module}.py"),
            format!(
                r#""""The {name} plugin: `!roll NdM` rolls dice, `!last` tells the last roll."""

import random

from roost import Plugin, command, kv


class {class}(Plugin):
    @command(usage="NdM", help="roll dice")
    def roll(self, ctx, spec: str):
        count, _, sides = spec.lower().partition("d")
        if not (count.isdigit() and sides.isdigit() and 1 <= int(count) <= 100 and int(sides) >= 1):
            return f"can't roll {{spec!r}}: write NdM, e.g. 2d6"
        total = sum(random.randint(1, int(sides)) for _ in range(int(count)))
        kv.set_json("last", {{"by": ctx.identity, "total": total}})
        return f"{{ctx.identity}} rolled {{spec}}: {{total}}"

    @command(help="the last roll")
    def last(self, ctx):
        last = kv.get_json("last")
        return "nobody rolled yet" if last is None else f"{{last['by']}} rolled {{last['total']}}"
"#
            ),
        ),
        (
            format!("test_{module}.py"),
            format!(
                r#""""Unit tests under plain CPython: `pytest` in this folder, no wasm."""

from roost.testing import PluginTest

from {module} import {class}


def test_roll_answers_and_remembers_the_total():
    with PluginTest({class}) as t:
        assert t.command("!roll 1d1") == "console rolled 1d1: 1"
        assert t.host.kv_json("last") == {{"by": "console", "total": 1}}
        assert t.command("!last") == "console rolled 1"


def test_roll_without_dice_answers_the_usage_line():
    with PluginTest({class}) as t:
        assert t.command("!roll") == "usage: !roll NdM"
"#
            ),
        ),
        (
            "conftest.py".into(),
            "# The roost SDK `roost new` and `roost build` keep in .roost/sdk, on pytest's path.\n\
             import os\nimport sys\n\n\
             sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), \".roost\", \"sdk\"))\n"
                .into(),
        ),
        (".gitignore".into(), ".roost/\n__pycache__/\n".into()),
        (
            "README.md".into(),
            format!(
                "# {name}\n\nA roost plugin in Python.\n\n\
                 - `pytest`: unit tests against the SDK's fake host (`roost.testing`), no wasm.\n\
                 - `roost build`: the component, `.roost/{name}.wasm` (the first build installs \
                 componentize-py into roost's cache).\n\
                 - `roost build --install`: also copies it into the daemon's plugins folder; a \
                 running daemon loads it within a second.\n\n\
                 Python plugins need more memory than Rust ones: the host gives them \
                 `python_memory_mb` from `[limits]` (128 MiB unless the config says otherwise), \
                 or `memory_mb` from the plugin's own `[plugins.{name}.limits]`.\n"
            ),
        ),
    ]
}

fn rust_files(name: &str) -> Vec<(String, String)> {
    let class = type_name(name);
    // The SDK crate is not on crates.io yet: point at the repository this roost was built
    // from.
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
    let sdk = sdk.canonicalize().unwrap_or(sdk);
    vec![
        (PROJECT_FILE.into(), project_file(name, "rust")),
        (
            "Cargo.toml".into(),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
                 [lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n\
                 [dependencies]\nroost-plugin = {{ path = {:?} }}\n\n\
                 [profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\npanic = \"abort\"\ncodegen-units = 1\n",
                sdk.display().to_string()
            ),
        ),
        (
            ".cargo/config.toml".into(),
            "[build]\ntarget = \"wasm32-wasip2\"\n".into(),
        ),
        (
            "src/lib.rs".into(),
            format!(
                r#"//! The {name} plugin: `!hello [name]` greets.

use roost_plugin::prelude::*;

#[derive(Default)]
struct {class};

impl Plugin for {class} {{
    fn init(&mut self, _cfg: Config) -> Result<Manifest, String> {{
        Ok(Manifest::new("{name}", env!("CARGO_PKG_VERSION"))
            .command(CommandSpec::new("hello", "!hello [name]", "Say hello")))
    }}

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {{
        Ok(greet(&cmd))
    }}
}}

/// The answer to `!hello`, apart from the exports so that tests can call it.
pub fn greet(cmd: &Command) -> Reply {{
    Reply::text(format!("hello, {{}}!", cmd.arg(0).unwrap_or("world")))
}}

export_plugin!({class});

#[cfg(test)]
mod tests;
"#
            ),
        ),
        (
            "src/tests.rs".into(),
            "//! `cargo test --target x86_64-unknown-linux-gnu` (your host triple): no wasm.\n\n\
             use roost_plugin::Command;\n\n\
             #[test]\nfn hello_greets_by_name() {\n    \
             let reply = super::greet(&Command::new(\"hello\", [\"Ada\"]));\n    \
             assert_eq!(reply.to_plain_text(), \"hello, Ada!\");\n}\n"
                .into(),
        ),
        (".gitignore".into(), "/target\n".into()),
        (
            "README.md".into(),
            format!(
                "# {name}\n\nA roost plugin in Rust.\n\n\
                 - `cargo test --target $(rustc -vV | sed -n 's/^host: //p')`: unit tests.\n\
                 - `roost build`: the component (needs `rustup target add wasm32-wasip2`).\n\
                 - `roost build --install`: also copies it into the daemon's plugins folder.\n"
            ),
        ),
    ]
}

fn project_file(name: &str, lang: &str) -> String {
    format!(
        "# Read by `roost build`: the plugin's name (its .wasm file stem) and language.\n\
         name = \"{name}\"\nlang = \"{lang}\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_lowercase_words_joined_by_dashes() {
        assert!(valid_name("dice") && valid_name("dice-bot2"));
        for bad in ["", "Dice", "2dice", "dice_bot", "dice-", "../x", "a b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert_eq!(type_name("dice-bot"), "DiceBot");
        assert_eq!(module_name("dice-bot"), "dice_bot");
    }

    #[test]
    fn a_python_project_has_plugin_test_readme_marker_and_sdk() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = new(tmp.path(), "dice", Lang::Python).unwrap();
        for f in [
            "dice.py",
            "test_dice.py",
            "README.md",
            "roost-plugin.toml",
            "conftest.py",
            ".roost/sdk/roost/__init__.py",
        ] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        assert!(matches!(
            new(tmp.path(), "dice", Lang::Python),
            Err(NewError::Exists(_))
        ));
    }

    #[test]
    fn a_rust_project_has_crate_target_and_tests() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = new(tmp.path(), "hi-there", Lang::Rust).unwrap();
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"hi-there\"") && cargo.contains("roost-plugin"));
        assert!(dir.join(".cargo/config.toml").is_file() && dir.join("src/tests.rs").is_file());
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("struct HiThere;"));
    }
}
