//! Stopping and starting the local control plane's processes, for the test
//! binaries that take it down for a while (`disruptive`, `chaos`).
//!
//! A process is killed through its pid in `.cluster/pids/` and started again
//! with the command line it had, its output appended to its log, as
//! `tests/cluster/up.sh` started it.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util;

/// A control-plane process as `up.sh` started it, killed by
/// [`Process::stop`]. Dropping it starts the process again if the test has
/// not, so a failing test does not leave the control plane without it.
pub struct Process {
    name: &'static str,
    pid_file: PathBuf,
    log_file: PathBuf,
    exe: String,
    args: Vec<String>,
    cwd: PathBuf,
    running: bool,
}

impl Process {
    /// Kills the running process `name` (e.g. `kube-apiserver`) and returns
    /// once it is gone. SIGKILL rather than SIGTERM: a graceful shutdown
    /// takes the API server 20 s or more, and a crash is the harder outage
    /// anyway.
    pub fn stop(name: &'static str) -> Process {
        let cluster_dir = util::kubeconfig()
            .parent()
            .expect("the kubeconfig sits in the cluster folder")
            .to_path_buf();
        let pid_file = cluster_dir.join(format!("pids/{name}.pid"));
        let recorded = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", pid_file.display()));
        let (pid, exe) = recorded
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("{} holds {recorded:?}", pid_file.display()));
        let pid: i32 = pid.parse().expect("the pid file starts with a pid");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_else(|e| panic!("{name} (pid {pid}) is not running: {e}"));
        let mut args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            args.first().map(String::as_str),
            Some(exe),
            "pid {pid} is not {name}"
        );
        args.remove(0);
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or(cluster_dir.clone());

        signal(pid, libc::SIGKILL);
        util::wait_for(Duration::from_secs(20), &format!("{name} to exit"), || {
            if alive(pid) {
                Err(format!("pid {pid} is still there"))
            } else {
                Ok(())
            }
        });
        Process {
            name,
            pid_file,
            log_file: cluster_dir.join(format!("logs/{name}.log")),
            exe: exe.to_string(),
            args,
            cwd,
            running: false,
        }
    }

    /// Starts the process again; the API server is waited for until it is
    /// ready. It is never waited for as a child: it outlives the test, as
    /// the rest of the control plane does, and `tests/cluster/down.sh`
    /// stops it through its pid.
    #[allow(clippy::zombie_processes)]
    pub fn start(&mut self) {
        let log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_file)
                .expect("open the process's log")
        };
        let child = Command::new(&self.exe)
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log())
            .stderr(log())
            // Its own process group, as `setsid` in up.sh: a Ctrl-C meant
            // for the tests must not stop the control plane.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        std::fs::write(&self.pid_file, format!("{} {}\n", child.id(), self.exe))
            .expect("record the process's pid");
        self.running = true;
        if self.name != "kube-apiserver" {
            return;
        }
        util::wait_for(
            Duration::from_secs(90),
            "the API server to be ready",
            || {
                let output = Command::new(util::kubectl_path())
                    .arg("--kubeconfig")
                    .arg(util::kubeconfig())
                    .args(["--request-timeout=2s", "get", "--raw", "/readyz"])
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| e.to_string())?;
                if output.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
                }
            },
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.running {
            self.start();
        }
    }
}

pub fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// The process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit(')')
                .next()
                .map(str::trim_start)
                .and_then(|s| s.chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}
