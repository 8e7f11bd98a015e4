//! Who holds a stack's lock: the record a lock file or a Lease carries,
//! so that a run refused the lock can say whose it is.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who holds a stack's lock, as written into the lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHolder {
    /// The holder's process id.
    pub pid: u32,
    /// The machine it runs on.
    pub host: String,
    /// The user it runs as.
    pub user: String,
    /// The command line that took the lock, e.g. `echo-iac up`.
    pub command: String,
    /// RFC 3339.
    pub started: String,
}

impl LockHolder {
    pub(crate) fn current(command: &str) -> Self {
        LockHolder {
            pid: std::process::id(),
            host: host_name(),
            user: user_name(),
            command: command.to_string(),
            started: super::now_rfc3339(),
        }
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (pid {}, user {} on host {}) since {}",
            self.command, self.pid, self.user, self.host, self.started
        )
    }
}

pub(crate) fn user_name() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|u| !u.is_empty()))
        .or_else(account_name)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The name of this process's user in the password database, for when the
/// environment does not say (services, CI containers).
fn account_name() -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    // SAFETY: a zeroed passwd is a valid out-parameter for getpwuid_r.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and the buffer length is
    // its own; getpwuid_r writes only into `entry` and `buffer`.
    let status = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points at a NUL-terminated string inside
    // `buffer`, which is still alive.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    name.to_str().ok().map(str::to_string)
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}
