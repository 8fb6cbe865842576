//! A valid config for tests across the crate.

use super::{Config, LoadOptions, load_str};

/// A complete, valid config; tests break one thing at a time.
pub const VALID: &str = r#"
name = "demo"
region = "us-west-2"

[network]
vpc_cidr = "192.168.0.0/16"
azs = ["us-west-2a", "us-west-2b"]
mgmt_subnets = ["192.168.0.0/24", "192.168.10.0/24"]
untrust_subnets = ["192.168.1.0/24", "192.168.11.0/24"]
trust_subnets = ["192.168.2.0/24", "192.168.12.0/24"]
natgw_subnets = ["192.168.100.0/24", "192.168.101.0/24"]

[firewalls]
count = 2
ami = "ami-0123456789abcdef0"
key_name = "ops"
ssh_from = "203.0.113.7/32"
authcodes_file = "authcodes"

[panorama]
url = "https://panorama.example.com"
username = "pano-eks"
api_key_env = "PANORAMA_API_KEY"
device_group = "eks-dg"
template = "eks-template"
template_stack = "eks-stack"

[[clusters]]
name = "shop"
subnets = ["192.168.110.0/24", "192.168.111.0/24"]
"#;

/// `VALID`, loaded. The authcodes file it names is written once per process (parallel tests
/// never rewrite a file another test is reading).
pub fn valid_config() -> Config {
    valid_config_from(VALID)
}

pub fn valid_config_from(text: &str) -> Config {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("pano-eks-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("authcodes"), "I1234567\n").unwrap();
        d
    });
    match load_str(&dir.join("pano-eks.toml"), text, LoadOptions::deploy(false)) {
        Ok(c) => c.config,
        Err(d) => panic!("test config invalid:\n{d}"),
    }
}
