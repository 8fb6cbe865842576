//! The vm-auth-key of the bootstrap package: when it is due, and what `sync` does about it.
//! Pure: the expiry check is [`super::check_vm_auth_key_by_panorama_clock`]; the adapter reads
//! the key and Panorama's answer and applies the [`KeyAction`].

use super::KeyProblem;

/// `sync` renews a key this long before it expires (30 days)…
pub const RENEW_BEFORE_SECS: i64 = 30 * 86_400;

/// …or a quarter of the configured lifetime before, when that is shorter: a new key must not
/// already be due (a short-lived key would otherwise be renewed by every sync).
pub fn renew_window(lifetime_hours: u32) -> i64 {
    RENEW_BEFORE_SECS.min(i64::from(lifetime_hours) * 3600 / 4)
}

/// What the bootstrap package's key needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// Valid past the renewal window; expires at this time (Panorama's text).
    Valid { expiry: String },
    /// Expires within the window, expired, or unknown to Panorama: renew.
    Due { expiry: Option<String>, why: String },
    /// Panorama's answer cannot be read: warn, change nothing.
    Unreadable { why: String },
}

/// The decision from the expiry check (`Ok(expiry)`: valid for the whole window).
pub fn state(check: Result<String, KeyProblem>) -> KeyState {
    match check {
        Ok(expiry) => KeyState::Valid { expiry },
        Err(p @ KeyProblem::TooSoon { .. }) | Err(p @ KeyProblem::Expired { .. }) => {
            let expiry = match &p {
                KeyProblem::TooSoon { expiry, .. } | KeyProblem::Expired { expiry } => Some(expiry.clone()),
                _ => None,
            };
            KeyState::Due { expiry, why: p.to_string() }
        }
        Err(p @ KeyProblem::Unknown) => KeyState::Due { expiry: None, why: p.to_string() },
        Err(p @ (KeyProblem::Unreadable { .. } | KeyProblem::UnreadableClock { .. })) => KeyState::Unreadable { why: p.to_string() },
    }
}

/// What `sync` does with the bootstrap package's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// Valid past the window.
    Nothing,
    /// Warn with these lines; change nothing (unreadable, a configured key, or not the leader).
    Report(Vec<String>),
    /// Generate a new key and put it into the bootstrap package; these lines first.
    Renew { lines: Vec<String>, old_expiry: Option<String> },
}

/// A due key is renewed only by the leader and only when pano-eks chose it: a configured key
/// (`firewalls.vm_auth_key_env`) is the operator's to replace.
pub fn action(state: KeyState, configured_env: Option<&str>, may_renew: bool) -> KeyAction {
    let (expiry, why) = match state {
        KeyState::Valid { .. } => return KeyAction::Nothing,
        KeyState::Unreadable { why } => return KeyAction::Report(vec![format!("warning: bootstrap vm-auth-key: {why}")]),
        KeyState::Due { expiry, why } => (expiry, why),
    };
    let mut lines =
        vec![format!("warning: bootstrap vm-auth-key: {why}; firewalls the autoscaling group launches after it expires cannot register")];
    if let Some(env) = configured_env {
        lines.push(format!(
            "   it is the configured key (firewalls.vm_auth_key_env = {env}): generate a new one on Panorama, set {env} to it and re-run `pano-eks up`"
        ));
        return KeyAction::Report(lines);
    }
    if !may_renew {
        lines.push("   not renewed here (not the leader); the leader renews it".into());
        return KeyAction::Report(lines);
    }
    KeyAction::Renew { lines, old_expiry: expiry }
}

/// When the key expires, as a Unix time for /metrics: Panorama prints `expiry-time` and its clock
/// in its own zone, so the time left by Panorama's clock is added to the local clock `now_unix`
/// (`None`: either text unreadable).
pub fn expiry_unix(expiry: &str, panorama_clock: &str, now_unix: i64) -> Option<i64> {
    Some(now_unix + super::parse_panos_time(expiry)? - super::parse_panorama_clock(panorama_clock)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_is_the_time_left_by_panoramas_clock_from_now() {
        // Panorama's zone is irrelevant: 2 days left by its clock are 2 days from the local now.
        assert_eq!(expiry_unix("2027/12/03 10:00:00", "2027/12/01 10:00:00", 1_000_000), Some(1_000_000 + 2 * 86_400));
        assert_eq!(expiry_unix("2027/12/01 09:00:00", "2027/12/01 10:00:00", 1_000_000), Some(1_000_000 - 3600), "expired");
        assert_eq!(expiry_unix("soon", "2027/12/01 10:00:00", 0), None);
        assert_eq!(expiry_unix("2027/12/01 10:00:00", "", 0), None);
    }

    #[test]
    fn renewal_decisions() {
        let exp = "2027/12/01 10:00:00".to_string();
        assert_eq!(state(Ok(exp.clone())), KeyState::Valid { expiry: exp.clone() });
        let due = state(Err(KeyProblem::TooSoon { expiry: exp.clone(), min_hours: 720 }));
        assert!(matches!(&due, KeyState::Due { expiry: Some(e), why } if *e == exp && why.contains("in less than 720 hour(s)")), "{due:?}");
        assert!(matches!(state(Err(KeyProblem::Expired { expiry: exp.clone() })), KeyState::Due { expiry: Some(_), .. }));
        assert!(matches!(state(Err(KeyProblem::Unknown)), KeyState::Due { expiry: None, .. }));
        assert!(matches!(state(Err(KeyProblem::Unreadable { expiry: "soon".into() })), KeyState::Unreadable { .. }));
    }

    #[test]
    fn only_the_leader_renews_and_never_a_configured_key() {
        let due = || KeyState::Due { expiry: Some("2027/01/01 00:00:00".into()), why: "expires soon".into() };
        assert_eq!(action(KeyState::Valid { expiry: "x".into() }, None, true), KeyAction::Nothing);
        assert!(matches!(action(due(), None, true), KeyAction::Renew { old_expiry: Some(_), ref lines } if lines.len() == 1));
        assert!(matches!(action(due(), None, false), KeyAction::Report(ref l) if l[1].contains("not the leader")));
        assert!(matches!(action(due(), Some("VMKEY"), true), KeyAction::Report(ref l) if l[1].contains("VMKEY")));
        assert!(matches!(action(KeyState::Unreadable { why: "?".into() }, None, true), KeyAction::Report(ref l) if l.len() == 1));
    }

    #[test]
    fn the_window_never_covers_a_fresh_key() {
        assert_eq!(renew_window(8760), RENEW_BEFORE_SECS); // a year: 30 days ahead
        assert_eq!(renew_window(24), 6 * 3600); // a day: 6 hours ahead
        assert_eq!(renew_window(1), 900);
        for h in [1, 24, 720, 2880, 8760, 8768] {
            assert!(renew_window(h) < i64::from(h) * 3600, "{h}");
        }
    }
}
