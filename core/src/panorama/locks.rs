//! What to do when Panorama refuses a commit or a push: decided from who holds which lock
//! (`show commit-locks`, `show config-locks`), never from the refusal's message text, which PAN-OS
//! does not document (facts §11.6).

/// The decision after a refused commit or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitRefusal {
    /// Another administrator holds a lock that blocks our commit: wait (bounded), then fail
    /// naming them. pano-eks never removes another admin's lock.
    WaitForLock { lock: LockKind, owners: Vec<String> },
    /// No lock of anyone else, but a commit is running: wait for it (bounded).
    WaitForCommit,
    /// Not a lock of anyone else: fail with Panorama's message. `own_lock` when our own admin
    /// holds a commit lock (which does not block its own commits): another process using the
    /// same admin is the usual cause, worth saying.
    Fail { own_lock: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Commit,
    Config,
}

impl std::fmt::Display for LockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LockKind::Commit => "commit lock",
            LockKind::Config => "config lock",
        })
    }
}

/// Judges a refused commit of administrator `me` from the lock owners Panorama lists (one name
/// per lock, as `show commit-locks` / `show config-locks` list them) and whether Panorama said a
/// commit is in progress. Owners are sorted and deduplicated.
pub fn judge_commit_refusal(commit_lock_owners: &[String], config_lock_owners: &[String], me: &str, in_progress: bool) -> CommitRefusal {
    let others = |owners: &[String]| {
        let mut v: Vec<String> = owners.iter().filter(|o| o.as_str() != me && !o.is_empty()).cloned().collect();
        v.sort();
        v.dedup();
        v
    };
    let commit = others(commit_lock_owners);
    if !commit.is_empty() {
        return CommitRefusal::WaitForLock { lock: LockKind::Commit, owners: commit };
    }
    let config = others(config_lock_owners);
    if !config.is_empty() {
        return CommitRefusal::WaitForLock { lock: LockKind::Config, owners: config };
    }
    if in_progress {
        return CommitRefusal::WaitForCommit;
    }
    CommitRefusal::Fail { own_lock: commit_lock_owners.iter().any(|o| o == me) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn commit_refusals_are_judged_by_who_holds_the_lock() {
        use CommitRefusal::*;
        let wait = |lock, owners: &[&str]| WaitForLock { lock, owners: v(owners) };
        let cases: Vec<(&str, Vec<String>, Vec<String>, bool, CommitRefusal)> = vec![
            ("another admin's commit lock", v(&["alice"]), v(&[]), false, wait(LockKind::Commit, &["alice"])),
            (
                "two others, sorted, ours left out",
                v(&["zed", "pano-eks", "alice"]),
                v(&[]),
                false,
                wait(LockKind::Commit, &["alice", "zed"]),
            ),
            ("a commit lock wins over a config lock", v(&["alice"]), v(&["bob"]), true, wait(LockKind::Commit, &["alice"])),
            ("another admin's config lock", v(&[]), v(&["bob", "bob"]), false, wait(LockKind::Config, &["bob"])),
            ("our own commit lock does not block us: fail", v(&["pano-eks"]), v(&[]), false, Fail { own_lock: true }),
            ("our own locks, a commit running: wait for it", v(&["pano-eks"]), v(&["pano-eks"]), true, WaitForCommit),
            ("nobody's lock, a commit running", v(&[]), v(&[]), true, WaitForCommit),
            ("nobody's lock: not a lock problem", v(&[]), v(&[]), false, Fail { own_lock: false }),
            ("names are exact (PAN-OS admins are case-sensitive)", v(&["Pano-Eks"]), v(&[]), false, wait(LockKind::Commit, &["Pano-Eks"])),
        ];
        for (case, commit, config, in_progress, want) in cases {
            assert_eq!(judge_commit_refusal(&commit, &config, "pano-eks", in_progress), want, "{case}");
        }
    }
}
