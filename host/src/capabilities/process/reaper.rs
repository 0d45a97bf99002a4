//! Finds and ends what a job leaves behind. Every job leads its own process group, but a
//! process can leave the group (`setsid`, `setpgid`) and outlive the job's end. The daemon
//! is its children's subreaper (see `daemon_guard`), so such an escapee, once its parent
//! is gone, becomes a child of the daemon. Any child of the daemon that is neither a live
//! job's leader nor in a live job's group is an escapee: it and everything under it are
//! killed and reaped whenever a job ends.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use rustix::process::{Pid, Signal, WaitOptions};

/// Process groups (= leader pids) of the jobs running now, in this process.
static LIVE_GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);
/// Whether this process is its children's subreaper: only then is an unknown child an
/// escapee (a test binary's other children are not).
static ADOPTING: AtomicBool = AtomicBool::new(false);
/// Passes over the process table per clean-up: killing an escapee orphans its children,
/// which the next pass finds.
const ROUNDS: usize = 8;

/// Makes this process the reaper of its descendants' orphans, so escapees stay findable.
pub fn adopt_orphans() -> std::io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    ADOPTING.store(true, Ordering::SeqCst);
    Ok(())
}

/// The live-job registry, locked. Hold it across spawning a job and registering it, so a
/// clean-up running meanwhile never takes the new leader for an escapee.
pub fn live_groups() -> MutexGuard<'static, Option<HashSet<i32>>> {
    LIVE_GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a job's group while the registry is held.
pub fn register(live: &mut Option<HashSet<i32>>, group: i32) {
    live.get_or_insert_with(HashSet::new).insert(group);
}

/// Forgets a job's group once the job is over.
pub fn unregister(group: i32) {
    if let Some(live) = live_groups().as_mut() {
        live.remove(&group);
    }
}

/// One line of `/proc/<pid>/stat`, the fields used here.
#[derive(Debug, Clone, Copy)]
struct Stat {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    zombie: bool,
}

fn stat(pid_dir: &std::path::Path) -> Option<Stat> {
    let text = std::fs::read_to_string(pid_dir.join("stat")).ok()?;
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat {
        pid,
        ppid,
        pgrp,
        zombie: state == "Z" || state == "X",
    })
}

fn table() -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries.flatten().filter_map(|e| stat(&e.path())).collect()
}

/// Whether any process of `group` is still alive (zombies, which hold nothing, do not
/// count: an init that does not reap them would otherwise make every group immortal).
pub fn group_alive(group: Pid) -> bool {
    if rustix::process::test_kill_process_group(group).is_err() {
        return false;
    }
    let want = group.as_raw_pid();
    table().iter().any(|p| p.pgrp == want && !p.zombie)
}

/// Kills and reaps every escapee (see the module doc). Blocking: it waits for the killed
/// children to exit, which SIGKILL makes prompt.
pub fn end_escapees() {
    if !ADOPTING.load(Ordering::SeqCst) {
        return;
    }
    for _ in 0..ROUNDS {
        let roots = kill_one_round();
        if roots.is_empty() {
            return;
        }
        for root in roots {
            if let Some(pid) = Pid::from_raw(root) {
                let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
            }
        }
    }
}

/// Kills the escapees found now and everything below them; returns the ones that are the
/// daemon's own children, to be reaped.
fn kill_one_round() -> Vec<i32> {
    let live = live_groups();
    let live = live.as_ref();
    let is_live = |g: i32| live.is_some_and(|l| l.contains(&g));
    let me = rustix::process::getpid().as_raw_pid();
    let procs = table();
    let roots: Vec<i32> = procs
        .iter()
        .filter(|p| p.ppid == me && !is_live(p.pid) && !is_live(p.pgrp))
        .map(|p| p.pid)
        .collect();
    let mut doomed: HashSet<i32> = roots.iter().copied().collect();
    // Descendants: repeat until no process has a doomed parent that is not doomed itself.
    loop {
        let before = doomed.len();
        for p in &procs {
            if doomed.contains(&p.ppid) {
                doomed.insert(p.pid);
            }
        }
        if doomed.len() == before {
            break;
        }
    }
    for pid in &doomed {
        if let Some(pid) = Pid::from_raw(*pid) {
            tracing::debug!(
                pid = pid.as_raw_pid(),
                "ending a process that escaped its job"
            );
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }
    roots
}
