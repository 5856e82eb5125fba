//! The process's own resource use, for `/metrics`: resident memory and
//! open file descriptors, read from Linux's `/proc/self` (proc(5)).
//!
//! The parsing is pure and tested on proc(5)'s formats; only [`read`]
//! touches the file system. On a system without `/proc` both figures are
//! absent and the metrics that show them are left out.

use std::path::Path;

/// A snapshot of the process's resource use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// Resident set size in bytes (`process_resident_memory_bytes`).
    pub rss_bytes: Option<u64>,
    /// Open file descriptors (`process_open_fds`).
    pub open_fds: Option<u64>,
}

/// Reads `/proc/self/status` and `/proc/self/fd`.
pub fn read() -> ProcStat {
    read_from(Path::new("/proc/self"))
}

/// The same from another `/proc/PID` directory (tests use their own).
pub fn read_from(proc_dir: &Path) -> ProcStat {
    let rss_bytes = std::fs::read_to_string(proc_dir.join("status"))
        .ok()
        .and_then(|s| parse_status_rss(&s));
    let open_fds = std::fs::read_dir(proc_dir.join("fd"))
        .ok()
        // Listing /proc/self/fd opens a descriptor of its own, which is
        // listed too; it is closed again before anyone reads the figure.
        .map(|dir| (dir.count() as u64).saturating_sub(u64::from(is_self(proc_dir))));
    ProcStat {
        rss_bytes,
        open_fds,
    }
}

fn is_self(proc_dir: &Path) -> bool {
    proc_dir == Path::new("/proc/self")
}

/// The `VmRSS:` line of `/proc/PID/status` in bytes. proc(5): "VmRSS
/// Resident set size", written as `VmRSS:\t  1234 kB` (the kernel's "kB"
/// is KiB). `status` is used rather than `statm` because `statm` counts
/// pages, and the page size is not 4 KiB everywhere.
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut fields = line.split_whitespace();
    let kib: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => kib.checked_mul(1024),
        _ => None,
    }
}

/// The resident set size from a `/proc/PID/statm` line (proc(5): "size
/// resident shared text lib data dt", in pages) and the page size.
pub fn parse_statm_rss(statm: &str, page_size: u64) -> Option<u64> {
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    resident.checked_mul(page_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rss() {
        let status =
            "Name:\tpushwire\nVmPeak:\t   12345 kB\nVmRSS:\t    4242 kB\nRssAnon:\t    1000 kB\n";
        assert_eq!(parse_status_rss(status), Some(4242 * 1024));
        assert_eq!(parse_status_rss("Name:\tkthreadd\n"), None);
        assert_eq!(parse_status_rss("VmRSS:\tlots kB\n"), None);
        assert_eq!(parse_status_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_status_rss("VmRSS:\t99999999999999999999 kB\n"), None);
    }

    #[test]
    fn statm_rss() {
        assert_eq!(
            parse_statm_rss("5283 1128 933 44 0 331 0\n", 4096),
            Some(1128 * 4096)
        );
        assert_eq!(parse_statm_rss("5283", 4096), None);
        assert_eq!(parse_statm_rss("", 4096), None);
    }

    #[test]
    fn this_process() {
        if !Path::new("/proc/self/status").exists() {
            return;
        }
        let before = read();
        assert!(before.rss_bytes.unwrap() > 0);
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let during = read();
        drop(file);
        // Other tests open and close files in parallel, so only a lower
        // bound holds: stdin, stdout, stderr and the file just opened.
        assert!(during.open_fds.unwrap() >= 4, "{during:?}");
    }
}
