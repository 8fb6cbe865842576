//! `pano-eks validate`: every problem of the config file at once.

use super::{CmdResult, load_config};
use crate::cli::Cli;
use crate::config::LoadOptions;

pub fn run(cli: &Cli, existing_vpc: bool) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::deploy(existing_vpc))?;
    if !cli.quiet {
        println!(
            "{}: ok ({} cluster{})",
            loaded.path.display(),
            loaded.config.clusters.len(),
            if loaded.config.clusters.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}
