//! The vm-auth-key of the bootstrap package (`config/init-cfg.txt`): firewalls the autoscaling
//! group launches register with Panorama with it, so an expired key strands every replacement.
//! `up` generates it (`generate`, the one place pano-eks asks Panorama for a key); `sync` renews it
//! ahead of expiry in the bootstrap package (`renew_if_due`); `status` shows its expiry (`check`).
//! The comparison with the expiry Panorama lists is `prepare::vm_auth_key_check` (one function,
//! so its clock can change in one place); what to do about its answer is decided in
//! `pano_eks_core::prepare::vm_auth_key` (`state`, `action`).

pub use pano_eks_core::prepare::vm_auth_key::{KeyAction, KeyState, renew_window, state};

use crate::aws::{Aws, bucket};
use crate::config::Config;
use crate::panorama::client::PanoramaClient;
use crate::secret::Secret;

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

/// When the bootstrap package's key expires (Unix time) for /metrics; `None`: no key, or Panorama
/// does not know it.
pub async fn expiry_unix(aws: &Aws, cfg: &Config, client: &PanoramaClient) -> Result<Option<i64>, String> {
    let Some(key) = in_bucket(aws, cfg).await? else { return Ok(None) };
    super::prepare::vm_auth_key_expiry_unix(client, &key).await
}

/// `sync`'s step: warn ahead of expiry and, when `may_renew` (not a standby replica, no
/// configured key), put a new key into the bootstrap package. Returns report lines.
pub async fn renew_if_due(aws: &Aws, cfg: &Config, client: &PanoramaClient, may_renew: bool) -> Result<Vec<String>, String> {
    let Some(st) = check(aws, cfg, client).await? else { return Ok(Vec::new()) };
    let (mut lines, expiry) = match pano_eks_core::prepare::vm_auth_key::action(st, cfg.firewalls.vm_auth_key_env.as_deref(), may_renew) {
        KeyAction::Nothing => return Ok(Vec::new()),
        KeyAction::Report(lines) => return Ok(lines),
        KeyAction::Renew { lines, old_expiry } => (lines, old_expiry),
    };
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
