//! panorama-sim: an in-memory Panorama speaking the PAN-OS XML API. See sim/README.md.

use clap::Parser;
use pano_eks_sim::panorama::faults::Faults;
use pano_eks_sim::panorama::server::{ServeOptions, serve};
use pano_eks_sim::panorama::state::{Device, Options, State};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "panorama-sim", about = "In-memory Panorama for tests (PAN-OS XML API)")]
struct Cli {
    /// Address to bind, e.g. 127.0.0.1:0 (port 0 picks a free port; the ready line shows it).
    #[arg(long)]
    listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    /// Write the PEM of the CA that signed the generated server certificate here.
    #[arg(long)]
    tls_cert_out: Option<PathBuf>,
    /// Administrator as USER:PASSWORD; repeat for several (locks and partial commits are per admin).
    #[arg(long = "admin", required = true, value_parser = parse_admin)]
    admins: Vec<(String, String)>,
    /// Number of generated managed firewalls (serial 00790000000N, hostname fw-0N, PA-VM, connected).
    #[arg(long, conflicts_with = "devices_file")]
    devices: Option<usize>,
    /// JSON array of devices: [{"serial", "hostname", "ip", "model"?, "sw_version"?, "connected"?,
    /// "interfaces"?: [{"name", "zone", "address"}], "memory_mb"?}].
    #[arg(long)]
    devices_file: Option<PathBuf>,
    /// Make every device a member of device group DG and template stack STACK at start and
    /// after /_sim/reset (both created when missing); either part may be empty: "DG," or ",STACK".
    #[arg(long, value_name = "DG,STACK")]
    devices_in: Option<String>,
    /// Load candidate and running config from FILE at start if it exists; save them on
    /// SIGINT/SIGTERM and on POST /_sim/save.
    #[arg(long)]
    state: Option<PathBuf>,
    /// `sw-version` reported by `show system info`; also selects the behaviour profile: before
    /// 10.0 no multi-config (HTTP 400), 10.0 multi-config off until enabled, 10.1+ on; 11.0+
    /// partial-xpath writes are left behind by admin-scoped partial commits.
    #[arg(long, default_value = "10.2.9")]
    sw_version: String,
    /// Start with multi-config enabled (what `request multi-config enabled` does on 10.0).
    #[arg(long)]
    multi_config_enabled: bool,
    /// `sweep` or `left-behind` (default: left-behind on 11.0+, sweep before); see README.
    #[arg(long, value_parser = ["sweep", "left-behind"])]
    partial_xpath_commit: Option<String>,
    /// Panorama's timezone as minutes east of UTC (e.g. -480 for UTC-8).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    timezone_offset_minutes: i32,
    /// A keygen ends the admin's previous key, as PAN-OS does (default: one stable key per
    /// admin). `--keygen-rotates` alone means true. Fault `keygen_rotates`.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_name = "true|false")]
    keygen_rotates: bool,
    /// Panorama's clock runs this many seconds ahead of the host's (negative: behind).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    clock_skew_secs: i64,
    /// Length of one job step (PEND, each ACT step, then FIN); 0 finishes jobs at once.
    #[arg(long, default_value_t = 100)]
    job_step_ms: u64,
    /// ACT steps per job (progress rises in equal parts).
    #[arg(long, default_value_t = 3)]
    job_act_steps: u32,
    /// Seed for injected-fault randomness and generated keys.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Added latency per /api request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Probability (0..1) of answering an /api request with --http-error-status.
    #[arg(long, default_value_t = 0.0)]
    http_error_rate: f64,
    #[arg(long, default_value_t = 503)]
    http_error_status: u16,
    /// Probability (0..1) of closing an /api connection without an answer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Make Panorama commit jobs end FAIL with this text.
    #[arg(long)]
    fail_commit: Option<String>,
    /// Make pushes fail on the device with this serial ("*" = every device).
    #[arg(long)]
    fail_push: Option<String>,
    /// While a job runs, refuse commits and config writes ("A commit is in progress.").
    #[arg(long)]
    commit_in_progress: bool,
    /// Start with the shared config lock held by this (other) admin.
    #[arg(long)]
    config_lock_by: Option<String>,
    /// Start with the commit lock held by this (other) admin.
    #[arg(long)]
    commit_lock_by: Option<String>,
    /// Leave out the admin/dirtyId/time attributes on uncommitted nodes in `get` output.
    #[arg(long)]
    no_dirty_attrs: bool,
}

fn parse_admin(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok((u.to_string(), p.to_string())),
        _ => Err("expected USER:PASSWORD".into()),
    }
}

fn load_devices(cli: &Cli) -> Result<Vec<Device>, String> {
    if let Some(p) = &cli.devices_file {
        let raw = std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
        return serde_json::from_str(&raw).map_err(|e| format!("parsing {}: {e}", p.display()));
    }
    Ok((1..=cli.devices.unwrap_or(0)).map(Device::generated).collect())
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PANORAMA_SIM_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("panorama-sim: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let devices = load_devices(&cli)?;
    let (dg, stack) = match cli.devices_in.as_deref() {
        Some(s) => {
            let (a, b) = s.split_once(',').unwrap_or((s, ""));
            (Some(a.trim().to_string()).filter(|x| !x.is_empty()), Some(b.trim().to_string()).filter(|x| !x.is_empty()))
        }
        None => (None, None),
    };
    let opts = Options {
        admins: cli.admins.clone(),
        devices,
        devices_in_dg: dg,
        devices_in_stack: stack,
        sw_version: cli.sw_version.clone(),
        job_step: Duration::from_millis(cli.job_step_ms),
        act_steps: cli.job_act_steps.max(1),
        seed: cli.seed,
        faults: Faults {
            latency_ms: cli.latency_ms,
            http_error_rate: cli.http_error_rate,
            http_error_status: cli.http_error_status,
            drop_rate: cli.drop_rate,
            fail_commit: cli.fail_commit.clone(),
            fail_push_serial: cli.fail_push.clone(),
            fail_push_message: None,
            commit_in_progress: cli.commit_in_progress,
            config_lock_by: cli.config_lock_by.clone(),
            commit_lock_by: cli.commit_lock_by.clone(),
            multi_config_enabled: cli.multi_config_enabled,
            refuse_writes: None,
            clock_skew_secs: cli.clock_skew_secs,
            partial_xpath_commit: cli.partial_xpath_commit.clone().unwrap_or_default(),
            keygen_rotates: cli.keygen_rotates,
            ..Faults::default()
        },
        dirty_attrs: !cli.no_dirty_attrs,
        hostname: "panorama-sim".into(),
        tz_offset_min: cli.timezone_offset_minutes,
    };
    let mut state = State::new(opts);
    if let Some(p) = &cli.state
        && p.exists()
    {
        let raw = std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
        state.load_state_xml(&raw).map_err(|e| format!("loading {}: {e}", p.display()))?;
    }
    let shared = Arc::new(Mutex::new(state));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())?;
    let serve_opts = ServeOptions {
        listen: cli.listen,
        plain_http: cli.plain_http,
        tls_cert_out: cli.tls_cert_out.clone(),
        state_file: cli.state.clone(),
    };
    rt.block_on(async {
        let stop = pano_eks_sim::net::shutdown_signal();
        tokio::select! {
            r = serve(shared.clone(), serve_opts) => r,
            r = stop => r,
        }
    })?;
    if let Some(p) = &cli.state {
        let st = shared.lock().map_err(|_| "state lock poisoned".to_string())?;
        std::fs::write(p, st.to_state_xml()).map_err(|e| format!("saving {}: {e}", p.display()))?;
    }
    Ok(())
}
