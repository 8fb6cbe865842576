//! The VM-Series bootstrap package: what PAN-OS reads from the S3 bucket at first boot.
//! PAN-OS requires the folders config/, content/, software/, license/ (plugins/ optional) and
//! allows nothing else in the package; the file it reads is `config/init-cfg.txt` (the seed
//! guide's `init-config.txt` is wrong).

use std::fmt;

use crate::config::Config;
use crate::secret::Secret;

const INIT_CFG: &str = include_str!("../../bootstrap/init-cfg.txt.tera");

/// Folder placeholders (zero-byte objects whose key ends in `/`), as PAN's own tooling creates them.
pub const FOLDERS: &[&str] = &["config/", "content/", "license/", "plugins/", "software/"];

/// One S3 object of the package. Bodies holding secrets are masked in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapObject {
    pub key: String,
    body: Vec<u8>,
    pub secret: bool,
}

impl BootstrapObject {
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    pub fn is_folder(&self) -> bool {
        self.key.ends_with('/')
    }
}

impl fmt::Debug for BootstrapObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body: &dyn fmt::Debug = if self.secret { &"***" } else { &String::from_utf8_lossy(&self.body) };
        f.debug_struct("BootstrapObject").field("key", &self.key).field("body", body).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("the vm-auth-key {0} is not a single token of letters and digits")]
    BadVmAuthKey(&'static str),
    #[error("no auth code found{0}")]
    NoAuthcodes(&'static str),
    #[error("init-cfg value for `{key}` contains a line break or `=`; it would corrupt the file")]
    BadValue { key: &'static str },
    #[error("rendering init-cfg.txt: {0}")]
    Template(#[from] tera::Error),
}

/// What init-cfg needs beyond the config: secrets supplied at render/`up` time.
pub struct BootstrapInputs<'a> {
    /// `None` leaves `vm-auth-key=` empty (render without a key; `up` always supplies one).
    pub vm_auth_key: Option<&'a Secret>,
    /// The authcodes file's content.
    pub authcodes: &'a Secret,
}

/// All objects of the package, sorted by key.
pub fn package(cfg: &Config, inputs: &BootstrapInputs) -> Result<Vec<BootstrapObject>, BootstrapError> {
    let mut objects: Vec<BootstrapObject> =
        FOLDERS.iter().map(|f| BootstrapObject { key: f.to_string(), body: Vec::new(), secret: false }).collect();
    objects.push(BootstrapObject {
        key: "config/init-cfg.txt".into(),
        body: init_cfg(cfg, inputs.vm_auth_key)?.into_bytes(),
        secret: inputs.vm_auth_key.is_some(),
    });
    objects.push(BootstrapObject { key: "license/authcodes".into(), body: authcodes(inputs.authcodes)?.into_bytes(), secret: true });
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// `config/init-cfg.txt`: one `key=value` per line, each key once.
pub fn init_cfg(cfg: &Config, vm_auth_key: Option<&Secret>) -> Result<String, BootstrapError> {
    let key = match vm_auth_key {
        Some(k) if !k.expose().is_empty() && k.expose().chars().all(|c| c.is_ascii_alphanumeric()) => k.expose().to_string(),
        Some(_) => return Err(BootstrapError::BadVmAuthKey("supplied")),
        None => String::new(),
    };
    let p = &cfg.panorama;
    let server = p.server.clone().or_else(|| cfg.panorama_host()).unwrap_or_default();
    let mut ctx = tera::Context::new();
    for (k, v) in [
        ("panorama_server", server.as_str()),
        ("panorama_server_2", p.server_2.as_deref().unwrap_or("")),
        ("template_stack", p.template_stack.as_str()),
        ("device_group", p.device_group.as_str()),
    ] {
        if v.contains(['\n', '\r', '=']) {
            return Err(BootstrapError::BadValue { key: k });
        }
        ctx.insert(k, v);
    }
    ctx.insert("vm_auth_key", &key);
    Ok(tera::Tera::one_off(INIT_CFG, &ctx, false)?)
}

/// `license/authcodes`: one code per line, blank lines and surrounding space removed.
pub fn authcodes(raw: &Secret) -> Result<String, BootstrapError> {
    let codes: Vec<&str> = raw.expose().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if codes.is_empty() {
        return Err(BootstrapError::NoAuthcodes(" in the authcodes file"));
    }
    Ok(codes.iter().map(|c| format!("{c}\n")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests_support::valid_config;

    #[test]
    fn init_cfg_is_pinned() {
        let cfg = valid_config();
        let key = Secret::new("0123456789");
        let text = init_cfg(&cfg, Some(&key)).unwrap();
        assert_eq!(
            text,
            "type=dhcp-client\nip-address=\ndefault-gateway=\nnetmask=\nipv6-address=\nipv6-default-gateway=\nhostname=\n\
             vm-auth-key=0123456789\npanorama-server=panorama.example.com\npanorama-server-2=\ntplname=eks-stack\ndgname=eks-dg\n\
             dns-primary=169.254.169.253\ndns-secondary=\nop-command-modes=mgmt-interface-swap\ndhcp-send-hostname=yes\n\
             dhcp-send-client-id=yes\ndhcp-accept-server-hostname=yes\ndhcp-accept-server-domain=yes\n"
        );
        // Each key exactly once (an AS 2.1 sample shipped op-command-modes twice).
        let mut keys: Vec<&str> = text.lines().map(|l| l.split_once('=').unwrap().0).collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }

    #[test]
    fn explicit_server_wins_over_url_host() {
        let mut cfg = valid_config();
        cfg.panorama.server = Some("10.0.0.10".into());
        cfg.panorama.server_2 = Some("10.0.0.11".into());
        let text = init_cfg(&cfg, None).unwrap();
        assert!(text.contains("\npanorama-server=10.0.0.10\npanorama-server-2=10.0.0.11\n"));
        assert!(text.contains("\nvm-auth-key=\n"));
    }

    #[test]
    fn a_bad_key_is_refused_without_echoing_it() {
        let cfg = valid_config();
        let err = init_cfg(&cfg, Some(&Secret::new("abc\ndgname=evil"))).unwrap_err().to_string();
        assert!(!err.contains("evil") && err.contains("vm-auth-key"), "{err}");
    }

    #[test]
    fn package_has_the_pan_os_layout_and_masks_secrets() {
        let cfg = valid_config();
        let codes = Secret::new("  I1111111 \n\nI2222222\n");
        let key = Secret::new("987654");
        let objs = package(&cfg, &BootstrapInputs { vm_auth_key: Some(&key), authcodes: &codes }).unwrap();
        let keys: Vec<&str> = objs.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["config/", "config/init-cfg.txt", "content/", "license/", "license/authcodes", "plugins/", "software/"]);
        let authcodes = objs.iter().find(|o| o.key == "license/authcodes").unwrap();
        assert_eq!(authcodes.body(), b"I1111111\nI2222222\n");
        let debug = format!("{objs:?}");
        assert!(!debug.contains("I1111111") && !debug.contains("987654"), "{debug}");
    }
}
