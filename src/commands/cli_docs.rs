//! `pano-eks completions SHELL` and `pano-eks man`: clap's own generators over the command
//! definition in cli.rs, so completions and the man page never drift from the real flags.

use std::io::Write;

use clap::CommandFactory;

use super::{CmdResult, Failure};
use crate::cli::Cli;

pub fn completions(shell: clap_complete::Shell) -> CmdResult {
    // Generated into memory first: clap_complete panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "pano-eks", &mut script);
    print(&script, "the completion script")
}

pub fn man() -> CmdResult {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page).map_err(|e| Failure::failed(format!("rendering the man page: {e}")))?;
    print(&page, "the man page")
}

fn print(bytes: &[u8], what: &str) -> CmdResult {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| Failure::failed(format!("writing {what} to standard output: {e}")))
}
