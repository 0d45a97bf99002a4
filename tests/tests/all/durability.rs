//! Committed writes survive kill -9: every KV write a plugin had acknowledged is there after
//! a restart, and the database passes SQLite's integrity check.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use roost_tests::{Daemon, FAULTY_WASM};

#[test]
fn acknowledged_kv_writes_survive_kill_9() {
    let mut d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    // The writes go on back to back, so the kill lands while one is in flight.
    let stop = Arc::new(AtomicBool::new(false));
    let mut acknowledged = BTreeSet::new();
    let killer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(800));
            stop.store(true, Ordering::SeqCst);
        })
    };
    let mut i = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let reply = d.chat(&format!("!kvset ack/{i:05} {i}"));
        assert!(reply.contains("ok"), "{reply}");
        acknowledged.insert(i);
        i += 1;
    }
    d.kill9();
    killer.join().expect("killer");
    assert!(acknowledged.len() > 5, "the test wrote something");

    let conn = rusqlite::Connection::open(d.db_path()).expect("open db");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    drop(conn);

    d.restart();
    for i in &acknowledged {
        assert_eq!(
            d.chat(&format!("!kvget ack/{i:05}")).trim(),
            i.to_string(),
            "write {i} was acknowledged before the kill"
        );
    }
}
