//! The git side of the Refinery (git2): make the commit a bead's branch lands as, in memory
//! (one squashed commit, a merge commit, or the branch's commits rebased), check it out in the
//! rig's scratch worktree, and move the target branch only from the exact commit the tests
//! ran on top of (a compare-and-swap on the ref).

pub use super::worktree::branch_tip;
use super::worktree::{add_worktree, on_target};
use crate::{Error, Result};
use git2::{Oid, RebaseOptions, Repository, Signature};
use std::path::Path;

/// What landing a branch on the target would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landing {
    /// The commit the target would move to (the target itself when the branch brings nothing).
    Clean(Oid),
    /// The files that conflict.
    Conflict(Vec<String>),
}

/// The words of a commit the Refinery makes for a bead: its subject (the bead id and title)
/// and what follows the subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
}

/// Who the Refinery is, as a committer.
fn refinery() -> Result<Signature<'static>> {
    Ok(Signature::now(
        "gastown-tui refinery",
        "refinery@gastown.local",
    )?)
}

/// The author of the branch's newest commit, at this moment: who the commit the Refinery
/// makes for the branch is by.
fn author_of(commit: &git2::Commit<'_>) -> Result<Signature<'static>> {
    let a = commit.author();
    let name = a.name().unwrap_or("polecat");
    let email = a.email().unwrap_or("polecat@gastown.local");
    Ok(Signature::now(name, email)?)
}

/// The subjects of the branch's commits that are not on the target, oldest first.
pub fn subjects(repo: &Repository, tip: Oid, onto: Oid) -> Result<Vec<String>> {
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    walk.hide(onto)?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    let mut out = Vec::new();
    for oid in walk {
        let c = repo.find_commit(oid?)?;
        out.push(c.summary().ok().flatten().unwrap_or("").to_string());
    }
    Ok(out)
}

/// The sorted, distinct paths of an index's conflicts.
fn conflict_files(index: &git2::Index) -> Result<Vec<String>> {
    let mut files: Vec<String> = index
        .conflicts()?
        .flatten()
        .filter_map(|c| c.our.or(c.their).or(c.ancestor))
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// The branch at `tip` as one new commit on `onto` holding the branch's whole change, by the
/// branch's author, with `msg` (the list of the branch's own commit subjects is added to its
/// body). The target itself when the branch changes nothing on it.
pub fn squash_onto(repo: &Repository, tip: Oid, onto: Oid, msg: &Message) -> Result<Landing> {
    let mut text = format!("{}\n\n{}", msg.subject, msg.body);
    let subjects = subjects(repo, tip, onto)?;
    if !subjects.is_empty() {
        let n = match subjects.len() {
            1 => "one commit".to_string(),
            n => format!("{n} commits"),
        };
        text.push_str(&format!("\n\nSquashed from {n}:\n"));
        for s in subjects {
            text.push_str(&format!("- {s}\n"));
        }
    }
    commit_merged(repo, tip, onto, &text, false)
}

/// The branch at `tip` merged into `onto` with a merge commit (never a fast-forward), by the
/// branch's author, with `msg`. The target itself when the branch is already on it.
pub fn merge_onto(repo: &Repository, tip: Oid, onto: Oid, msg: &Message) -> Result<Landing> {
    if on_target(repo, onto, tip)? {
        return Ok(Landing::Clean(onto));
    }
    commit_merged(
        repo,
        tip,
        onto,
        &format!("{}\n\n{}", msg.subject, msg.body),
        true,
    )
}

/// One commit on `onto` holding the three-way merge of the branch at `tip` into it, by the
/// branch's author, saying `text`: with the branch's tip as its second parent (`keep_branch`,
/// a merge commit), else alone (a squash, none when the target holds the change already).
fn commit_merged(
    repo: &Repository,
    tip: Oid,
    onto: Oid,
    text: &str,
    keep_branch: bool,
) -> Result<Landing> {
    let (base, theirs) = (repo.find_commit(onto)?, repo.find_commit(tip)?);
    let mut index = repo.merge_commits(&base, &theirs, None)?;
    if index.has_conflicts() {
        return Ok(Landing::Conflict(conflict_files(&index)?));
    }
    let tree = index.write_tree_to(repo)?;
    if !keep_branch && tree == base.tree_id() {
        return Ok(Landing::Clean(onto));
    }
    let parents: Vec<&git2::Commit> = if keep_branch {
        vec![&base, &theirs]
    } else {
        vec![&base]
    };
    let tree = repo.find_tree(tree)?;
    let author = author_of(&theirs)?;
    let commit = repo.commit(None, &author, &refinery()?, text, &tree, &parents)?;
    Ok(Landing::Clean(commit))
}

/// Replays the branch at `tip` onto `onto`, in memory (no working tree is touched). Authors
/// are kept; the Refinery is the committer.
pub fn rebase_onto(repo: &Repository, tip: Oid, onto: Oid) -> Result<Landing> {
    if on_target(repo, tip, onto)? {
        return Ok(Landing::Clean(tip));
    }
    let branch_ann = repo.find_annotated_commit(tip)?;
    let onto_ann = repo.find_annotated_commit(onto)?;
    let mut opts = RebaseOptions::new();
    opts.inmemory(true);
    let mut rebase = repo.rebase(Some(&branch_ann), Some(&onto_ann), None, Some(&mut opts))?;
    let committer = refinery()?;
    let mut last = onto;
    while let Some(op) = rebase.next() {
        op?;
        let index = rebase.inmemory_index()?;
        if index.has_conflicts() {
            let files = conflict_files(&index)?;
            rebase.abort()?;
            return Ok(Landing::Conflict(files));
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
    Ok(Landing::Clean(last))
}

/// Puts the rig's scratch worktree at `commit` (detached), clean: tracked files as in the
/// commit, untracked leftovers of an earlier run removed.
pub fn prepare_scratch(repo_dir: &Path, scratch: &Path, base: &str, commit: Oid) -> Result<()> {
    if !scratch.exists() {
        add_worktree(repo_dir, scratch, "refinery", "refinery", base, &[])?;
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

    fn switch(repo: &Repository, branch: &str) {
        repo.set_head(&format!("refs/heads/{branch}")).unwrap();
        repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
    }

    /// A repository at `dir` whose `main` began with `a.txt`, with two branches off that
    /// start: `feature`, made by `work`, and `clash`, which rewrites `a.txt`; then `main` moved
    /// on, rewriting `a.txt` too. The repository, the start and main's tip.
    fn two_branches(dir: &Path, work: impl FnOnce(&Repository)) -> (Repository, Oid, Oid) {
        let repo =
            Repository::init_opts(dir, git2::RepositoryInitOptions::new().initial_head("main"))
                .unwrap();
        let start = commit_file(&repo, "a.txt", "one\n", "init");
        let start_commit = repo.find_commit(start).unwrap();
        repo.branch("feature", &start_commit, false).unwrap();
        repo.branch("clash", &start_commit, false).unwrap();
        drop(start_commit);
        switch(&repo, "feature");
        work(&repo);
        switch(&repo, "clash");
        commit_file(&repo, "a.txt", "clash\n", "clash");
        switch(&repo, "main");
        let moved = commit_file(&repo, "a.txt", "main moved\n", "main");
        (repo, start, moved)
    }

    #[test]
    fn rebase_clean_conflict_and_compare_and_swap() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let (repo, base, moved) = two_branches(&src, |repo| {
            commit_file(repo, "b.txt", "feature\n", "feature");
        });

        let Landing::Clean(tip) =
            rebase_onto(&repo, branch_tip(&repo, "feature").unwrap(), moved).unwrap()
        else {
            panic!("feature should rebase cleanly")
        };
        assert!(repo.graph_descendant_of(tip, moved).unwrap());
        let c = repo.find_commit(tip).unwrap();
        assert_eq!(c.author().name().ok(), Some("t"), "the author is kept");
        assert_eq!(c.committer().name().ok(), Some("gastown-tui refinery"));
        assert_eq!(
            rebase_onto(&repo, branch_tip(&repo, "clash").unwrap(), moved).unwrap(),
            Landing::Conflict(vec!["a.txt".into()])
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
            rebase_onto(&repo, branch_tip(&repo, "main").unwrap(), tip).unwrap(),
            Landing::Clean(tip)
        );
    }

    #[test]
    fn squash_and_merge_make_one_commit_on_the_target() {
        let tmp = tempfile::tempdir().unwrap();
        let (repo, _, moved) = two_branches(tmp.path(), |repo| {
            commit_file(repo, "BROKEN", "x\n", "gt-1: break the tests");
            std::fs::remove_file(tmp.path().join("BROKEN")).unwrap();
            let mut index = repo.index().unwrap();
            index.remove_path(Path::new("BROKEN")).unwrap();
            index.write().unwrap();
            commit_file(repo, "b.txt", "feature\n", "gt-1: fix the tests");
        });
        let fix = branch_tip(&repo, "feature").unwrap();
        let msg = Message {
            subject: "gt-1: Add b".into(),
            body: "Branch feature by nux, merge request mr-1.".into(),
        };

        let Landing::Clean(sq) =
            squash_onto(&repo, branch_tip(&repo, "feature").unwrap(), moved, &msg).unwrap()
        else {
            panic!("feature squashes cleanly")
        };
        let c = repo.find_commit(sq).unwrap();
        assert_eq!(
            c.parent_ids().collect::<Vec<_>>(),
            vec![moved],
            "one commit on main"
        );
        let tree = c.tree().unwrap();
        for (file, present) in [("a.txt", true), ("b.txt", true), ("BROKEN", false)] {
            assert_eq!(tree.get_path(Path::new(file)).is_ok(), present, "{file}");
        }
        assert_eq!(c.summary().unwrap(), Some("gt-1: Add b"));
        let text = c.message().unwrap();
        assert!(text.contains("merge request mr-1"), "{text}");
        assert!(text.contains("Squashed from 2 commits:\n"), "{text}");
        assert!(
            text.contains("- gt-1: break the tests\n- gt-1: fix the tests\n"),
            "the branch's commits, oldest first: {text}"
        );
        assert_eq!(c.author().name().ok(), Some("t"), "by the branch's author");
        assert_eq!(c.committer().name().ok(), Some("gastown-tui refinery"));
        assert_eq!(
            squash_onto(&repo, branch_tip(&repo, "clash").unwrap(), moved, &msg).unwrap(),
            Landing::Conflict(vec!["a.txt".into()])
        );

        let Landing::Clean(m) =
            merge_onto(&repo, branch_tip(&repo, "feature").unwrap(), moved, &msg).unwrap()
        else {
            panic!("feature merges cleanly")
        };
        let c = repo.find_commit(m).unwrap();
        assert_eq!(c.parent_ids().collect::<Vec<_>>(), vec![moved, fix]);
        assert_eq!(c.tree_id(), repo.find_commit(sq).unwrap().tree_id());
        assert_eq!(
            merge_onto(&repo, branch_tip(&repo, "clash").unwrap(), moved, &msg).unwrap(),
            Landing::Conflict(vec!["a.txt".into()])
        );
        // A branch already on the target brings nothing: the target itself.
        assert_eq!(
            merge_onto(&repo, branch_tip(&repo, "main").unwrap(), moved, &msg).unwrap(),
            Landing::Clean(moved)
        );
        advance_branch(&repo, "main", moved, sq, "squash").unwrap();
        assert_eq!(
            squash_onto(&repo, branch_tip(&repo, "feature").unwrap(), sq, &msg).unwrap(),
            Landing::Clean(sq),
            "a change the target holds already makes no commit"
        );
    }
}
