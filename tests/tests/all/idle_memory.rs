//! What an idle hub keeps resident: the pages of its own binary that only starting used
//! are handed back once it is ready, and it still answers afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

use roost_tests::{BASE_CONFIG, Daemon, PATIENCE, StartOptions};

/// Resident KiB of `binary`'s read-only data in process `pid` (its mappings neither
/// written nor executed: the built-in plugins' bytes and the constants), as read from the
/// file: `Rss` less `Anonymous` (relocated data, copied on write, is not the file's).
/// Code is left out: whatever runs after the hand-back (a plugin's timer, the first
/// command) touches some of it again, more of it in a debug build.
fn read_only_data_resident_kib(pid: u32, binary: &Path) -> i64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("read smaps");
    let binary = binary.to_str().expect("utf-8 path");
    let (mut ours, mut kib) = (false, 0);
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let (first, second) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let value = || second.parse::<i64>().unwrap_or(0);
        match first {
            "Rss:" if ours => kib += value(),
            "Anonymous:" if ours => kib -= value(),
            _ if !first.ends_with(':') => {
                ours = line.ends_with(binary) && !second.contains(['w', 'x']);
            }
            _ => {}
        }
    }
    kib
}

#[test]
fn an_idle_hub_hands_back_the_pages_only_starting_used() {
    let options = StartOptions {
        own_binary: true,
        ..StartOptions::default()
    };
    let daemon = Daemon::start_with(BASE_CONFIG, &[], options);
    let binary = daemon.binary();
    let deadline = Instant::now() + PATIENCE;
    let mut resident = read_only_data_resident_kib(daemon.pid(), &binary);
    while resident > 4096 {
        assert!(
            Instant::now() < deadline,
            "{resident} KiB of the binary's read-only data still resident once idle\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
        resident = read_only_data_resident_kib(daemon.pid(), &binary);
    }
    assert_eq!(daemon.chat("!ping").trim(), "pong");
}
