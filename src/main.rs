//! `pano-eks`: one binary for the whole workflow of securing EKS Services with VM-Series
//! firewalls managed by Panorama. `main` only parses flags, sets up logging and dispatches.

use std::process::ExitCode;

use clap::Parser;

use pano_eks::cli::{Cli, Command, PanoramaCommand};
use pano_eks::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli);
    let result = match &cli.command {
        Command::Init { force } => commands::init::run(&cli, *force),
        Command::Validate { existing_vpc } => commands::validate::run(&cli, *existing_vpc),
        Command::Render { out, existing_vpc } => commands::render::run(&cli, out, *existing_vpc),
        Command::Plan { source, conn } => commands::panorama::plan(&cli, source, conn),
        Command::Sync { once: _, watch: false, source, conn, write_mode, .. } => {
            commands::panorama::sync_once(&cli, source, conn, *write_mode)
        }
        Command::Sync { watch: true, source, conn, leader_elect, .. } => commands::panorama::sync_watch(&cli, source, conn, *leader_elect),
        Command::Credentials { cluster, out } => commands::panorama::credentials(&cli, cluster, out.as_deref()),
        Command::Verify { source, conn, cluster, service } => {
            commands::verify::run(&cli, source, conn, cluster.as_deref(), service.as_deref())
        }
        Command::Status { source, conn, no_verify } => commands::panorama::status(&cli, source, conn, *no_verify),
        Command::Up { existing_vpc, yes, dry_run, watch, out, kubeconfig, conn } => commands::up::run(
            &cli,
            conn,
            &commands::up::UpOptions {
                existing_vpc: *existing_vpc,
                yes: *yes,
                dry_run: *dry_run,
                watch: *watch,
                out: out.clone(),
                kubeconfig: kubeconfig.clone(),
            },
        ),
        Command::Down { yes, keep_bucket, conn } => {
            commands::down::run(&cli, conn, &commands::down::DownOptions { yes: *yes, keep_bucket: *keep_bucket })
        }
        Command::Panorama { command: PanoramaCommand::Prepare { allow_all, adopt, dry_run, conn } } => commands::prepare::run(
            &cli,
            conn,
            commands::prepare::PrepareOptions { allow_all: *allow_all, adopt: *adopt, dry_run: *dry_run },
        ),
        Command::Completions { shell } => commands::cli_docs::completions(*shell),
        Command::Man => commands::cli_docs::man(),
        Command::Token { cluster, region } => commands::token::run(&cli, cluster, region.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.message);
            ExitCode::from(e.code)
        }
    }
}

fn init_tracing(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PANO_EKS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("pano_eks={level},pano_eks_core={level}")));
    // Colour only on a terminal and never with NO_COLOR (https://no-color.org/): a pod's or CI's log
    // must not fill with escape codes (tracing-subscriber alone colours any stderr).
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !no_color;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).with_ansi(ansi).init();
}
