//! What the agents' processes need from the operating system, apart from the terminal: the
//! program to run, the process tree under an agent, the processes a session left behind (found
//! by the mark in their environment), ending processes, and a lower priority for the threads
//! that read and record output.

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

/// Every process id in `/proc`.
fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
}

/// `root` and every process descended from it, parents before children (from `/proc`).
pub fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    for pid in pids() {
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

/// The variable every agent session's processes carry: `<agent>/<session id>`. Whatever a
/// session starts inherits it (a daemon that leaves the session's process group and terminal
/// too), so what a session left behind is found by it, and nothing else is.
pub const SESSION_MARK: &str = "GT_SESSION";

/// The processes, other than this one, whose environment passes `keep` (given a lookup of
/// one variable). Processes whose environment cannot be read (another user's) are left out.
fn with_env(keep: impl Fn(&dyn Fn(&str) -> Option<String>) -> bool) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for pid in pids().filter(|p| *p != me) {
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let get = |var: &str| {
            environ.split(|b| *b == 0).find_map(|kv| {
                let rest = kv.strip_prefix(var.as_bytes())?.strip_prefix(b"=")?;
                Some(String::from_utf8_lossy(rest).into_owned())
            })
        };
        if keep(&get) {
            out.push(pid);
        }
    }
    out
}

/// The processes of the town at `root` (its `GT_TOWN`) marked by a session whose mark
/// passes `which` (see [`SESSION_MARK`]): what those sessions started.
pub fn marked(root: &Path, which: impl Fn(&str) -> bool) -> Vec<i32> {
    let root = root.display().to_string();
    with_env(|get| {
        get(SESSION_MARK).is_some_and(|m| which(&m)) && get("GT_TOWN").as_deref() == Some(&root)
    })
}

/// What trying an exclusive `flock` on a file gave; the file either way (a holder may have
/// written in it who holds it).
pub enum Flock {
    Had(std::fs::File),
    Busy(std::fs::File),
}

/// An exclusive advisory lock on the file at `path` (created owner-only if missing), waiting
/// for the holder or not. The kernel lets go of it when the holder's process ends, however.
pub fn flock(path: &Path, wait: bool) -> Result<Flock> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    // Opened close-on-exec (std's default), so child processes never inherit the lock.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let how = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), how) } == 0 {
            return Ok(Flock::Had(file));
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            std::io::ErrorKind::Interrupted => continue,
            std::io::ErrorKind::WouldBlock => return Ok(Flock::Busy(file)),
            _ => return Err(Error::io("lock", path, e)),
        }
    }
}

/// SIGTERM to each of `pids`, then SIGKILL to those still there after `grace`. Returns when
/// they are gone or killed.
pub fn terminate(pids: impl IntoIterator<Item = i32>, grace: std::time::Duration) {
    let mut left: Vec<i32> = pids.into_iter().filter(|p| *p > 1).collect();
    for &pid in &left {
        // SAFETY: kill(2) with a positive pid and a valid signal number has no memory effects.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = std::time::Instant::now() + grace;
    loop {
        // A zombie (ended, not yet waited for by its parent) counts as gone.
        left.retain(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.chars().next())
                    .is_some_and(|state| state != 'Z' && state != 'X')
            })
        });
        if left.is_empty() || std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for pid in left {
        // SAFETY: as above.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
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
