//! `pano-eks render --out DIR`: write, offline, everything `up` would deploy, for review.

use std::path::Path;

use super::{CmdResult, Failure, load_config};
use crate::cli::{Cli, OutputFormat};
use crate::config::LoadOptions;
use crate::render::{self, RenderInputs};
use crate::secret::Secret;

pub fn run(cli: &Cli, out: &Path, existing_vpc: bool) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::deploy(existing_vpc))?;
    let cfg = &loaded.config;
    let codes_path = loaded.resolve(&cfg.firewalls.authcodes_file);
    let authcodes = std::fs::read_to_string(&codes_path)
        .map(Secret::new)
        .map_err(|e| Failure::usage(format!("cannot read authcodes file {}: {e}", codes_path.display())))?;
    let vm_auth_key = match &cfg.firewalls.vm_auth_key_env {
        Some(env) => Some(Secret::from_env(env).map_err(|e| Failure::usage(format!("firewalls.vm_auth_key_env: {e}")))?),
        None => None,
    };
    let rendered = render::render(cfg, &RenderInputs { existing_vpc, vm_auth_key: vm_auth_key.as_ref(), authcodes: &authcodes })
        .map_err(|e| Failure::failed(e.to_string()))?;
    let files = rendered.write_to(out).map_err(|e| Failure::failed(e.to_string()))?;
    match cli.output {
        OutputFormat::Json => {
            let list: Vec<String> = files.iter().map(|f| out.join(f).display().to_string()).collect();
            println!("{}", serde_json::json!({ "out": out.display().to_string(), "files": list }));
        }
        OutputFormat::Text => {
            if !cli.quiet {
                for f in &files {
                    println!("{}", out.join(f).display());
                }
                if vm_auth_key.is_none() {
                    eprintln!("note: init-cfg.txt has an empty vm-auth-key: `up` asks Panorama for one (or set firewalls.vm_auth_key_env)");
                }
            }
        }
    }
    Ok(())
}
