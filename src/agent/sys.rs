//! What the agents' processes need from the operating system, apart from the terminal: the
//! program to run, the process tree under an agent, and a lower priority for the threads that
//! read and record output.

use crate::{Error, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Finds the program to run: a name on `PATH`, or a path (relative to `cwd`).
pub fn resolve_program(
    program: &str,
    cwd: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<PathBuf> {
    if program.trim().is_empty() {
        return Err(Error::bad("runtime command is empty"));
    }
    if program.contains('/') {
        let path = cwd.join(program);
        return match std::fs::metadata(&path) {
            Ok(m) if is_executable(&m) => Ok(path),
            Ok(_) => Err(Error::bad(format!(
                "runtime command '{program}' is not an executable file"
            ))),
            Err(_) => Err(Error::bad(format!("runtime command '{program}' not found"))),
        };
    }
    for dir in path_var.map(std::env::split_paths).into_iter().flatten() {
        let candidate = cwd.join(dir).join(program);
        if std::fs::metadata(&candidate).is_ok_and(|m| is_executable(&m)) {
            return Ok(candidate);
        }
    }
    Err(Error::bad(format!(
        "runtime command '{program}' not found on PATH"
    )))
}

fn is_executable(m: &std::fs::Metadata) -> bool {
    m.is_file() && m.permissions().mode() & 0o111 != 0
}

/// `root` and every process descended from it, parents before children (from `/proc`).
pub fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid));
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// Lowers the calling thread's scheduling priority (Linux: per-thread nice 19). Reading,
/// parsing and recording agents' output is throughput work; when the CPU is short, the
/// cockpit's keys and frames go first. Output is still read as fast as the machine allows
/// otherwise.
pub fn background_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority on our own thread id only changes its
    // nice value (an error, e.g. not permitted, leaves it as it was).
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
    }
}
