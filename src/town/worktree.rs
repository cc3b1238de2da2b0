//! Git work for rigs (git2): cloning a rig, one worktree per polecat or crew member, and the
//! checks `done` needs (is the worktree clean, which branch is it on).

use crate::agent::sys::{flock, Flock};
use crate::beads::Landed;
use crate::{Error, Result};
use git2::{BranchType, ErrorCode, Oid, Repository, StatusOptions, WorktreeAddOptions};
use std::path::Path;

/// The git identity (`user.name`, `user.email`) a worktree's repository resolves: its own
/// config, then the user's. None when either is unset.
pub fn identity(worktree: &Path) -> Option<(String, String)> {
    let config = Repository::open(worktree).and_then(|r| r.config()).ok()?;
    Some((
        config.get_string("user.name").ok()?,
        config.get_string("user.email").ok()?,
    ))
}

fn looks_like_url(s: &str) -> bool {
    s.contains("://") || (s.contains('@') && s.contains(':'))
}

/// Clones `url` (a git URL or a local path) into `dest`, checking out `branch`. On failure
/// nothing is left at `dest`.
pub fn clone_rig(url: &str, branch: &str, dest: &Path) -> Result<()> {
    if !looks_like_url(url) {
        let p = Path::new(url);
        if !p.exists() {
            return Err(Error::bad(format!(
                "{url}: no such directory (and not a git URL)"
            )));
        }
        if Repository::open(p).is_err() {
            return Err(Error::bad(format!("{url}: not a git repository")));
        }
    }
    if dest.exists() {
        return Err(Error::bad(format!("{} already exists", dest.display())));
    }
    let result = git2::build::RepoBuilder::new()
        .branch(branch)
        .clone(url, dest);
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_dir_all(dest);
            if e.code() == ErrorCode::NotFound && e.message().contains(branch) {
                Err(Error::bad(format!("branch '{branch}' not found in {url}")))
            } else {
                Err(Error::bad(format!("cannot clone {url}: {}", e.message())))
            }
        }
    }
}

/// A rig's worktree lock (an advisory `flock` on `<rig>/.worktrees.lock`): held by a sling
/// from before it hooks the bead until the polecat's worktree is checked out, and by the engine
/// while it starts a polecat of the rig. So the engine never starts a polecat in a worktree
/// being checked out, nor checks one out beside a sling; a process that dies lets go of it.
pub struct RigLock(#[allow(dead_code)] std::fs::File);

impl RigLock {
    /// Takes the lock of the rig at `rig_dir`, waiting for whoever holds it.
    pub fn wait(rig_dir: &Path) -> Result<RigLock> {
        let path = rig_dir.join(".worktrees.lock");
        match flock(&path, true)? {
            Flock::Had(f) => Ok(RigLock(f)),
            Flock::Busy(_) => Err(Error::Conflict(format!("{} stays locked", path.display()))),
        }
    }

    /// Takes the lock if nobody holds it.
    pub fn try_take(rig_dir: &Path) -> Result<Option<RigLock>> {
        match flock(&rig_dir.join(".worktrees.lock"), false)? {
            Flock::Had(f) => Ok(Some(RigLock(f))),
            Flock::Busy(_) => Ok(None),
        }
    }
}

/// Whether the commit `tip` (a worktree's HEAD) is merged into the target `base`: part of it
/// (the same commit or an ancestor), or landed from it: a merge in `landed` made from `tip`
/// whose commit is on `base` (a squashed or rebased branch is not an ancestor of its target).
pub fn is_merged(repo: &Repository, tip: Oid, base: Oid, landed: &[Landed]) -> Result<bool> {
    if on_target(repo, base, tip)? {
        return Ok(true);
    }
    let tip = tip.to_string();
    for l in landed.iter().filter(|l| l.source_tip == tip) {
        if let Some(c) = commit_named(repo, &l.commit) {
            if on_target(repo, base, c)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether commit `c` is part of the branch whose tip is `target` (the tip or an ancestor).
pub fn on_target(repo: &Repository, target: Oid, c: Oid) -> Result<bool> {
    Ok(c == target || repo.graph_descendant_of(target, c)?)
}

/// The commit of `repo` whose id is written `id`, if there is one.
pub fn commit_named(repo: &Repository, id: &str) -> Option<Oid> {
    Oid::from_str(id)
        .ok()
        .filter(|c| repo.find_commit(*c).is_ok())
}

/// The tip of local branch `name` of `repo`.
pub fn branch_tip(repo: &Repository, name: &str) -> Result<Oid> {
    Ok(repo
        .find_branch(name, BranchType::Local)
        .map_err(|_| Error::bad(format!("branch '{name}' not found")))?
        .get()
        .peel_to_commit()?
        .id())
}

/// Creates (or reuses) a worktree of `repo_dir` at `path` on `branch`, branching from `base`
/// when the branch does not exist yet. `name` is git's internal name for the worktree.
/// Reusing is allowed only when the existing worktree is on the same branch, or clean with
/// its branch merged (`landed`: the merges recorded for the rig; see [`is_merged`]).
pub fn add_worktree(
    repo_dir: &Path,
    path: &Path,
    name: &str,
    branch: &str,
    base: &str,
    landed: &[Landed],
) -> Result<()> {
    let repo = Repository::open(repo_dir)?;
    if path.exists() {
        let current = current_branch(path)?;
        if current == branch {
            return Ok(());
        }
        return switch_if_merged(&repo, path, &current, branch, base, landed);
    }
    let branch_ref = match repo.find_branch(branch, BranchType::Local) {
        Ok(b) => b,
        Err(_) => {
            let base_commit = repo
                .find_branch(base, BranchType::Local)
                .map_err(|_| {
                    Error::bad(format!(
                        "branch '{base}' not found in {}",
                        repo_dir.display()
                    ))
                })?
                .get()
                .peel_to_commit()?;
            repo.branch(branch, &base_commit, false)?
        }
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    }
    // A stale registration (its directory was removed by hand) would block the name.
    if let Ok(wt) = repo.find_worktree(name) {
        if wt.validate().is_err() {
            wt.prune(Some(
                git2::WorktreePruneOptions::new()
                    .valid(true)
                    .working_tree(true),
            ))?;
        }
    }
    let reference = branch_ref.into_reference();
    repo.worktree(
        name,
        path,
        Some(WorktreeAddOptions::new().reference(Some(&reference))),
    )?;
    Ok(())
}

/// Moves an existing worktree from `current` to a new `branch` off `base`, but only when
/// nothing can be lost: the worktree is clean and `current` is already merged into `base`.
fn switch_if_merged(
    repo: &Repository,
    path: &Path,
    current: &str,
    branch: &str,
    base: &str,
    landed: &[Landed],
) -> Result<()> {
    let busy = || {
        Error::Conflict(format!(
            "{} holds branch '{current}', which is not merged into '{base}' yet",
            path.display()
        ))
    };
    let dirty = dirty_files(path)?;
    if !dirty.is_empty() {
        return Err(Error::Conflict(format!(
            "{} has uncommitted changes ({}); not reusing it",
            path.display(),
            dirty.join(", ")
        )));
    }
    let base_commit = branch_tip(repo, base)?;
    let tip = branch_tip(repo, current).map_err(|_| busy())?;
    if !is_merged(repo, tip, base_commit, landed)? {
        return Err(busy());
    }
    let wt_repo = Repository::open(path)?;
    let start = wt_repo.find_commit(base_commit)?;
    let new_branch = wt_repo.branch(branch, &start, false)?;
    let refname = new_branch
        .get()
        .name()
        .map_err(|_| Error::bad(format!("branch name '{branch}' is not valid UTF-8")))?
        .to_string();
    wt_repo.checkout_tree(
        start.as_object(),
        Some(git2::build::CheckoutBuilder::new().safe()),
    )?;
    wt_repo.set_head(&refname)?;
    Ok(())
}

/// The worktree's changes against `base` (committed since the merge base, staged and
/// unstaged, untracked files included) as a unified diff, at most `max_bytes` long.
pub fn diff_against(path: &Path, base: &str, max_bytes: usize) -> Result<String> {
    let repo = Repository::open(path)?;
    let head = repo.head()?.peel_to_commit()?;
    let base_commit = repo
        .find_branch(base, BranchType::Local)
        .map_err(|_| Error::bad(format!("branch '{base}' not found")))?
        .get()
        .peel_to_commit()?;
    let fork = repo.merge_base(head.id(), base_commit.id())?;
    let fork_tree = repo.find_commit(fork)?.tree()?;
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .show_untracked_content(true);
    let diff = repo.diff_tree_to_workdir_with_index(Some(&fork_tree), Some(&mut opts))?;
    let mut out = String::new();
    let mut truncated = false;
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        if out.len() >= max_bytes {
            truncated = true;
            return false;
        }
        let origin = line.origin();
        if matches!(origin, '+' | '-' | ' ') {
            out.push(origin);
        }
        out.push_str(&String::from_utf8_lossy(line.content()));
        true
    })
    .or_else(|e| if truncated { Ok(()) } else { Err(e) })?;
    if truncated {
        out.push_str("\n... (diff truncated)\n");
    }
    if out.is_empty() {
        out.push_str(&format!("No changes against {base}.\n"));
    }
    Ok(out)
}

/// Whether the worktree at `path` can move on to new work: clean, and its branch merged into
/// `base` (so nothing is left behind; see [`is_merged`]).
pub fn reusable(repo_dir: &Path, path: &Path, base: &str, landed: &[Landed]) -> bool {
    let check = || -> Result<bool> {
        if !dirty_files(path)?.is_empty() {
            return Ok(false);
        }
        let repo = Repository::open(repo_dir)?;
        let tip = Repository::open(path)?.head()?.peel_to_commit()?.id();
        is_merged(&repo, tip, branch_tip(&repo, base)?, landed)
    };
    check().unwrap_or(false)
}

/// What `remove_if_merged` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// Kept, and why (uncommitted changes, or commits not merged into the base).
    Kept(String),
}

/// Removes the worktree at `path` (git's name `name`) and its branch, but only when nothing
/// can be lost: it is clean and its branch is merged into `base` (see [`is_merged`]).
pub fn remove_if_merged(
    repo_dir: &Path,
    path: &Path,
    name: &str,
    base: &str,
    landed: &[Landed],
) -> Result<Removal> {
    let dirty = dirty_files(path)?;
    if !dirty.is_empty() {
        return Ok(Removal::Kept(format!(
            "uncommitted changes: {}",
            dirty.join(", ")
        )));
    }
    let branch = current_branch(path)?;
    let repo = Repository::open(repo_dir)?;
    let tip = Repository::open(path)?.head()?.peel_to_commit()?.id();
    if !is_merged(&repo, tip, branch_tip(&repo, base)?, landed)? {
        return Ok(Removal::Kept(format!(
            "branch '{branch}' has commits not merged into '{base}'"
        )));
    }
    std::fs::remove_dir_all(path).map_err(|e| Error::io("remove", path, e))?;
    if let Ok(wt) = repo.find_worktree(name) {
        wt.prune(Some(
            git2::WorktreePruneOptions::new()
                .valid(true)
                .working_tree(true),
        ))?;
    }
    if let Ok(mut b) = repo.find_branch(&branch, BranchType::Local) {
        let _ = b.delete();
    }
    Ok(Removal::Removed)
}

/// The branch checked out in the worktree or repository at `path`.
pub fn current_branch(path: &Path) -> Result<String> {
    let repo = Repository::open(path)?;
    let head = repo.head()?;
    Ok(head.shorthand().unwrap_or("HEAD").to_string())
}

/// Files with uncommitted changes (untracked files included, ignored ones not).
pub fn dirty_files(path: &Path) -> Result<Vec<String>> {
    let repo = Repository::open(path)?;
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false);
    let statuses = repo.statuses(Some(&mut opts))?;
    Ok(statuses
        .iter()
        .filter(|s| !s.status().is_empty())
        .filter_map(|s| s.path().ok().map(str::to_string))
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub use crate::test_kit::source_repo;

    #[test]
    fn clone_worktree_and_dirty_detection() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir(&src).unwrap();
        source_repo(&src);
        let dest = tmp.path().join("rig/repo");
        let err = clone_rig(src.to_str().unwrap(), "nope", &dest).unwrap_err();
        assert!(err.to_string().contains("branch 'nope' not found"), "{err}");
        assert!(!dest.exists(), "a failed clone leaves nothing");
        assert!(clone_rig("/no/such/dir", "main", &dest)
            .unwrap_err()
            .to_string()
            .contains("no such directory"));
        let plain = tmp.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        assert!(clone_rig(plain.to_str().unwrap(), "main", &dest)
            .unwrap_err()
            .to_string()
            .contains("not a git repository"));

        clone_rig(src.to_str().unwrap(), "main", &dest).unwrap();
        assert!(dest.join("test.sh").is_file());
        assert!(
            clone_rig(src.to_str().unwrap(), "main", &dest).is_err(),
            "exists"
        );

        let wt = tmp.path().join("rig/polecats/nux");
        add_worktree(&dest, &wt, "polecat-nux", "polecat/nux/gt-abc", "main", &[]).unwrap();
        assert_eq!(current_branch(&wt).unwrap(), "polecat/nux/gt-abc");
        assert!(dirty_files(&wt).unwrap().is_empty());
        // Same branch again: reused.
        add_worktree(&dest, &wt, "polecat-nux", "polecat/nux/gt-abc", "main", &[]).unwrap();
        // Its branch has no commits beyond main: the worktree moves on to the next bead.
        add_worktree(&dest, &wt, "polecat-nux", "polecat/nux/gt-def", "main", &[]).unwrap();
        assert_eq!(current_branch(&wt).unwrap(), "polecat/nux/gt-def");
        // Unmerged commits are never left behind.
        std::fs::write(wt.join("new.txt"), "x").unwrap();
        assert_eq!(dirty_files(&wt).unwrap(), vec!["new.txt".to_string()]);
        assert!(
            add_worktree(&dest, &wt, "polecat-nux", "polecat/nux/gt-ghi", "main", &[])
                .unwrap_err()
                .to_string()
                .contains("uncommitted changes")
        );
        let r = Repository::open(&wt).unwrap();
        let mut index = r.index().unwrap();
        index.add_path(Path::new("new.txt")).unwrap();
        index.write().unwrap();
        let tree = r.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parent = r.head().unwrap().peel_to_commit().unwrap();
        r.commit(Some("HEAD"), &sig, &sig, "work", &tree, &[&parent])
            .unwrap();
        let err =
            add_worktree(&dest, &wt, "polecat-nux", "polecat/nux/gt-ghi", "main", &[]).unwrap_err();
        assert!(err.to_string().contains("not merged"), "{err}");
        assert_eq!(current_branch(&wt).unwrap(), "polecat/nux/gt-def");

        // Squashed onto main: the branch is no ancestor of main, so only the record of the
        // merge (made from this tip, its commit on main) says it is merged.
        let tip = r.head().unwrap().peel_to_commit().unwrap();
        let canon = Repository::open(&dest).unwrap();
        let main = canon
            .find_branch("main", BranchType::Local)
            .unwrap()
            .get()
            .peel_to_commit()
            .unwrap();
        let squash = canon
            .commit(
                None,
                &sig,
                &sig,
                "gt-def: work",
                &canon.find_tree(tip.tree_id()).unwrap(),
                &[&main],
            )
            .unwrap();
        let landed = |commit: Oid| Landed {
            branch: "polecat/nux/gt-def".into(),
            source_tip: tip.id().to_string(),
            commit: commit.to_string(),
        };
        // Recorded, but not on main yet: not merged, and the worktree stays.
        let pending = [landed(squash)];
        assert!(!reusable(&dest, &wt, "main", &pending));
        assert!(matches!(
            remove_if_merged(&dest, &wt, "polecat-nux", "main", &pending).unwrap(),
            Removal::Kept(_)
        ));
        canon
            .reference("refs/heads/main", squash, true, "squash")
            .unwrap();
        assert!(!reusable(&dest, &wt, "main", &[]), "ancestry alone says no");
        assert!(reusable(&dest, &wt, "main", &pending));
        // A merge made from another commit says nothing about this one.
        let other = Landed {
            source_tip: main.id().to_string(),
            ..landed(squash)
        };
        assert!(!reusable(&dest, &wt, "main", std::slice::from_ref(&other)));
        assert_eq!(
            remove_if_merged(&dest, &wt, "polecat-nux", "main", &pending).unwrap(),
            Removal::Removed
        );
        assert!(!wt.exists());
        assert!(
            add_worktree(&dest, &tmp.path().join("x"), "x", "b", "nobranch", &[])
                .unwrap_err()
                .to_string()
                .contains("branch 'nobranch' not found")
        );
    }

    #[test]
    fn a_rig_lock_is_had_by_one_at_a_time_and_let_go_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let held = RigLock::wait(tmp.path()).unwrap();
        assert!(
            RigLock::try_take(tmp.path()).unwrap().is_none(),
            "held elsewhere"
        );
        drop(held);
        let again = RigLock::try_take(tmp.path()).unwrap();
        assert!(again.is_some(), "free once the holder let go");
    }
}
