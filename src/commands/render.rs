use std::path::Path;
use super::CmdResult;
use crate::cli::Cli;
pub fn run(_cli: &Cli, _out: &Path, _existing_vpc: bool) -> CmdResult { Ok(()) }
