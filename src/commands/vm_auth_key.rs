//! The vm-auth-key of the bootstrap package (`config/init-cfg.txt`): firewalls the autoscaling
//! group launches register with Panorama with it, so an expired key strands every replacement.
//! `up` generates it (`generate`, the one place pano-eks asks Panorama for a key); `sync` renews it
//! ahead of expiry in the bootstrap package (`renew_if_due`); `status` shows its expiry (`check`).
//! The comparison with the expiry Panorama lists is `prepare::vm_auth_key_check` (one function,
//! so its clock can change in one place); what to do about its answer is `state`, pure.

use pano_eks_core::prepare::KeyProblem;

use crate::aws::{Aws, bucket};
use crate::config::Config;
use crate::panorama::client::PanoramaClient;
use crate::secret::Secret;

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

/// A new vm-auth-key from Panorama (`request bootstrap vm-auth-key generate lifetime <hours>`).
pub async fn generate(client: &PanoramaClient, lifetime_hours: u32) -> Result<Secret, String> {
    use crate::panorama::xml::Element;
    let cmd = Element::new("request").child(Element::new("bootstrap").child(
        Element::new("vm-auth-key").child(Element::new("generate").child(Element::new("lifetime").text(lifetime_hours.to_string()))),
    ));
    let r = client.op(&cmd).await.map_err(|e| format!("generating a vm-auth-key on Panorama: {e}"))?;
    let text = r.text_content();
    let key = text.split_whitespace().skip_while(|w| *w != "key").nth(1).filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric()));
    key.map(Secret::new).ok_or_else(|| "Panorama did not return a vm-auth-key".to_string())
}

/// The key in the bootstrap bucket's init-cfg.txt (`None`: no package or no key in it).
pub async fn in_bucket(aws: &Aws, cfg: &Config) -> Result<Option<Secret>, String> {
    let text = bucket::get_text(&aws.s3, &cfg.bootstrap_bucket(), "config/init-cfg.txt").await.map_err(|e| e.to_string())?;
    Ok(text.and_then(|t| t.lines().find_map(|l| l.strip_prefix("vm-auth-key=")).map(str::trim).filter(|k| !k.is_empty()).map(Secret::new)))
}

/// The state of the bootstrap package's key (`None`: there is none).
pub async fn check(aws: &Aws, cfg: &Config, client: &PanoramaClient) -> Result<Option<KeyState>, String> {
    let Some(key) = in_bucket(aws, cfg).await? else { return Ok(None) };
    let r = super::prepare::vm_auth_key_check(client, &key, renew_window(cfg.firewalls.vm_auth_key_lifetime_hours)).await?;
    Ok(Some(state(r)))
}

/// `sync`'s step: warn ahead of expiry and, when `may_renew` (not a standby replica, no
/// configured key), put a new key into the bootstrap package. Returns report lines.
pub async fn renew_if_due(aws: &Aws, cfg: &Config, client: &PanoramaClient, may_renew: bool) -> Result<Vec<String>, String> {
    let Some(st) = check(aws, cfg, client).await? else { return Ok(Vec::new()) };
    let (expiry, why) = match st {
        KeyState::Valid { .. } => return Ok(Vec::new()),
        KeyState::Unreadable { why } => return Ok(vec![format!("warning: bootstrap vm-auth-key: {why}")]),
        KeyState::Due { expiry, why } => (expiry, why),
    };
    let mut lines =
        vec![format!("warning: bootstrap vm-auth-key: {why}; firewalls the autoscaling group launches after it expires cannot register")];
    if let Some(env) = &cfg.firewalls.vm_auth_key_env {
        lines.push(format!(
            "   it is the configured key (firewalls.vm_auth_key_env = {env}): generate a new one on Panorama, set {env} to it and re-run `pano-eks up`"
        ));
        return Ok(lines);
    }
    if !may_renew {
        lines.push("   not renewed here (not the leader); the leader renews it".into());
        return Ok(lines);
    }
    let key = generate(client, cfg.firewalls.vm_auth_key_lifetime_hours).await?;
    let body = crate::render::bootstrap::init_cfg(cfg, Some(&key)).map_err(|e| e.to_string())?;
    bucket::put_objects(&aws.s3, &cfg.bootstrap_bucket(), &[bucket::Object { key: "config/init-cfg.txt".into(), body: body.as_bytes() }])
        .await
        .map_err(|e| format!("writing the renewed key to {}: {e}", cfg.bootstrap_bucket()))?;
    let new = match check(aws, cfg, client).await? {
        Some(KeyState::Valid { expiry }) => format!("expires {expiry}"),
        other => format!("{other:?}"),
    };
    lines.push(format!(
        "   renewed: a new vm-auth-key ({} hours) is in s3://{}/config/init-cfg.txt, {new}{}",
        cfg.firewalls.vm_auth_key_lifetime_hours,
        cfg.bootstrap_bucket(),
        expiry.map(|e| format!(" (the old one: {e})")).unwrap_or_default()
    ));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_window_never_covers_a_fresh_key() {
        assert_eq!(renew_window(8760), RENEW_BEFORE_SECS); // a year: 30 days ahead
        assert_eq!(renew_window(24), 6 * 3600); // a day: 6 hours ahead
        assert_eq!(renew_window(1), 900);
        for h in [1, 24, 720, 2880, 8760, 8768] {
            assert!(renew_window(h) < i64::from(h) * 3600, "{h}");
        }
    }
}
