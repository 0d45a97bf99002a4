//! The store's own thread, and its group commit: work handed over while the thread was busy
//! runs together in one transaction, committed (and fsynced) once, and only then does
//! anyone waiting on it hear back. A burst of replies queued by a gateway, KV writes of
//! several plugins and the delivery worker's bookkeeping then share one fsync instead of
//! taking one each, and "committed before the caller hears Ok" still holds for every piece.
//!
//! Each piece of work keeps its own all-or-nothing: the store's transactions nest as
//! savepoints inside a group (see `begin_write`), so one that fails rolls back alone and
//! the rest of its group commits.

use std::sync::Weak;
use std::sync::mpsc::Receiver;

use super::{Shared, Store};

/// Most pieces of work run in one group: bounds how long the first of them waits for its
/// answer behind the others.
const MAX_GROUP: usize = 256;

/// Work for the store's thread. It returns what its caller hears once the group it ran in
/// has committed (or failed to), if anyone waits on it.
pub(super) type Job = Box<dyn FnOnce(&Store) -> Option<Reply> + Send>;

/// The answer to a caller: `Err` with the reason when the group the work ran in was not
/// committed, so its writes are gone.
pub(super) type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A piece of work as handed over: `ahead` when it commits itself without an fsync
/// (the delivery worker's bookkeeping) and its order against the writes handed over
/// just before it does not matter. It then runs before the group it arrived with, in
/// its own commit, instead of waiting inside the group for the group's fsync.
pub(super) struct Handed {
    pub(super) job: Job,
    pub(super) ahead: bool,
}

/// Serves `queue` until the last handle to the store (`shared`) is gone.
pub(super) fn serve(shared: Weak<Shared>, queue: Receiver<Handed>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let Some(inner) = shared.upgrade() else { break };
        let store = Store { inner };
        let (ahead, group): (Vec<Handed>, Vec<Handed>) = group.into_iter().partition(|h| h.ahead);
        for handed in ahead {
            if let Some(reply) = (handed.job)(&store) {
                reply(Ok(()));
            }
        }
        run_group(&store, group.into_iter().map(|h| h.job).collect());
    }
}

/// Runs `group` in one transaction when it has more than one piece; alone otherwise, or
/// when the transaction cannot be begun (another process holds the write lock past the
/// busy timeout: each piece then meets that on its own, as without grouping).
fn run_group(store: &Store, group: Vec<Job>) {
    // On Postgres each piece commits on its own (the server groups concurrent commits
    // itself).
    if group.len() > 1
        && let Some(conn) = store.sqlite()
    {
        // Bound first: the connection's lock must be let go before the pieces run.
        let began = conn.execute_batch("BEGIN IMMEDIATE");
        drop(conn);
        match began {
            Ok(()) => return run_in_transaction(store, group),
            Err(e) => tracing::warn!("store: cannot group {} writes: {e}", group.len()),
        }
    }
    for job in group {
        if let Some(reply) = job(store) {
            reply(Ok(()));
        }
    }
}

/// Runs the pieces of an open transaction, commits it, then answers their callers. If
/// SQLite ends the transaction on its own midway (an I/O error or a full disk rolls it
/// back), the pieces run so far are answered with that, and the rest run alone.
fn run_in_transaction(store: &Store, group: Vec<Job>) {
    let size = group.len();
    let mut waiting: Vec<Reply> = Vec::new();
    let mut open = true;
    for job in group {
        let reply = job(store);
        if open && store.sqlite().is_some_and(|c| c.is_autocommit()) {
            open = false;
            let why = "the database rolled back the transaction it ran in".to_string();
            tracing::error!("store: {why}; {size} writes grouped with it were not made");
            waiting.extend(reply);
            answer(waiting.drain(..), Err(why));
            continue;
        }
        match reply {
            Some(reply) if open => waiting.push(reply),
            Some(reply) => reply(Ok(())),
            None => {}
        }
    }
    if open {
        answer(waiting, commit(store, size));
    }
}

/// Commits the group's transaction; on failure rolls it back and says why.
fn commit(store: &Store, size: usize) -> Result<(), String> {
    let Some(conn) = store.sqlite() else {
        return Ok(());
    };
    let Err(e) = conn.execute_batch("COMMIT") else {
        return Ok(());
    };
    tracing::error!("store: a group of {size} writes failed to commit, none was made: {e}");
    if !conn.is_autocommit()
        && let Err(undo) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!("store: cannot roll back the failed group: {undo}");
    }
    Err(format!("cannot commit: {e}"))
}

fn answer(replies: impl IntoIterator<Item = Reply>, outcome: Result<(), String>) {
    for reply in replies {
        reply(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::{Sender, channel};
    use std::task::{Context, Waker};
    use std::time::Duration;

    use crate::store::{KvLimits, KvOp, KvWriteError, Store};

    /// Keeps the store's thread busy until the returned sender is dropped, so that work
    /// handed over meanwhile queues up and runs as one group.
    fn hold(store: &Store) -> Sender<()> {
        let (release, wait) = channel::<()>();
        let (started, running) = channel();
        store.submit(move |_| {
            let _ = started.send(());
            let _ = wait.recv_timeout(Duration::from_secs(10));
        });
        running
            .recv()
            .expect("the store's thread took the holding job");
        release
    }

    /// Polls a `Store::run` future once, which hands its work to the thread, and keeps it
    /// to await later.
    fn handed_over<F: Future>(run: F) -> Pin<Box<F>> {
        let mut run = Box::pin(run);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            run.as_mut().poll(&mut cx).is_pending(),
            "the thread is held"
        );
        run
    }

    fn file_store(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("roost.db")).expect("open")
    }

    fn count_commits(store: &Store) -> Arc<AtomicUsize> {
        let commits = Arc::new(AtomicUsize::new(0));
        let counter = commits.clone();
        store.conn().commit_hook(Some(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            false
        }));
        commits
    }

    #[tokio::test]
    async fn work_handed_over_together_commits_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = file_store(&dir);
        let commits = count_commits(&store);
        let release = hold(&store);
        let pushes: Vec<_> = (0..10)
            .map(|i| {
                handed_over(store.run(move |s| s.outbox_push("console", "p", &format!("m{i}"))))
            })
            .collect();
        drop(release);
        for push in pushes {
            push.await.expect("run").expect("push");
        }
        assert_eq!(commits.load(Ordering::SeqCst), 1, "ten pushes, one commit");
        assert_eq!(
            store.outbox_pending("console", 20).expect("pending").len(),
            10
        );
    }

    #[tokio::test]
    async fn a_caller_hears_back_only_once_its_write_is_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = file_store(&dir);
        let release = hold(&store);
        let push = handed_over(store.run(|s| s.outbox_push("console", "p", "first")));
        // Grouped after the push: keeps the group's transaction open for a while.
        store.submit(|_| std::thread::sleep(Duration::from_millis(300)));
        drop(release);
        push.await.expect("run").expect("push");
        let other = rusqlite::Connection::open(dir.path().join("roost.db")).expect("open");
        let seen: i64 = other
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
            .expect("count");
        assert_eq!(seen, 1, "committed, so another connection sees it");
    }

    #[tokio::test]
    async fn work_run_ahead_is_committed_and_answered_before_the_group_it_came_with() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = file_store(&dir);
        let queued = store.outbox_push("console", "p", "queued").expect("push");
        let release = hold(&store);
        let push = handed_over(store.run(|s| s.outbox_push("console", "p", "grouped")));
        let count = handed_over(store.try_run_ahead(move |s| s.outbox_attempt(queued)));
        // The group it arrived with waits on this until told.
        let (finish, group_waits) = channel::<()>();
        store.submit(move |_| {
            let _ = group_waits.recv_timeout(Duration::from_secs(10));
        });
        drop(release);
        assert!(count.await.expect("still queued"), "counted");
        let other = rusqlite::Connection::open(dir.path().join("roost.db")).expect("open");
        let seen = |sql: &str| -> i64 { other.query_row(sql, [], |r| r.get(0)).expect("query") };
        assert_eq!(
            seen("SELECT attempts FROM outbox WHERE payload = 'queued'"),
            1,
            "its own commit, seen by another connection"
        );
        assert_eq!(
            seen("SELECT COUNT(*) FROM outbox"),
            1,
            "the group's push is not committed yet"
        );
        drop(finish);
        push.await.expect("run").expect("push");
        assert_eq!(seen("SELECT COUNT(*) FROM outbox"), 2);
    }

    #[tokio::test]
    async fn a_failing_piece_of_a_group_rolls_back_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = file_store(&dir);
        let limits = KvLimits {
            max_bytes: 100,
            max_value_bytes: 100,
        };
        let batch = |key: &str, len: usize| vec![KvOp::Set(key.to_string(), vec![b'x'; len])];
        let release = hold(&store);
        let (a, b, c) = (batch("a", 10), batch("b", 90), batch("c", 10));
        let first = handed_over(store.run(move |s| s.kv_batch("p", &a, &limits)));
        let over = handed_over(store.run(move |s| s.kv_batch("p", &b, &limits)));
        let third = handed_over(store.run(move |s| s.kv_batch("p", &c, &limits)));
        drop(release);
        first.await.expect("run").expect("first fits");
        let refused = over.await.expect("run");
        assert!(
            matches!(refused, Err(KvWriteError::QuotaExceeded { .. })),
            "{refused:?}"
        );
        third.await.expect("run").expect("third fits");
        assert!(store.kv_get("p", "a").expect("get").is_some());
        assert!(
            store.kv_get("p", "b").expect("get").is_none(),
            "rolled back"
        );
        assert!(store.kv_get("p", "c").expect("get").is_some());
    }

    #[tokio::test]
    async fn a_result_whose_caller_has_gone_is_handed_to_the_unheard_hook() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = file_store(&dir);
        let (heard, unheard) = channel();
        let release = hold(&store);
        let limits = KvLimits {
            max_bytes: 1,
            max_value_bytes: 1,
        };
        let too_big = vec![KvOp::Set("k".into(), vec![b'x'; 2])];
        let gone = handed_over(store.run_then(
            move |s| s.kv_batch("p", &too_big, &limits),
            move |result| {
                let _ = heard.send(result);
            },
            false,
        ));
        drop(gone);
        drop(release);
        let result = unheard
            .recv_timeout(Duration::from_secs(10))
            .expect("the hook got the result");
        assert!(
            matches!(result, Err(KvWriteError::ValueTooLarge { .. })),
            "{result:?}"
        );
    }
}
