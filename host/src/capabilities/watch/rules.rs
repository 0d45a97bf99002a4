//! Which paths under a watched directory are dropped: Git's ignore rules, `.ignore` files,
//! `.git` itself and the plugin's own globs.
//!
//! The matchers are the `ignore` crate's (`Gitignore`, the globs ripgrep uses); the order
//! they are consulted in mirrors that crate's directory walker: the plugin's globs first,
//! then `.ignore` files (deepest directory first), then `.gitignore` files (deepest first),
//! then the repository's `.git/info/exclude`, then the global excludes file
//! (`core.excludesFile`). The first file with an opinion decides, and a directory that is
//! ignored hides everything below it, as in Git. `.gitignore` files apply even outside a
//! Git work tree, so a project that is not (yet) a repository behaves the same.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The rules of one watched directory. Per-directory ignore files are read when first
/// needed and re-read after [`Rules::forget`] (an ignore file changed).
pub struct Rules {
    root: PathBuf,
    /// The top of the enclosing Git work tree, or `root` when there is none: ignore files
    /// between it and `root` apply too.
    top: PathBuf,
    plugin: Gitignore,
    exclude: Gitignore,
    global: Gitignore,
    dirs: HashMap<PathBuf, DirFiles>,
}

/// The ignore files of one directory.
struct DirFiles {
    ignore: Gitignore,
    gitignore: Gitignore,
}

/// A plugin glob that is not valid gitignore syntax.
#[derive(Debug, thiserror::Error)]
#[error("ignore glob `{glob}`: {reason}")]
pub struct BadGlob {
    pub glob: String,
    pub reason: String,
}

impl Rules {
    /// Rules for the canonical directory `root`, with the plugin's `globs` (gitignore syntax,
    /// anchored at `root`).
    pub fn new(root: &Path, globs: &[String]) -> Result<Self, BadGlob> {
        let mut builder = GitignoreBuilder::new(root);
        // Git reads an unclosed `[` literally; a plugin's glob with one is a mistake to
        // report, not a file name to match.
        builder.allow_unclosed_class(false);
        for glob in globs {
            builder.add_line(None, glob).map_err(|e| BadGlob {
                glob: glob.clone(),
                reason: e.to_string(),
            })?;
        }
        let plugin = builder.build().map_err(|e| BadGlob {
            glob: globs.join(" "),
            reason: e.to_string(),
        })?;
        let repo = root
            .ancestors()
            .find(|dir| dir.join(".git").exists())
            .map(Path::to_path_buf);
        let top = repo.clone().unwrap_or_else(|| root.to_path_buf());
        let exclude = match &repo {
            Some(repo) => Gitignore::new(repo.join(".git/info/exclude")).0,
            None => Gitignore::empty(),
        };
        let (global, err) = GitignoreBuilder::new(&top).build_global();
        if let Some(err) = err {
            tracing::debug!("global git excludes: {err}");
        }
        Ok(Self {
            root: root.to_path_buf(),
            top,
            plugin,
            exclude,
            global,
            dirs: HashMap::new(),
        })
    }

    /// The directory these rules are for.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `path` (absolute, under the root) is dropped. `is_dir` says whether the path
    /// itself is a directory; every component above it is one.
    pub fn is_ignored(&mut self, path: &Path, is_dir: bool) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return true;
        };
        let parts: Vec<Component<'_>> = rel.components().collect();
        let mut at = self.root.clone();
        for (i, part) in parts.iter().enumerate() {
            let Component::Normal(name) = part else {
                return true;
            };
            if *name == ".git" {
                return true;
            }
            at.push(name);
            let dir = i + 1 < parts.len() || is_dir;
            if self.decide(&at, dir).is_ignore() {
                return true;
            }
        }
        false
    }

    /// Drops the cached ignore files of `dir`, after one of them changed.
    pub fn forget(&mut self, dir: &Path) {
        self.dirs.remove(dir);
    }

    /// Whether `name` is a file these rules read, so a change to it must refresh them.
    pub fn is_rules_file(name: &str) -> bool {
        name == ".gitignore" || name == ".ignore"
    }

    /// The first opinion about `path` itself, in the walker's order.
    fn decide(&mut self, path: &Path, is_dir: bool) -> Match<()> {
        let found = self.plugin.matched(path, is_dir);
        if !found.is_none() {
            return found.map(|_| ());
        }
        let dirs: Vec<PathBuf> = path
            .ancestors()
            .skip(1)
            .take_while(|d| d.starts_with(&self.top))
            .map(Path::to_path_buf)
            .collect();
        for dot_ignore in [true, false] {
            for dir in &dirs {
                let files = self.dirs.entry(dir.clone()).or_insert_with(|| DirFiles {
                    ignore: Gitignore::new(dir.join(".ignore")).0,
                    gitignore: Gitignore::new(dir.join(".gitignore")).0,
                });
                let file = if dot_ignore {
                    &files.ignore
                } else {
                    &files.gitignore
                };
                let found = file.matched(path, is_dir);
                if !found.is_none() {
                    return found.map(|_| ());
                }
            }
        }
        let found = self.exclude.matched(path, is_dir);
        if !found.is_none() {
            return found.map(|_| ());
        }
        self.global.matched(path, is_dir).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    fn rules(dir: &Path, globs: &[&str]) -> Rules {
        let root = std::fs::canonicalize(dir).expect("canonical");
        let globs: Vec<String> = globs.iter().map(|g| g.to_string()).collect();
        Rules::new(&root, &globs).expect("rules")
    }

    #[test]
    fn nested_gitignores_apply_below_their_directory_and_negations_win_deeper() {
        let dir = tree(&[
            (".gitignore", "*.log\nbuild/\n"),
            ("pkg/.gitignore", "!keep.log\ngen_*.py\n"),
        ]);
        let mut r = rules(dir.path(), &[]);
        let root = r.root().to_path_buf();
        assert!(r.is_ignored(&root.join("a.log"), false));
        assert!(!r.is_ignored(&root.join("a.py"), false));
        assert!(
            r.is_ignored(&root.join("build/x.py"), false),
            "ignored dir hides its files"
        );
        assert!(r.is_ignored(&root.join("pkg/gen_1.py"), false));
        assert!(
            !r.is_ignored(&root.join("gen_1.py"), false),
            "only below pkg/"
        );
        assert!(!r.is_ignored(&root.join("pkg/keep.log"), false));
        assert!(r.is_ignored(&root.join(".git/index"), false));
    }

    #[test]
    fn info_exclude_dot_ignore_and_plugin_globs_are_honoured() {
        let dir = tree(&[
            (".git/info/exclude", "secret.py\n"),
            (".ignore", "vendor/\n"),
            (".gitignore", "!vendor/\n"),
        ]);
        let mut r = rules(dir.path(), &["*.swp", ".#*", "!important.swp"]);
        let root = r.root().to_path_buf();
        assert!(r.is_ignored(&root.join("secret.py"), false));
        assert!(
            r.is_ignored(&root.join("vendor/lib.py"), false),
            ".ignore beats .gitignore, as in ripgrep"
        );
        assert!(r.is_ignored(&root.join("src/.mod.py.swp"), false));
        assert!(r.is_ignored(&root.join(".#mod.py"), false));
        assert!(!r.is_ignored(&root.join("important.swp"), false));
        assert!(!r.is_ignored(&root.join("src/mod.py"), false));
    }

    #[test]
    fn gitignores_above_the_watched_directory_apply_inside_a_repository() {
        let dir = tree(&[
            (".git/HEAD", "ref"),
            (".gitignore", "*.tmp\n"),
            ("sub/a.py", ""),
        ]);
        let mut r = rules(&dir.path().join("sub"), &[]);
        let root = r.root().to_path_buf();
        assert!(r.is_ignored(&root.join("x.tmp"), false));
        assert!(!r.is_ignored(&root.join("a.py"), false));
    }

    #[test]
    fn a_changed_gitignore_is_read_again_after_forget() {
        let dir = tree(&[(".gitignore", "")]);
        let mut r = rules(dir.path(), &[]);
        let root = r.root().to_path_buf();
        assert!(!r.is_ignored(&root.join("a.out"), false));
        std::fs::write(root.join(".gitignore"), "*.out\n").expect("write");
        r.forget(&root);
        assert!(r.is_ignored(&root.join("a.out"), false));
    }

    #[test]
    fn a_bad_plugin_glob_is_an_error_naming_it() {
        let dir = tree(&[]);
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        let e = Rules::new(&root, &["a[".to_string()])
            .err()
            .expect("bad glob refused");
        assert!(e.to_string().contains("a["), "{e}");
    }
}
