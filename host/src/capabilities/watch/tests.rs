//! The watch capability on real directories with real inotify (and real polling): no wasm,
//! the `Host` methods called on a context as the runtime would.

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::runtime::bindings::roost::plugin::types::ChangeKind;
use watch::Host as _;

/// Longest a test waits for a batch; only a failing test waits this long.
const PATIENCE: Duration = Duration::from_secs(20);

struct Fixture {
    dir: tempfile::TempDir,
    ctx: WatchCtx,
    rx: mpsc::Receiver<Event>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("project/src")).expect("mkdir");
    std::fs::write(dir.path().join("project/src/a.py"), "x = 1\n").expect("write");
    let (tx, rx) = mpsc::channel(64);
    let grant = WatchGrant {
        roots: vec![dir.path().join("project")],
        base: dir.path().to_path_buf(),
    };
    let ctx = WatchCtx::new("t", grant, tx);
    Fixture { dir, ctx, rx }
}

impl Fixture {
    fn project(&self) -> std::path::PathBuf {
        self.dir.path().join("project")
    }

    async fn subscribe(&mut self, ignore: &[&str], debounce_ms: u32) -> u64 {
        let ignore = ignore.iter().map(|g| g.to_string()).collect();
        let id = self
            .ctx
            .subscribe(vec!["project".into()], ignore, debounce_ms, 0)
            .await
            .expect("no trap")
            .expect("subscribed");
        assert!(self.ctx.ready(id).await, "subscription set up");
        id
    }

    /// The next batch, with its changes as (path, kind).
    async fn batch(&mut self) -> (u64, Vec<(String, ChangeKind)>, bool) {
        loop {
            let event = tokio::time::timeout(PATIENCE, self.rx.recv())
                .await
                .expect("a batch in time")
                .expect("mailbox open");
            if let Event::FilesChanged(b) = event {
                for c in &b.changes {
                    assert_eq!(c.root, "project");
                }
                let changes = b.changes.into_iter().map(|c| (c.path, c.kind)).collect();
                return (b.subscription, changes, b.overflow);
            }
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

#[tokio::test]
async fn a_save_arrives_as_one_batch_with_its_path_relative_to_the_root() {
    let mut f = fixture();
    let id = f.subscribe(&[], 50).await;
    write(&f.project().join("src/a.py"), "x = 2\n");
    let (sub, changes, overflow) = f.batch().await;
    assert_eq!(sub, id);
    assert!(!overflow);
    assert_eq!(
        changes,
        vec![("src/a.py".to_string(), ChangeKind::Modified)]
    );
}

#[tokio::test]
async fn a_burst_of_saves_is_one_batch() {
    let mut f = fixture();
    // The debounce is far longer than the burst, so even a loaded machine sees one quiet
    // period only after the last save.
    f.subscribe(&[], 500).await;
    for i in 0..20 {
        write(&f.project().join("src/a.py"), &format!("x = {i}\n"));
        write(&f.project().join(format!("src/m{}.py", i % 3)), "y = 1\n");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, changes, _) = f.batch().await;
    assert_eq!(
        changes,
        vec![
            ("src/a.py".to_string(), ChangeKind::Modified),
            ("src/m0.py".to_string(), ChangeKind::Created),
            ("src/m1.py".to_string(), ChangeKind::Created),
            ("src/m2.py".to_string(), ChangeKind::Created),
        ]
    );
    write(&f.project().join("src/after.py"), "");
    let (_, changes, _) = f.batch().await;
    assert_eq!(
        changes,
        vec![("src/after.py".to_string(), ChangeKind::Created)]
    );
}

#[tokio::test]
async fn ignored_files_swap_files_and_git_internals_never_appear() {
    let mut f = fixture();
    write(&f.project().join(".gitignore"), "*.log\nbuild/\n");
    std::fs::create_dir_all(f.project().join("build")).expect("mkdir");
    std::fs::create_dir_all(f.project().join(".git")).expect("mkdir");
    f.subscribe(&["*.swp", "*~"], 50).await;
    write(&f.project().join("run.log"), "noise");
    write(&f.project().join("build/out.py"), "noise");
    write(&f.project().join("src/.a.py.swp"), "noise");
    write(&f.project().join("src/a.py~"), "noise");
    write(&f.project().join(".git/index"), "noise");
    // A vim-style save: the swap file appears and goes, the file is written.
    write(&f.project().join("src/4913"), "");
    std::fs::remove_file(f.project().join("src/4913")).expect("rm");
    write(&f.project().join("src/a.py"), "x = 3\n");
    let (_, changes, _) = f.batch().await;
    assert_eq!(
        changes,
        vec![("src/a.py".to_string(), ChangeKind::Modified)]
    );
}

#[tokio::test]
async fn directories_created_later_are_watched_and_their_files_reported() {
    let mut f = fixture();
    f.subscribe(&[], 50).await;
    std::fs::create_dir_all(f.project().join("pkg/deep")).expect("mkdir");
    write(&f.project().join("pkg/deep/new.py"), "");
    let mut seen = Vec::new();
    while !seen.contains(&("pkg/deep/new.py".to_string(), ChangeKind::Created)) {
        seen.extend(f.batch().await.1);
    }
    // Now the new directory has its own watch: a later save in it is seen.
    write(&f.project().join("pkg/deep/new.py"), "z = 1\n");
    let (_, changes, _) = f.batch().await;
    assert_eq!(
        changes,
        vec![("pkg/deep/new.py".to_string(), ChangeKind::Modified)]
    );
}

#[tokio::test]
async fn a_changed_gitignore_takes_effect_for_the_next_changes() {
    let mut f = fixture();
    f.subscribe(&[], 50).await;
    write(&f.project().join(".gitignore"), "*.tmp\n");
    let (_, changes, _) = f.batch().await;
    assert_eq!(
        changes,
        vec![(".gitignore".to_string(), ChangeKind::Created)]
    );
    write(&f.project().join("x.tmp"), "");
    write(&f.project().join("src/a.py"), "x = 4\n");
    let (_, changes, _) = f.batch().await;
    assert_eq!(
        changes,
        vec![("src/a.py".to_string(), ChangeKind::Modified)]
    );
}

#[tokio::test]
async fn polling_reports_the_same_changes() {
    let (tx, mut rx) = mpsc::channel(64);
    let f = fixture();
    let grant = WatchGrant {
        roots: vec![f.project()],
        base: f.dir.path().to_path_buf(),
    };
    let mut ctx = WatchCtx::new("t", grant, tx).polling();
    let id = ctx
        .subscribe(vec!["project".into()], vec![], 50, 0)
        .await
        .expect("no trap")
        .expect("subscribed");
    assert!(ctx.ready(id).await);
    // Polling compares modification times: make sure the new one differs.
    tokio::time::sleep(Duration::from_millis(20)).await;
    write(&f.project().join("src/b.py"), "");
    let event = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("a batch in time")
        .expect("open");
    let Event::FilesChanged(batch) = event else {
        panic!("expected a batch, got {event:?}");
    };
    assert_eq!(batch.changes.len(), 1, "{batch:?}");
    assert_eq!(batch.changes[0].path, "src/b.py");
    assert_eq!(batch.changes[0].kind, ChangeKind::Created);
}

#[tokio::test]
async fn paths_outside_the_grant_are_refused_even_through_symlinks_and_dotdot() {
    let mut f = fixture();
    let outside = f.dir.path().join("elsewhere");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, f.project().join("link")).expect("symlink");

    for path in ["elsewhere", "project/../elsewhere", "project/link", "/"] {
        let got = f
            .ctx
            .subscribe(vec![path.into()], vec![], 50, 0)
            .await
            .expect("no trap");
        match got {
            Err(GuestError::AccessDenied(why)) => {
                assert!(why.contains("watch_roots"), "{why}");
            }
            other => panic!("{path}: expected access denied, got {other:?}"),
        }
    }
    let got = f
        .ctx
        .subscribe(vec!["project/src/a.py".into()], vec![], 50, 0)
        .await
        .expect("no trap");
    assert!(
        matches!(got, Err(GuestError::InvalidArgument(_))),
        "{got:?}"
    );
    let got = f
        .ctx
        .subscribe(vec!["project/missing".into()], vec![], 50, 0)
        .await
        .expect("no trap");
    assert!(matches!(got, Err(GuestError::NotFound(_))), "{got:?}");
    let got = f
        .ctx
        .subscribe(vec!["project".into()], vec!["a[".into()], 50, 0)
        .await
        .expect("no trap");
    assert!(
        matches!(got, Err(GuestError::InvalidArgument(_))),
        "{got:?}"
    );
    // Inside the grant, `..` that stays inside is fine.
    let got = f
        .ctx
        .subscribe(vec!["project/src/..".into()], vec![], 50, 0)
        .await
        .expect("no trap");
    assert!(got.is_ok(), "{got:?}");
}

#[tokio::test]
async fn a_symlinked_directory_inside_the_root_is_not_followed() {
    let mut f = fixture();
    let outside = f.dir.path().join("elsewhere");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, f.project().join("link")).expect("symlink");
    f.subscribe(&[], 50).await;
    write(&outside.join("secret.py"), "");
    write(&f.project().join("src/a.py"), "x = 5\n");
    let (_, changes, _) = f.batch().await;
    assert_eq!(
        changes,
        vec![("src/a.py".to_string(), ChangeKind::Modified)]
    );
}

#[tokio::test]
async fn nothing_is_granted_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, _rx) = mpsc::channel(4);
    let grant = WatchGrant {
        roots: vec![],
        base: dir.path().to_path_buf(),
    };
    let mut ctx = WatchCtx::new("t", grant, tx);
    let got = ctx
        .subscribe(vec![".".into()], vec![], 50, 0)
        .await
        .expect("no trap");
    assert!(matches!(got, Err(GuestError::AccessDenied(_))), "{got:?}");
}

#[tokio::test]
async fn unsubscribing_or_dropping_the_context_stops_the_batches() {
    let mut f = fixture();
    let id = f.subscribe(&[], 50).await;
    f.ctx
        .unsubscribe(id)
        .await
        .expect("no trap")
        .expect("known id");
    assert!(matches!(
        f.ctx.unsubscribe(id).await.expect("no trap"),
        Err(GuestError::NotFound(_))
    ));
    f.subscribe(&[], 50).await;
    let Fixture { dir, ctx, mut rx } = f;
    drop(ctx);
    write(&dir.path().join("project/src/a.py"), "x = 6\n");
    // The tasks held the only senders: once they are gone the mailbox closes, empty.
    let closed = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("closed in time");
    assert!(closed.is_none(), "{closed:?}");
}

#[tokio::test]
async fn bad_arguments_and_too_many_subscriptions_are_refused() {
    let mut f = fixture();
    let got = f
        .ctx
        .subscribe(vec![], vec![], 50, 0)
        .await
        .expect("no trap");
    assert!(matches!(got, Err(GuestError::InvalidArgument(_))));
    let got = f
        .ctx
        .subscribe(vec!["project".into()], vec![], MAX_WAIT_MS + 1, 0)
        .await
        .expect("no trap");
    assert!(matches!(got, Err(GuestError::InvalidArgument(_))));
    for _ in 0..MAX_SUBSCRIPTIONS {
        f.ctx
            .subscribe(vec!["project".into()], vec![], 50, 0)
            .await
            .expect("no trap")
            .expect("subscribed");
    }
    let got = f
        .ctx
        .subscribe(vec!["project".into()], vec![], 50, 0)
        .await
        .expect("no trap");
    assert!(matches!(got, Err(GuestError::TooLarge(_))));
}

#[test]
fn a_flood_of_writes_is_translated_on_the_blocking_pool_not_a_worker() {
    use notify::event::{DataChange, ModifyKind};
    let write = || {
        Ok(
            notify::Event::new(notify::EventKind::Modify(ModifyKind::Data(DataChange::Any)))
                .add_path("/p/a.py".into()),
        )
    };
    let save: Vec<RawEvent> = (0..2).map(|_| write()).collect();
    assert!(
        read_here(&save),
        "a save's writes are read where they arrive"
    );
    let flood: Vec<RawEvent> = (0..=INLINE_EVENTS).map(|_| write()).collect();
    assert!(!read_here(&flood), "a flood goes to the pool");
}
