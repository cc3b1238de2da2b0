//! The git side of the Refinery (git2): rebase a branch onto the target in memory, check the
//! result out in the rig's scratch worktree, and move the target branch only from the exact
//! commit the tests ran on top of (a compare-and-swap on the ref).

use super::worktree::add_worktree;
use crate::{Error, Result};
use git2::{BranchType, Oid, RebaseOptions, Repository, Signature};
use std::path::Path;

/// What a rebase gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebased {
    /// The branch replayed onto the target: the new tip.
    Clean(Oid),
    /// The files that conflict.
    Conflict(Vec<String>),
}

/// The tip of local branch `name`.
pub fn branch_tip(repo: &Repository, name: &str) -> Result<Oid> {
    repo.find_branch(name, BranchType::Local)
        .map_err(|_| Error::bad(format!("branch '{name}' not found")))?
        .get()
        .target()
        .ok_or_else(|| Error::bad(format!("branch '{name}' points nowhere")))
}

/// Replays `branch` onto `onto`, in memory (no working tree is touched). Authors are kept;
/// the Refinery is the committer.
pub fn rebase_onto(repo: &Repository, branch: &str, onto: Oid) -> Result<Rebased> {
    let tip = branch_tip(repo, branch)?;
    if tip == onto || repo.graph_descendant_of(tip, onto)? {
        return Ok(Rebased::Clean(tip));
    }
    let branch_ann = repo.find_annotated_commit(tip)?;
    let onto_ann = repo.find_annotated_commit(onto)?;
    let mut opts = RebaseOptions::new();
    opts.inmemory(true);
    let mut rebase = repo.rebase(Some(&branch_ann), Some(&onto_ann), None, Some(&mut opts))?;
    let committer = Signature::now("gastown-tui refinery", "refinery@gastown.local")?;
    let mut last = onto;
    while let Some(op) = rebase.next() {
        op?;
        let index = rebase.inmemory_index()?;
        if index.has_conflicts() {
            let mut files: Vec<String> = index
                .conflicts()?
                .flatten()
                .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                .collect();
            files.sort();
            files.dedup();
            rebase.abort()?;
            return Ok(Rebased::Conflict(files));
        }
        match rebase.commit(None, &committer, None) {
            Ok(oid) => last = oid,
            // The change is already on the target: nothing to commit for this step.
            Err(e) if e.code() == git2::ErrorCode::Applied => {}
            Err(e) => {
                let _ = rebase.abort();
                return Err(e.into());
            }
        }
    }
    rebase.finish(Some(&committer))?;
    Ok(Rebased::Clean(last))
}

/// Puts the rig's scratch worktree at `commit` (detached), clean: tracked files as in the
/// commit, untracked leftovers of an earlier run removed.
pub fn prepare_scratch(repo_dir: &Path, scratch: &Path, base: &str, commit: Oid) -> Result<()> {
    if !scratch.exists() {
        add_worktree(repo_dir, scratch, "refinery", "refinery", base)?;
    }
    let repo = Repository::open(scratch)?;
    repo.set_head_detached(commit)?;
    repo.checkout_head(Some(
        git2::build::CheckoutBuilder::new()
            .force()
            .remove_untracked(true),
    ))?;
    Ok(())
}

/// Moves local branch `name` from `expected` to `new`; false when it moved meanwhile.
pub fn advance_branch(
    repo: &Repository,
    name: &str,
    expected: Oid,
    new: Oid,
    msg: &str,
) -> Result<bool> {
    let refname = format!("refs/heads/{name}");
    match repo.reference_matching(&refname, new, true, expected, msg) {
        Ok(_) => Ok(true),
        Err(e)
            if e.code() == git2::ErrorCode::Modified
                || e.class() == git2::ErrorClass::Reference =>
        {
            Ok(branch_tip(repo, name)? == new)
        }
        Err(e) => Err(e.into()),
    }
}

/// Brings a clean checkout whose HEAD is `branch` up to that branch's (moved) tip.
pub fn sync_checkout(path: &Path, branch: &str) -> Result<()> {
    let repo = Repository::open(path)?;
    let on_branch = repo
        .head()
        .ok()
        .and_then(|h| h.shorthand().ok().map(str::to_string));
    if on_branch.as_deref() == Some(branch) {
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))?;
    }
    Ok(())
}

/// Pushes `branch` to `remote` (for rigs with a push remote).
pub fn push(repo: &Repository, remote: &str, branch: &str) -> Result<()> {
    let mut r = repo
        .find_remote(remote)
        .map_err(|_| Error::bad(format!("no remote '{remote}' in the rig's repository")))?;
    let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
    r.push(&[spec.as_str()], None)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_file(repo: &Repository, file: &str, text: &str, msg: &str) -> Oid {
        let dir = repo.workdir().unwrap().to_path_buf();
        std::fs::write(dir.join(file), text).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new(file)).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("t", "t@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
            .unwrap()
    }

    #[test]
    fn rebase_clean_conflict_and_compare_and_swap() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let repo = Repository::init_opts(
            &src,
            git2::RepositoryInitOptions::new().initial_head("main"),
        )
        .unwrap();
        let base = commit_file(&repo, "a.txt", "one\n", "init");
        // Two branches off the same base.
        let main_commit = repo.find_commit(base).unwrap();
        repo.branch("feature", &main_commit, false).unwrap();
        repo.branch("clash", &main_commit, false).unwrap();
        repo.set_head("refs/heads/feature").unwrap();
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
        commit_file(&repo, "b.txt", "feature\n", "feature");
        repo.set_head("refs/heads/clash").unwrap();
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
        commit_file(&repo, "a.txt", "clash\n", "clash");
        repo.set_head("refs/heads/main").unwrap();
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
        let moved = commit_file(&repo, "a.txt", "main moved\n", "main");

        let Rebased::Clean(tip) = rebase_onto(&repo, "feature", moved).unwrap() else {
            panic!("feature should rebase cleanly")
        };
        assert!(repo.graph_descendant_of(tip, moved).unwrap());
        let c = repo.find_commit(tip).unwrap();
        assert_eq!(c.author().name().ok(), Some("t"), "the author is kept");
        assert_eq!(c.committer().name().ok(), Some("gastown-tui refinery"));
        assert_eq!(
            rebase_onto(&repo, "clash", moved).unwrap(),
            Rebased::Conflict(vec!["a.txt".into()])
        );
        // The scratch worktree shows the rebased tree.
        let scratch = tmp.path().join("refinery");
        prepare_scratch(&src, &scratch, "main", tip).unwrap();
        assert_eq!(
            std::fs::read_to_string(scratch.join("a.txt")).unwrap(),
            "main moved\n"
        );
        assert!(scratch.join("b.txt").is_file());
        // The target moves only from the commit the tests ran on.
        assert!(!advance_branch(&repo, "main", base, tip, "stale").unwrap());
        assert_eq!(branch_tip(&repo, "main").unwrap(), moved);
        assert!(advance_branch(&repo, "main", moved, tip, "merge").unwrap());
        assert_eq!(branch_tip(&repo, "main").unwrap(), tip);
        // Already on top: nothing to replay.
        assert_eq!(
            rebase_onto(&repo, "main", tip).unwrap(),
            Rebased::Clean(tip)
        );
    }
}
