//! `pano-eks init`: write the commented example config, then list what the user must fill in.

use super::{CmdResult, Failure};
use crate::cli::Cli;
use crate::config::{self, LoadOptions};

pub fn run(cli: &Cli, force: bool) -> CmdResult {
    let path = &cli.config;
    if path.exists() && !force {
        return Err(Failure::usage(format!("{} exists; pass --force to overwrite it", path.display())));
    }
    std::fs::write(path, config::EXAMPLE).map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
    println!("wrote {}", path.display());
    // The example is valid but for the values only the user can know: show exactly those.
    if let Err(d) = config::load(path, LoadOptions::deploy(false)) {
        println!("before the other commands will run, supply:");
        for e in d.errors() {
            println!("  {}", config::diagnostics_line(path, e));
        }
    }
    Ok(())
}
