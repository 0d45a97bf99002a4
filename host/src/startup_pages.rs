//! Hands back the pages of code and read-only data that only starting (or reloading) used,
//! once the daemon is ready: the way a kernel frees its init sections after boot.
//!
//! Loading plugins reads the built-in plugins' bytes embedded in the binary, walks the
//! compile cache, parses configs and components; the kernel maps each page touched (and
//! 64 KB around it) into the process and leaves it there. An idle hub uses a few hundred KB
//! of its code, yet held 22 MB of the binary's pages. `MADV_PAGEOUT` on the read-only file
//! mappings reclaims those pages now instead of at the next memory pressure; what the hub
//! runs next faults back in from the page cache or the file. It never changes what a page
//! holds (pages other processes map too are left alone by the kernel), so it is safe on
//! any mapping; it is only asked of the ones backed by a file and never written.

use std::ops::Range;
use std::time::Duration;

/// How long after a start or reload the pages are handed back: the tasks a start spawns
/// (gateways, delivery, the first timers) run their first steps in this time, so what
/// they touch once is handed back too.
const SETTLE: Duration = Duration::from_secs(2);

/// Reclaims the pages of every read-only file mapping of this process once the start has
/// settled, on a blocking thread. Failures are logged (a kernel before 5.4 has no
/// `MADV_PAGEOUT`): nothing depends on them.
pub fn hand_back_soon() {
    tokio::spawn(async {
        tokio::time::sleep(SETTLE).await;
        let handed = tokio::task::spawn_blocking(hand_back)
            .await
            .unwrap_or_else(|joined| Err(std::io::Error::other(joined)));
        match handed {
            Ok(bytes) => tracing::debug!(bytes, "start-up pages handed back"),
            Err(e) => tracing::debug!("start-up pages kept: {e}"),
        }
    });
}

/// Reclaims the read-only file mappings' pages now; returns the bytes of mappings asked.
pub fn hand_back() -> std::io::Result<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut asked = 0;
    for range in maps.lines().filter_map(read_only_file_mapping) {
        let len = range.end - range.start;
        // SAFETY: `range` is a whole mapping of this process, as the kernel listed it.
        // MADV_PAGEOUT only reclaims: a page read afterwards holds the same bytes (read
        // again from its file), so no reference into the range is invalidated.
        let done =
            unsafe { libc::madvise(range.start as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
        if done != 0 {
            return Err(std::io::Error::last_os_error());
        }
        asked += len;
    }
    Ok(asked)
}

/// The address range of a `/proc/self/maps` line when it maps a file and is not writable
/// (code, read-only data, the compiled plugins), else `None`.
fn read_only_file_mapping(line: &str) -> Option<Range<usize>> {
    let mut fields = line.split_whitespace();
    let (range, perms) = (fields.next()?, fields.next()?);
    let path = fields.nth(3)?;
    if perms.contains('w') || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (start < end).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_mappings_of_files_are_taken() {
        let code = "55e27627f000-55e2780bc000 r-xp 01090000 fe:00 5311598  /usr/bin/roost";
        assert_eq!(
            read_only_file_mapping(code),
            Some(0x55e27627f000..0x55e2780bc000)
        );
        let data = "55e2780bc000-55e2781ce000 rw-p 02ecc000 fe:00 5311598  /usr/bin/roost";
        assert_eq!(read_only_file_mapping(data), None);
        let heap = "55e2922a2000-55e292420000 rw-p 00000000 00:00 0          [heap]";
        assert_eq!(read_only_file_mapping(heap), None);
        let vdso = "7ffd1a5f0000-7ffd1a5f2000 r-xp 00000000 00:00 0          [vdso]";
        assert_eq!(read_only_file_mapping(vdso), None);
        let anonymous = "7fdb34000000-7fdb34036000 r--p 00000000 00:00 0 ";
        assert_eq!(read_only_file_mapping(anonymous), None);
    }

    #[test]
    fn handing_back_keeps_what_the_pages_hold() {
        static TABLE: [u8; 3 * 4096] = [7; 3 * 4096];
        let before: u64 = TABLE.iter().map(|&b| u64::from(b)).sum();
        assert!(hand_back().expect("madvise") > 0);
        let after: u64 = TABLE.iter().map(|&b| u64::from(b)).sum();
        assert_eq!(before, after);
    }
}
