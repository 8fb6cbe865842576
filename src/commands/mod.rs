//! One module per subcommand. Commands only sequence steps; decisions live in the planning
//! core and in `render`, outside-world calls in the adapters.

pub mod cli_docs;
pub mod down;
pub mod init;
pub mod panorama;
pub mod prepare;
pub mod render;
mod shared;
pub mod token;
pub mod up;
pub mod validate;
pub mod verify;
pub mod vm_auth_key;

use std::path::Path;

use crate::cli::Cli;
use crate::config::{self, LoadOptions, LoadedConfig};
use crate::exit;

/// A command's failure: what to tell the user and which exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), code: exit::USAGE }
    }
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), code: exit::FAILURE }
    }
}

pub type CmdResult = Result<(), Failure>;

/// Loads and validates the config; prints warnings; any error is a usage failure listing all problems.
pub fn load_config(cli: &Cli, opts: LoadOptions) -> Result<LoadedConfig, Failure> {
    load_config_at(&cli.config, opts)
}

pub fn load_config_at(path: &Path, opts: LoadOptions) -> Result<LoadedConfig, Failure> {
    match config::load(path, opts) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{}", config::diagnostics_line(path, w));
            }
            Ok(loaded)
        }
        Err(d) => {
            let n = d.errors().count();
            Err(Failure::usage(format!(
                "{}\n{n} problem{} in {}; nothing was changed",
                d.render().trim_end(),
                if n == 1 { "" } else { "s" },
                path.display()
            )))
        }
    }
}
