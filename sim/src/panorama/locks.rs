//! Config locks (per scope, one owner each) and commit locks (one holder), per admin, with
//! the texts clients match on (facts §5; pan-os-python `add_config_lock` & co use regexes).

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct Locks {
    /// scope -> (owner, comment)
    pub config: BTreeMap<String, (String, String)>,
    /// owner -> comment
    pub commit: BTreeMap<String, String>,
}

impl Locks {
    pub fn add_config(&mut self, scope: &str, admin: &str, comment: &str) -> Result<String, String> {
        match self.config.get(scope) {
            Some((o, _)) if o == admin => Err(format!("You already own a config lock for scope {scope}")),
            Some((o, _)) => Err(format!("Config for scope {scope} is currently locked by {o}")),
            None => {
                self.config.insert(scope.into(), (admin.into(), comment.into()));
                Ok(format!(
                    "Successfully acquired lock. Other administrators will not be able to modify configuration for scope {scope} until lock is released by {admin}."
                ))
            }
        }
    }

    pub fn remove_config(&mut self, scope: &str, admin: &str) -> Result<String, String> {
        match self.config.get(scope) {
            None => Err(format!("Config is not currently locked for scope {scope}")),
            Some((o, _)) if o != admin => Err(format!("Config for scope {scope} is currently locked by {o}")),
            Some(_) => {
                self.config.remove(scope);
                Ok("Config lock released for scope ".to_string() + scope)
            }
        }
    }

    pub fn add_commit(&mut self, admin: &str, comment: &str) -> Result<String, String> {
        if let Some(o) = self.commit.keys().next() {
            return Err(format!("Commit lock is already held by {o}"));
        }
        self.commit.insert(admin.into(), comment.into());
        Ok("Successfully acquired commit lock".into())
    }

    /// `who`: the `<admin>` to release (defaults to the caller).
    pub fn remove_commit(&mut self, who: &str) -> Result<String, String> {
        if self.commit.remove(who).is_none() {
            return Err("Commit lock is not currently held".into());
        }
        Ok("Successfully released commit lock".into())
    }

    /// Error for a write by `admin` touching `scope` (a device group name or "shared") when
    /// another admin holds a config lock on that scope or on `shared` (which covers everything).
    pub fn write_blocked(&self, admin: &str, scope: Option<&str>) -> Option<String> {
        for s in ["shared"].into_iter().chain(scope) {
            if let Some((o, _)) = self.config.get(s)
                && o != admin
            {
                return Some(format!("Configuration is locked by {o}"));
            }
        }
        None
    }

    pub fn commit_blocked(&self, admin: &str) -> Option<String> {
        self.commit.keys().find(|o| *o != admin).map(|o| format!("Commit lock is already held by {o}"))
    }
}
