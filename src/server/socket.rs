//! Where a town's engine listens, and who may connect.
//!
//! The socket lives in a directory only its owner can enter: `$XDG_RUNTIME_DIR/gastown-tui`,
//! else `$TMPDIR/gastown-tui-UID`, else `/tmp/gastown-tui-UID` (mode 0700, refused when it
//! belongs to someone else or others may enter it). Its name is short and fixed per town
//! (a hash of the town's path), and the first of those places where the whole path fits in a
//! Unix socket address is taken, so a long runtime or temp dir still works. The engine
//! records the path in `<town>/.beads/engine.socket`; clients read it there, so a client with
//! another environment (an ssh session without `XDG_RUNTIME_DIR`) finds the same engine.

use crate::town::Town;
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The most bytes a socket path may have (`sun_path` is 108 bytes with its NUL).
pub const MAX_PATH: usize = 107;

/// The file in which the engine records its socket's path.
pub fn record_path(town: &Town) -> PathBuf {
    town.beads_dir().join("engine.socket")
}

/// The socket the town's engine recorded, if any (it may be stale).
pub fn recorded(town: &Town) -> Option<PathBuf> {
    let text = std::fs::read_to_string(record_path(town)).ok()?;
    let path = PathBuf::from(text.trim());
    (!text.trim().is_empty()).then_some(path)
}

/// Records `socket` for clients (written whole, then renamed into place).
pub fn record(town: &Town, socket: &Path) -> Result<()> {
    let path = record_path(town);
    let tmp = path.with_extension("socket.tmp");
    std::fs::write(&tmp, format!("{}\n", socket.display()))
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io("write", &path, e))
}

/// Removes the record, if it still names `socket`.
pub fn unrecord(town: &Town, socket: &Path) {
    if recorded(town).as_deref() == Some(socket) {
        let _ = std::fs::remove_file(record_path(town));
    }
}

/// The effective uid of this process.
pub fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether a peer of uid `peer` may use the engine of uid `owner`: only the owner may.
pub fn peer_allowed(peer: u32, owner: u32) -> bool {
    peer == owner
}

/// The socket's file name for `town`: 16 hex digits of the hash of its path.
fn name(town: &Town) -> String {
    let root = std::fs::canonicalize(&town.root).unwrap_or_else(|_| town.root.clone());
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.sock")
}

/// The directories a socket may live in, in order of preference: under `runtime`
/// (`$XDG_RUNTIME_DIR`), under `tmp` (`$TMPDIR`), under /tmp. Relative ones are ignored.
fn candidates(runtime: Option<PathBuf>, tmp: Option<PathBuf>, uid: u32) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(run) = runtime.filter(|p| p.is_absolute()) {
        v.push(run.join("gastown-tui"));
    }
    if let Some(tmp) = tmp.filter(|p| p.is_absolute()) {
        v.push(tmp.join(format!("gastown-tui-{uid}")));
    }
    v.push(PathBuf::from(format!("/tmp/gastown-tui-{uid}")));
    v
}

/// The first candidate directory in which a socket called `name` fits a socket address.
fn fitting(candidates: Vec<PathBuf>, name: &str) -> Option<PathBuf> {
    candidates
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|p| p.as_os_str().len() <= MAX_PATH)
}

/// Where the town's engine is to listen: the first candidate directory whose socket path
/// fits, made private (created 0700) first.
pub fn listen_path(town: &Town) -> Result<PathBuf> {
    let uid = own_uid();
    let env_dir = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let all = candidates(env_dir("XDG_RUNTIME_DIR"), env_dir("TMPDIR"), uid);
    let path = fitting(all, &name(town))
        .ok_or_else(|| Error::bad("no place for the engine's socket: every path is too long"))?;
    if let Some(dir) = path.parent() {
        private_dir(dir, uid)?;
    }
    Ok(path)
}

/// Makes `dir` (mode 0700, owned by `uid`), or checks that an existing one is that.
pub fn private_dir(dir: &Path, uid: u32) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
            }
            match std::fs::create_dir(dir) {
                Ok(()) => {}
                // Another engine made it meanwhile: checked below.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create", dir, e)),
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("set the mode of", dir, e))?;
            check_private(dir, uid)
        }
        Err(e) => Err(Error::io("inspect", dir, e)),
        Ok(_) => check_private(dir, uid),
    }
}

fn check_private(dir: &Path, uid: u32) -> Result<()> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| Error::io("inspect", dir, e))?;
    if !m.is_dir() {
        return Err(Error::bad(format!(
            "{} is not a directory: the engine's socket cannot live there (remove it)",
            dir.display()
        )));
    }
    if m.uid() != uid || m.mode() & 0o077 != 0 {
        return Err(Error::bad(format!(
            "{} is not private (owner uid {}, mode {:o}): the engine's socket must live in a \
             directory only you can enter; remove it, or set XDG_RUNTIME_DIR",
            dir.display(),
            m.uid(),
            m.mode() & 0o777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_may_connect() {
        assert!(peer_allowed(1000, 1000));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(0, 1000), "not even root, through the socket");
    }

    #[test]
    fn a_socket_path_too_long_for_an_address_falls_back_to_a_shorter_place() {
        let name = "0123456789abcdef.sock";
        let long = PathBuf::from(format!("/{}", "d".repeat(120)));
        let short_run = PathBuf::from("/run/user/1000");
        // The runtime dir first, when it fits.
        let p = fitting(candidates(Some(short_run.clone()), None, 1000), name).unwrap();
        assert_eq!(p, short_run.join("gastown-tui").join(name));
        // Too long: TMPDIR next; too long as well: /tmp.
        let p = fitting(
            candidates(Some(long.clone()), Some("/var/tmp".into()), 7),
            name,
        );
        assert_eq!(
            p.unwrap(),
            PathBuf::from("/var/tmp/gastown-tui-7").join(name)
        );
        let p = fitting(candidates(Some(long.clone()), Some(long), 7), name).unwrap();
        assert_eq!(p, PathBuf::from("/tmp/gastown-tui-7").join(name));
        assert!(p.as_os_str().len() <= MAX_PATH);
        // A relative XDG_RUNTIME_DIR is not a place.
        let p = fitting(candidates(Some("run".into()), None, 7), name).unwrap();
        assert!(p.starts_with("/tmp/gastown-tui-7"), "{}", p.display());
    }

    #[test]
    fn a_directory_others_can_enter_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let uid = own_uid();
        let fresh = t.path().join("a/b/gastown-tui");
        private_dir(&fresh, uid).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Again: it is ours and private.
        private_dir(&fresh, uid).unwrap();

        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_dir(&open, uid).unwrap_err().to_string();
        assert!(e.contains("is not private") && e.contains("755"), "{e}");
        // Someone else's.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o700)).unwrap();
        let e = private_dir(&open, uid + 1).unwrap_err().to_string();
        assert!(e.contains("owner uid"), "{e}");
        // A file in the way.
        let file = t.path().join("file");
        std::fs::write(&file, "").unwrap();
        let e = private_dir(&file, uid).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
    }
}
