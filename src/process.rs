//! Which process this is, and whether another one on the same machine still runs: the host
//! name, the pid and, on Linux, the boot, the pid namespace and the start time that tell a
//! live process from a later one that reuses its pid (read from /proc with `std::fs`).
//! Elsewhere the start is unknown and no process is ever known to be gone. Knows nothing of
//! leases or databases.

use std::fmt;

use serde::{Deserialize, Serialize};

/// When a process started, precisely enough to tell it from a later one with the same pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`); pids and start times only
    /// mean something within one boot.
    pub boot: String,
    /// Its pid namespace (the link `/proc/PID/ns/pid`, e.g. `pid:[4026531836]`): a pid means
    /// something only in its namespace, and containers with one host name may have several.
    #[serde(default)]
    pub pid_namespace: String,
    /// Clock ticks from boot to the process's start (field 22 of `/proc/PID/stat`).
    pub ticks: u64,
}

/// A process: the host it runs on, its pid, and when it started where that can be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// The host name.
    #[serde(default)]
    pub host: String,
    /// The process id.
    #[serde(default)]
    pub pid: u32,
    /// Its start, on Linux; `None` where it cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Started>,
}

impl Process {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            host: host_name(),
            pid,
            started: boot_id().and_then(|boot| {
                let pid_namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
                let ticks = start_ticks(pid).ok().flatten()?;
                Some(Started {
                    boot,
                    pid_namespace: pid_namespace.to_string_lossy().into_owned(),
                    ticks,
                })
            }),
        }
    }

    /// Whether `other` is known to have exited, as seen by this process (normally
    /// [`Process::current`], since it looks at this machine's /proc): it ran on this host and
    /// either in an earlier boot, or in this pid namespace and its pid is free now or belongs
    /// to a process that started at another time. A process on another host or in another pid
    /// namespace (another container), or whose start is unknown, is never known to be gone.
    pub fn knows_gone(&self, other: &Process) -> bool {
        let (Some(mine), Some(theirs)) = (&self.started, &other.started) else {
            return false;
        };
        if other.host != self.host {
            return false;
        }
        if theirs.boot != mine.boot {
            return true;
        }
        if theirs.pid_namespace != mine.pid_namespace {
            return false;
        }
        match start_ticks(other.pid) {
            Ok(Some(ticks)) => ticks != theirs.ticks,
            Ok(None) => false,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

/// The start time field (22, `starttime`) of a `/proc/PID/stat` line. The second field, the
/// command name in parentheses, may itself hold spaces and parentheses, so the fields are
/// counted from the last `)`.
pub fn parse_stat_start(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // After the name come field 3 (state) onwards: the start time is the 20th of those.
    rest.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

/// The host name: the kernel's on Linux, else `$HOSTNAME`, else "unknown host".
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown host".to_string())
}

/// This boot's id, on Linux.
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// The start of process `pid` in clock ticks since boot: `Err(NotFound)` when no such process
/// runs, `Ok(None)` when its stat line cannot be parsed.
fn start_ticks(pid: u32) -> std::io::Result<Option<u64>> {
    // The stat line is ASCII but for the command name, which may be any bytes.
    let bytes = std::fs::read(format!("/proc/{pid}/stat"))?;
    Ok(parse_stat_start(&String::from_utf8_lossy(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stat line as Linux writes it, with `comm` for the command name and 98765 for the
    /// start time.
    fn stat(comm: &str) -> String {
        format!(
            "4711 ({comm}) S 1 4711 4711 34816 4711 4194560 77 0 0 0 3 1 0 0 20 0 1 0 98765 \
             12345678 456 18446744073709551615 1 1 0 0 0 0 0 4096 65536 0 0 0 17 1 0 0 0 0 0"
        )
    }

    #[test]
    fn the_start_time_is_field_22() {
        assert_eq!(parse_stat_start(&stat("rewind")), Some(98765));
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        assert_eq!(parse_stat_start(&stat("my (odd) name ) 9 9")), Some(98765));
        assert_eq!(parse_stat_start(&stat(")")), Some(98765));
        assert_eq!(parse_stat_start(&stat("")), Some(98765));
    }

    #[test]
    fn a_truncated_or_garbled_line_has_no_start_time() {
        assert_eq!(parse_stat_start(""), None);
        assert_eq!(parse_stat_start("4711 rewind S 1 2 3"), None);
        assert_eq!(parse_stat_start("4711 (rewind) S 1 2 3"), None);
        assert_eq!(
            parse_stat_start(&stat("x").replace(" 98765 ", " -5 ")),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_start_and_is_not_gone() {
        let me = Process::current();
        let started = me.started.clone().expect("Linux has /proc");
        assert_eq!(start_ticks(me.pid).ok().flatten(), Some(started.ticks));
        assert!(!me.knows_gone(&me));
    }
}
