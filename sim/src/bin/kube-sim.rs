//! kube-sim: an in-memory Kubernetes API server for kubectl and kube-rs. See sim/README.md.

use clap::Parser;
use pano_eks_sim::kube::server::{ServeOptions, generate_tls, serve};
use pano_eks_sim::kube::state::{Options, Sim};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "kube-sim", about = "In-memory Kubernetes API server for tests (kubectl, kube-rs)")]
struct Cli {
    /// Address to bind, e.g. 127.0.0.1:0 (port 0 picks a free port; the ready line shows it).
    #[arg(long)]
    listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    /// Bearer token of the cluster administrator (may do everything).
    #[arg(long, env = "KUBE_SIM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Write an admin kubeconfig (server, CA data, token, current context) here, mode 0600.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Write the PEM of the CA that signed the generated server certificate here.
    #[arg(long)]
    tls_cert_out: Option<PathBuf>,
    /// Also accept EKS bearer tokens (k8s-aws-v1.…) for this cluster as admin.
    #[arg(long, value_name = "CLUSTER")]
    accept_eks_tokens: Option<String>,
    /// Interval between BOOKMARK events on watches that allow them.
    #[arg(long, default_value_t = 1000)]
    bookmark_interval_ms: u64,
    /// Watch history ring size (events); older resourceVersions answer 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KUBE_SIM_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("kube-sim: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), String> {
    if cli.admin_token.trim().is_empty() {
        return Err("--admin-token must not be empty".into());
    }
    let tls = if cli.plain_http { None } else { Some(generate_tls()?) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(cli.listen).await.map_err(|e| format!("binding {}: {e}", cli.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let opts = Options {
            eks_cluster: cli.accept_eks_tokens.clone(),
            bookmark_interval: Duration::from_millis(cli.bookmark_interval_ms.max(10)),
            history: cli.history,
            ca_pem: tls.as_ref().map(|t| t.ca_pem.clone()).unwrap_or_default(),
            server_address: local.to_string(),
        };
        let sim = Arc::new(Mutex::new(Sim::new(opts)));
        let serve_opts = ServeOptions {
            listen: local,
            plain_http: cli.plain_http,
            admin_token: cli.admin_token.clone(),
            kubeconfig_out: cli.kubeconfig_out.clone(),
            tls_cert_out: cli.tls_cert_out.clone(),
        };
        let stop = pano_eks_sim::net::shutdown_signal();
        tokio::select! {
            r = serve(sim, listener, tls, serve_opts) => r,
            r = stop => r,
        }
    })
}
