//! `roost build [DIR] [--install]`: builds the plugin project in DIR (default `.`) into a
//! component, and with `--install` copies it into the daemon's plugins folder, where a
//! running daemon picks it up within a second.
//!
//! - Python (`roost-plugin.toml` says `lang = "python"`): checks every `.py` file's syntax
//!   with the machine's `python3` (errors say file:line:column), writes the embedded SDK
//!   and WIT into `DIR/.roost`, then runs componentize-py from a venv roost manages under
//!   the user's cache dir (`$XDG_CACHE_HOME/roost/python` or `~/.cache/roost/python`),
//!   created with a pinned `componentize-py` the first time. Output: `DIR/.roost/NAME.wasm`.
//! - Rust (`lang = "rust"`, or a `Cargo.toml` alone): `cargo build --release --target
//!   wasm32-wasip2`. Output: `target/wasm32-wasip2/release/NAME.wasm`.
//!
//! A missing toolchain is one line saying how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::embedded;
use super::new::{Lang, PROJECT_FILE, PY_WORK_DIR, module_name, write_python_sdk};

/// The componentize-py release roost builds with: its CPython (3.14) and its bindings
/// generator are what the SDK is tested against (see PLUGINS.md).
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The Python module componentize-py runs: imports the SDK's WIT layer and the plugin, and
/// names the export class.
const ENTRY_MODULE: &str = "roost_entry";

/// Why a build produced no component.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "{0} is not a plugin project: no {PROJECT_FILE} or Cargo.toml (start one with `roost new NAME --lang python`)"
    )]
    NoProject(PathBuf),
    #[error("{0}: {1}")]
    BadProject(PathBuf, String),
    #[error("{tool} not found: {hint}")]
    MissingTool {
        tool: &'static str,
        hint: &'static str,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("{what} failed:\n{output}")]
    Failed { what: String, output: String },
    #[error(transparent)]
    New(#[from] super::new::NewError),
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
}

/// A built component.
#[derive(Debug)]
pub struct Built {
    pub name: String,
    pub wasm: PathBuf,
    pub elapsed: Duration,
}

/// The project in `dir`: its plugin name and language.
pub fn project(dir: &Path) -> Result<(String, Lang), BuildError> {
    #[derive(serde::Deserialize)]
    struct ProjectFile {
        name: String,
        lang: Lang,
    }
    let marker = dir.join(PROJECT_FILE);
    if marker.is_file() {
        let text =
            std::fs::read_to_string(&marker).map_err(|e| BuildError::Io(marker.clone(), e))?;
        let p: ProjectFile = toml::from_str(&text)
            .map_err(|e| BuildError::BadProject(marker.clone(), e.to_string()))?;
        if !super::new::valid_name(&p.name) {
            return Err(BuildError::BadProject(
                marker,
                format!("`{}` is not a plugin name", p.name),
            ));
        }
        return Ok((p.name, p.lang));
    }
    let cargo = dir.join("Cargo.toml");
    if cargo.is_file() {
        let text = std::fs::read_to_string(&cargo).map_err(|e| BuildError::Io(cargo.clone(), e))?;
        let value: toml::Table = toml::from_str(&text)
            .map_err(|e| BuildError::BadProject(cargo.clone(), e.to_string()))?;
        let name = value
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| BuildError::BadProject(cargo.clone(), "no [package] name".into()))?;
        return Ok((name.to_string(), Lang::Rust));
    }
    Err(BuildError::NoProject(dir.to_path_buf()))
}

/// Builds the project in `dir`.
pub fn build(dir: &Path) -> Result<Built, BuildError> {
    let started = Instant::now();
    let (name, lang) = project(dir)?;
    let wasm = match lang {
        Lang::Python => build_python(dir, &name)?,
        Lang::Rust => build_rust(dir, &name)?,
    };
    Ok(Built {
        name,
        wasm,
        elapsed: started.elapsed(),
    })
}

/// Copies the component into `plugins_dir` as `NAME.wasm`, through a temporary file and a
/// rename so that the daemon's watch never loads half a file.
pub fn install(built: &Built, plugins_dir: &Path) -> Result<PathBuf, BuildError> {
    std::fs::create_dir_all(plugins_dir)
        .map_err(|e| BuildError::Io(plugins_dir.to_path_buf(), e))?;
    let target = plugins_dir.join(format!("{}.wasm", built.name));
    let partial = plugins_dir.join(format!(".{}.wasm.partial", built.name));
    std::fs::copy(&built.wasm, &partial).map_err(|e| BuildError::Io(partial.clone(), e))?;
    std::fs::rename(&partial, &target).map_err(|e| BuildError::Io(target.clone(), e))?;
    Ok(target)
}

/// Where roost keeps its componentize-py venv.
pub fn python_cache_dir() -> Option<PathBuf> {
    super::locate::user_cache_dir().map(|d| d.join("python"))
}

fn build_python(dir: &Path, name: &str) -> Result<PathBuf, BuildError> {
    let python = which::which("python3").map_err(|_| BuildError::MissingTool {
        tool: "python3",
        hint: "install Python 3.11 or newer with its venv module (e.g. `apt install python3 python3-venv`)",
    })?;
    check_syntax(&python, dir)?;
    let componentize = componentize_py(&python)?;
    let work = dir.join(PY_WORK_DIR);
    write_python_sdk(dir)?;
    for (file, contents) in embedded::WIT {
        write(&work.join("wit").join(file), contents)?;
    }
    let module = module_name(name);
    write(
        &work.join("entry").join(format!("{ENTRY_MODULE}.py")),
        &format!(
            "# Written by `roost build`: the component's entry. What this imports at build time\n\
             # is all the component has: the SDK's WIT layer and the plugin.\n\
             import roost._wit\nimport {module}\n\n\
             WitWorld = roost._wit.export({module}, {name:?})\n"
        ),
    )?;
    let wasm = work.join(format!("{name}.wasm"));
    let out = run(
        Command::new(&componentize)
            .current_dir(dir)
            .args([
                "-d",
                ".roost/wit",
                "-w",
                "plugin",
                "componentize",
                ENTRY_MODULE,
            ])
            .args(["-p", ".roost/entry", "-p", ".", "-p", ".roost/sdk", "-o"])
            .arg(&wasm),
        "componentize-py",
    )?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            what: "componentize-py".into(),
            output: tail(&out),
        });
    }
    Ok(wasm)
}

/// Compiles every `.py` file at the project's top level with `python3`, so that a syntax
/// error reads as `dice.py:3:9: SyntaxError: …` rather than as componentize-py's trace.
fn check_syntax(python: &Path, dir: &Path) -> Result<(), BuildError> {
    const SCRIPT: &str = "import sys\n\
        bad = 0\n\
        for path in sys.argv[1:]:\n    \
            try:\n        \
                compile(open(path, 'rb').read(), path, 'exec')\n    \
            except SyntaxError as e:\n        \
                bad += 1\n        \
                print(f'{e.filename}:{e.lineno}:{e.offset}: {type(e).__name__}: {e.msg}')\n\
        sys.exit(1 if bad else 0)\n";
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| BuildError::Io(dir.to_path_buf(), e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".py"))
        .collect();
    files.sort();
    let out = run(
        Command::new(python)
            .current_dir(dir)
            .args(["-c", SCRIPT])
            .args(&files),
        "python3",
    )?;
    if out.status.success() {
        return Ok(());
    }
    Err(BuildError::Syntax(
        String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
    ))
}

/// The componentize-py of roost's venv, created (venv, then pip install) the first time.
/// A stamp file marks a complete install, so an interrupted one is started over.
fn componentize_py(python: &Path) -> Result<PathBuf, BuildError> {
    let cache = python_cache_dir().ok_or(BuildError::MissingTool {
        tool: "a cache directory",
        hint: "set HOME or XDG_CACHE_HOME",
    })?;
    let venv = cache.join(COMPONENTIZE_PY.replace("==", "-"));
    let exe = venv.join("bin/componentize-py");
    let stamp = venv.join("roost-installed");
    if stamp.is_file() && exe.is_file() {
        return Ok(exe);
    }
    std::fs::create_dir_all(&cache).map_err(|e| BuildError::Io(cache.clone(), e))?;
    // Two builds at once on a fresh machine would install into the same venv: the second
    // waits for the first, then finds it done.
    let lock_path = venv.with_extension("lock");
    let lock =
        std::fs::File::create(&lock_path).map_err(|e| BuildError::Io(lock_path.clone(), e))?;
    lock.lock()
        .map_err(|e| BuildError::Io(lock_path.clone(), e))?;
    if stamp.is_file() && exe.is_file() {
        return Ok(exe);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(|e| BuildError::Io(venv.clone(), e))?;
    }
    std::fs::create_dir_all(&cache).map_err(|e| BuildError::Io(cache.clone(), e))?;
    eprintln!(
        "roost build: installing {COMPONENTIZE_PY} into {} (once)",
        venv.display()
    );
    let out = run(
        Command::new(python).arg("-m").arg("venv").arg(&venv),
        "python3",
    )?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            what: "python3 -m venv (on Debian and Ubuntu: `apt install python3-venv`)".into(),
            output: tail(&out),
        });
    }
    let out = run(
        Command::new(venv.join("bin/python")).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            COMPONENTIZE_PY,
        ]),
        "pip",
    )?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            what: format!("pip install {COMPONENTIZE_PY}"),
            output: tail(&out),
        });
    }
    write(&stamp, COMPONENTIZE_PY)?;
    Ok(exe)
}

fn build_rust(dir: &Path, name: &str) -> Result<PathBuf, BuildError> {
    let cargo = which::which("cargo").map_err(|_| BuildError::MissingTool {
        tool: "cargo",
        hint: "install Rust from https://rustup.rs, then `rustup target add wasm32-wasip2`",
    })?;
    let out = run(
        Command::new(cargo).current_dir(dir).args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
        ]),
        "cargo",
    )?;
    if !out.status.success() {
        let output = tail(&out);
        if output.contains("wasm32-wasip2") && output.contains("target may not be installed") {
            return Err(BuildError::MissingTool {
                tool: "the wasm32-wasip2 target",
                hint: "run `rustup target add wasm32-wasip2`",
            });
        }
        return Err(BuildError::Failed {
            what: "cargo build".into(),
            output,
        });
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    Ok(target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", module_name(name))))
}

fn run(cmd: &mut Command, what: &'static str) -> Result<Output, BuildError> {
    cmd.output().map_err(|e| BuildError::Failed {
        what: what.into(),
        output: e.to_string(),
    })
}

/// The end of a tool's output: what it says last is what went wrong.
fn tail(out: &Output) -> String {
    const KEEP: usize = 40;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(KEEP)..].join("\n")
}

fn write(path: &Path, contents: &str) -> Result<(), BuildError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| BuildError::Io(parent.to_path_buf(), e))?;
    }
    std::fs::write(path, contents).map_err(|e| BuildError::Io(path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_a_project_says_how_to_start_one() {
        let tmp = tempfile::tempdir().unwrap();
        let e = build(tmp.path()).unwrap_err();
        assert!(
            e.to_string().contains("roost new NAME --lang python"),
            "{e}"
        );
    }

    #[test]
    fn the_project_file_names_the_plugin_and_its_language() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = super::super::new::new(tmp.path(), "dice", Lang::Python).unwrap();
        assert_eq!(project(&dir).unwrap(), ("dice".to_string(), Lang::Python));
    }

    #[test]
    fn a_syntax_error_is_reported_with_file_and_line() {
        let Ok(python) = which::which("python3") else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("ok.py"), "x = 1\n").unwrap();
        std::fs::write(tmp.path().join("bad.py"), "x = 1\ndef f(:\n").unwrap();
        let e = check_syntax(&python, tmp.path()).unwrap_err().to_string();
        assert!(e.starts_with("bad.py:2:7: SyntaxError: "), "{e}");
    }
}
