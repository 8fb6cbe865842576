//! `plan`, `sync` (`--once`, `--watch`), `status` and `credentials`: gather facts, connect,
//! run the engine, print. Sequencing only.

use std::path::Path;
use std::time::Duration;

use pano_eks_core::{Facts, Operation, Plan, ProblemKind, ServiceState};

use super::shared::gather_facts;
use super::{CmdResult, Failure, load_config};
use crate::aws::Aws;
use crate::cli::{Cli, FactsSource, OutputFormat, PanoramaFlags, WriteModeArg};
use crate::config::{LoadOptions, LoadedConfig, validate::parse_duration};
use crate::panorama::apply::WriteMode;
use crate::panorama::codec;
use crate::panorama::observe::{self, Which};
use crate::sync::sources::{self, Identity};
use crate::sync::watch::{self, WatchSetup, WatchedCluster};
use crate::sync::{Engine, EngineOptions, metrics};

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))
}

async fn engine(loaded: &LoadedConfig, conn: &PanoramaFlags, mode: Option<WriteMode>) -> Result<Engine, Failure> {
    let base = loaded.path.parent().unwrap_or(std::path::Path::new(".")).to_path_buf();
    let opts = EngineOptions { insecure: conn.insecure, mode, ..Default::default() };
    Engine::connect(&loaded.config, &base, opts).await.map_err(|e| Failure::failed(e.to_string()))
}

pub fn plan(cli: &Cli, source: &FactsSource, conn: &PanoramaFlags) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::runtime())?;
    runtime()?.block_on(async {
        let facts = gather_facts(&loaded, source).await?;
        let engine = engine(&loaded, conn, None).await?;
        let (plan, _) = engine.plan(&facts).await.map_err(|e| Failure::failed(e.to_string()))?;
        match cli.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&plan).expect("plan serializes")),
            OutputFormat::Text => print_plan(&plan, cli.verbose > 0),
        }
        Ok(())
    })
}

pub fn sync_once(cli: &Cli, source: &FactsSource, conn: &PanoramaFlags, write_mode: Option<WriteModeArg>) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::runtime())?;
    let batch = loaded.config.sync.batch_size as usize;
    let mode = write_mode.map(|m| match m {
        WriteModeArg::MultiConfig => WriteMode::MultiConfig { batch },
        WriteModeArg::OnePerCall => WriteMode::OnePerCall,
    });
    runtime()?.block_on(async {
        let facts = gather_facts(&loaded, source).await?;
        let engine = engine(&loaded, conn, mode).await?;
        let report = engine.converge(&facts).await.map_err(|e| Failure::failed(format!("sync failed: {e}")))?;
        let frozen = facts.frozen_clusters.clone();
        match cli.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report).expect("report serializes")),
            OutputFormat::Text => {
                let (c, u, d) = report.plan.counts();
                println!(
                    "sync: {c} created, {u} updated, {d} deleted in {} write call(s); {}; {} ms",
                    report.write_calls,
                    match report.commit_job {
                        Some(j) => format!("committed (job {j})"),
                        None => "nothing to commit".into(),
                    },
                    report.elapsed_ms
                );
                for p in &report.pushes {
                    let devs: Vec<String> = p.devices.iter().map(|(s, n, r)| format!("{n} ({s}) {r}")).collect();
                    println!(
                        "pushed {} (job {}): {}",
                        p.target,
                        p.job,
                        if devs.is_empty() { "no firewall connected".into() } else { devs.join(", ") }
                    );
                }
                print_problems(&report.plan);
            }
        }
        if source.facts.is_none() {
            // The bootstrap package's vm-auth-key: warned about ahead of expiry, and renewed.
            let aws = Aws::connect(&loaded.config.region).await;
            match super::vm_auth_key::renew_if_due(&aws, &loaded.config, &engine.client, true).await {
                Ok(lines) => lines.iter().for_each(|l| eprintln!("{l}")),
                Err(e) => eprintln!("warning: the bootstrap vm-auth-key was not checked: {e}"),
            }
        }
        run_front_and_egress(&loaded, source, &report.plan, &facts).await?;
        // Refused writes: everything else went in and was committed; say which Services are not
        // protected and why, and exit 1 (the next run tries them again).
        let refused: Vec<String> = report
            .plan
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::Refused)
            .map(|p| format!("{}: {}", p.subject, p.message))
            .collect();
        if !refused.is_empty() {
            return Err(Failure::failed(format!(
                "sync: Panorama refused {} write(s); the rest was written and committed; not protected:\n  {}",
                refused.len(),
                refused.join("\n  ")
            )));
        }
        if frozen.is_empty() {
            Ok(())
        } else {
            Err(Failure::failed(format!(
                "sync: Services of {} could not be listed; their objects were left as they are",
                frozen.join(", ")
            )))
        }
    })
}

/// After a converge: the ALB per Service and the outbound check, when enabled (AWS only: with
/// `--facts` there is no AWS to act on). Conflicts are warnings; a failed AWS call fails the run.
async fn run_front_and_egress(loaded: &LoadedConfig, source: &FactsSource, plan: &Plan, facts: &Facts) -> CmdResult {
    let cfg = &loaded.config;
    if !crate::aws::front_and_egress::enabled(cfg) {
        return Ok(());
    }
    if source.facts.is_some() {
        eprintln!("note: sync.manage_alb / network.outbound_via_firewall are skipped with --facts");
        return Ok(());
    }
    let aws = Aws::connect(&cfg.region).await;
    let steps = crate::aws::front_and_egress::after_sync(&aws, cfg, plan, facts).await;
    for l in steps.lines() {
        eprintln!("{l}");
    }
    if steps.errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(format!("sync: AWS edge step(s) failed: {}", steps.errors.join("; "))))
    }
}

/// `--watch`: runs the front and egress steps after each converge, on a task of its own so the
/// loop never waits on AWS. Converges that finish while one runs collapse into the latest;
/// annotations are read fresh from each cluster (the plan carries statuses, not annotations).
type OnConverge = Box<dyn Fn(&Result<crate::sync::Report, String>) + Send + Sync>;

fn spawn_front_and_egress(cfg: &crate::config::Config, aws: Option<Aws>, clusters: &[WatchedCluster]) -> Option<OnConverge> {
    if !crate::aws::front_and_egress::enabled(cfg) {
        return None;
    }
    let Some(aws) = aws else {
        eprintln!("note: sync.manage_alb / network.outbound_via_firewall are skipped with --facts");
        return None;
    };
    let (tx, mut rx) = tokio::sync::watch::channel::<Option<Plan>>(None);
    let clients: Vec<(String, ::kube::Client)> = clusters.iter().map(|c| (c.name.clone(), c.client.clone())).collect();
    let cfg = cfg.clone();
    tokio::spawn(async move {
        let mut announced: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        while rx.changed().await.is_ok() {
            let Some(plan) = rx.borrow_and_update().clone() else { continue };
            let mut facts = Facts::default();
            for (name, client) in &clients {
                match crate::kube::list_services(client, &cfg.sync.label).await {
                    Ok(services) => facts.clusters.push(pano_eks_core::ClusterFacts { name: name.clone(), subnets: vec![], services }),
                    Err(e) => {
                        tracing::warn!(cluster = %name, error = %e, "listing Services for the ALB step failed; their annotations are unknown this round")
                    }
                }
            }
            let steps = crate::aws::front_and_egress::after_sync(&aws, &cfg, &plan, &facts).await;
            if let Some(a) = &steps.alb {
                announce_public_names(&clients, &a.public, &mut announced).await;
            }
            if let Some(n) = &steps.nlb {
                announce_public_names(&clients, &n.public, &mut announced).await;
            }
            for l in steps.lines() {
                if l.starts_with("error:") {
                    tracing::error!("{l}");
                } else if l.starts_with("warning:") {
                    tracing::warn!("{l}");
                } else {
                    tracing::info!("{l}");
                }
            }
        }
    });
    Some(Box::new(move |r: &Result<crate::sync::Report, String>| {
        if let Ok(r) = r {
            let _ = tx.send(Some(r.plan.clone()));
        }
    }))
}

/// A `PublicName` Event on each Service whose front (public DNS name) is new or changed since
/// the last one announced; failures are logged at debug (the role may not create Events).
async fn announce_public_names(
    clients: &[(String, ::kube::Client)],
    public: &[crate::aws::alb_shards::PublicName],
    announced: &mut std::collections::BTreeMap<String, String>,
) {
    for p in public {
        let key = p.service.to_string();
        if announced.get(&key) == Some(&p.dns_name) {
            continue;
        }
        let Some((_, client)) = clients.iter().find(|(n, _)| *n == p.service.cluster) else { continue };
        let note = format!("reachable at {} (front load balancer {})", p.dns_name, p.front);
        match crate::kube::events::service_event(client, &p.service.namespace, &p.service.name, "PublicName", note).await {
            Ok(()) => {
                announced.insert(key, p.dns_name.clone());
            }
            Err(e) => tracing::debug!(service = %key, error = %e, "could not record a PublicName Event"),
        }
    }
}

pub fn status(cli: &Cli, source: &FactsSource, conn: &PanoramaFlags, no_verify: bool) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::runtime())?;
    runtime()?.block_on(async {
        let facts = gather_facts(&loaded, source).await?;
        let engine = engine(&loaded, conn, None).await?;
        let (plan, _) = engine.plan(&facts).await.map_err(|e| Failure::failed(e.to_string()))?;
        // "Committed" = the Service's NAT rule is in Panorama's running config.
        let locs = crate::panorama::locations::Locations::from_settings(&engine.settings);
        let running = observe::read(&engine.client, &locs, Which::Running).await.map_err(|e| Failure::failed(e.to_string()))?;
        let committed = |rule: &Option<String>| rule.as_ref().is_some_and(|r| running.nat_rules.iter().any(|x| &x.name == r));
        // The bootstrap package's vm-auth-key (its expiry; the key itself is never shown).
        let key = bootstrap_key_state(&loaded, source, &engine).await;
        let public = public_names(&loaded, source).await;
        // The last verification: a live, read-only pass of `verify`'s checks (op commands only),
        // since sync --watch's results live in its own process (/metrics) and Events.
        let verification = if no_verify { Ok(None) } else { verify_now(&engine, &plan, &facts).await.map(Some) };
        match cli.output {
            OutputFormat::Json => print_status_json(&plan, &committed, key, &verification, &public),
            OutputFormat::Text => print_status_text(&plan, &committed, key, &verification, &public),
        }
        Ok(())
    })
}

type KeyState = (&'static str, Option<String>, String);
type PublicName = crate::aws::alb_shards::PublicName;
type VerifyResult = Result<Option<pano_eks_core::verify::Verification>, String>;

/// `status`'s verification: every protected Service and cluster subnet, on every member firewall.
async fn verify_now(engine: &Engine, plan: &Plan, facts: &Facts) -> Result<pano_eks_core::verify::Verification, String> {
    let fqdns = pano_eks_core::verify::fqdns(facts);
    let scope = crate::panorama::verify::Scope::all(&engine.settings, &plan.services, &plan.clusters, &fqdns);
    let report = crate::panorama::verify::run(&engine.client, &scope).await.map_err(|e| format!("verify could not run: {e}"))?;
    let keys: Vec<pano_eks_core::verify::ServiceKey> =
        plan.services.iter().filter(|s| s.state == ServiceState::Protected).map(pano_eks_core::verify::ServiceKey::of).collect();
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Ok(pano_eks_core::verify::verification(&report.rows, &keys, at))
}

fn print_status_json(
    plan: &Plan,
    committed: &dyn Fn(&Option<String>) -> bool,
    key: KeyState,
    verification: &VerifyResult,
    public: &[PublicName],
) {
    let (key_state, key_expiry, key_note) = key;
    let services: Vec<serde_json::Value> = plan
        .services
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).expect("status serializes");
            v["committed"] = serde_json::Value::Bool(s.state == ServiceState::Protected && committed(&s.nat_rule));
            let mine = verification
                .as_ref()
                .ok()
                .and_then(|v| v.as_ref())
                .and_then(|v| v.services.iter().find(|x| x.cluster == s.cluster && x.namespace == s.namespace && x.name == s.name));
            if let Some(m) = mine {
                v["verification"] = serde_json::json!({"verified_on": m.verified_on, "firewalls": m.firewalls, "failed": m.failed});
            }
            v
        })
        .collect();
    let verification = match verification {
        Ok(Some(v)) => serde_json::json!({"at": v.at, "summary": pano_eks_core::verify::headline(v), "firewalls": v.firewalls}),
        Ok(None) => serde_json::json!({"skipped": "--no-verify"}),
        Err(e) => serde_json::json!({"error": e}),
    };
    let out = serde_json::json!({
        "services": services,
        "clusters": plan.clusters,
        "problems": plan.problems,
        "vm_auth_key": { "state": key_state, "expiry": key_expiry, "note": key_note },
        "verification": verification,
        "public": public,
    });
    println!("{}", serde_json::to_string_pretty(&out).expect("serializes"));
}

fn print_status_text(
    plan: &Plan,
    committed: &dyn Fn(&Option<String>) -> bool,
    key: KeyState,
    verification: &VerifyResult,
    public: &[PublicName],
) {
    let (key_state, key_expiry, key_note) = key;
    println!("{:<40} {:>5}  {:<10} {:<9} {}", "SERVICE", "PORT", "STATE", "COMMITTED", "NAT RULE / REASON");
    for s in &plan.services {
        let state = serde_json::to_value(s.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        // An exposed Service has a NAT rule, but the reason is what its operator needs.
        // With [sync.security]: which rule allows it.
        let detail = match (&s.nat_rule, s.state, &s.security_rule) {
            (Some(rule), st, Some(sec)) if st != ServiceState::Exposed => format!("{rule} (allowed by {sec})"),
            (Some(rule), st, None) if st != ServiceState::Exposed => rule.clone(),
            _ => s.reason.clone(),
        };
        let com = if s.state == ServiceState::Protected { if committed(&s.nat_rule) { "yes" } else { "no" } } else { "-" };
        println!(
            "{:<40} {:>5}  {:<10} {:<9} {}",
            format!("{}/{}/{}", s.cluster, s.namespace, s.name),
            s.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            state,
            com,
            detail
        );
    }
    for p in public {
        println!("public {:<33} {} ({})", p.service.to_string(), p.dns_name, p.front);
    }
    for c in &plan.clusters {
        println!("\ncluster {} (tag {})", c.name, c.tag);
        for sn in &c.subnets {
            println!("  {} {}: outbound {} routes {}", sn.id, sn.cidr, sn.outbound_rule.as_deref().unwrap_or("-"), sn.routes.join(", "));
        }
    }
    println!(
        "\nvm-auth-key (bootstrap package): {key_state}{}{}",
        key_expiry.map(|e| format!(", expires {e} (Panorama)")).unwrap_or_default(),
        if key_note.is_empty() { String::new() } else { format!(": {key_note}") }
    );
    match verification {
        Ok(Some(v)) => println!("verify: {}", pano_eks_core::verify::headline(v)),
        Ok(None) => println!("verify: skipped (--no-verify)"),
        Err(e) => println!("verify: {e}"),
    }
    print_problems(plan);
}

/// With `sync.manage_alb`: the public DNS name of each Service a front (ALB or NLB) serves
/// (AWS facts only; a failed read is a warning, `status` goes on).
async fn public_names(loaded: &LoadedConfig, source: &FactsSource) -> Vec<crate::aws::alb_shards::PublicName> {
    let cfg = &loaded.config;
    if !cfg.sync.manage_alb || source.facts.is_some() {
        return Vec::new();
    }
    let aws = Aws::connect(&cfg.region).await;
    let read = match cfg.firewalls.elb_type {
        crate::config::ElbType::Application => match crate::aws::alb::context(&aws, &cfg.name, &cfg.firewall_stack()).await {
            Ok(Some(ctx)) => crate::aws::alb_shards::public_names(&aws, &ctx).await,
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(e),
        },
        crate::config::ElbType::Network => match crate::aws::nlb::context(&aws, &cfg.name, &cfg.firewall_stack()).await {
            Ok(Some(ctx)) => crate::aws::nlb::public_names(&aws, &ctx).await,
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(e),
        },
    };
    read.unwrap_or_else(|e| {
        eprintln!("warning: the fronts' public names could not be read: {e}");
        Vec::new()
    })
}

/// The bootstrap package's vm-auth-key for `status`: (state, expiry, note); never the key.
async fn bootstrap_key_state(loaded: &LoadedConfig, source: &FactsSource, engine: &Engine) -> KeyState {
    use super::vm_auth_key::KeyState;
    let key = if source.facts.is_none() {
        let aws = Aws::connect(&loaded.config.region).await;
        super::vm_auth_key::check(&aws, &loaded.config, &engine.client).await
    } else {
        Err("not checked (--facts)".to_string())
    };
    match key {
        Ok(Some(KeyState::Valid { expiry })) => ("valid", Some(expiry), String::new()),
        Ok(Some(KeyState::Due { expiry, why })) => ("due", expiry, why),
        Ok(Some(KeyState::Unreadable { why })) => ("unreadable", None, why),
        Ok(None) => ("none", None, "no vm-auth-key in the bootstrap package".to_string()),
        Err(e) => ("unknown", None, e),
    }
}

pub fn sync_watch(cli: &Cli, source: &FactsSource, conn: &PanoramaFlags, leader_elect: bool) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::runtime())?;
    runtime()?.block_on(run_watch(&loaded, source.facts.as_deref(), conn, leader_elect))
}

/// The watch loop until SIGINT/SIGTERM; also `up --watch`'s hand-off.
pub async fn run_watch(loaded: &LoadedConfig, facts_file: Option<&Path>, conn: &PanoramaFlags, leader_elect: bool) -> CmdResult {
    let cfg = loaded.config.clone();
    let debounce = parse_duration(&cfg.sync.debounce).map_err(Failure::usage)?;
    let resync = parse_duration(&cfg.sync.resync).map_err(Failure::usage)?;
    let aws = if facts_file.is_none() { Some(Aws::connect(&cfg.region).await) } else { None };
    let base = match facts_file {
        Some(p) => sources::facts_file(p, false).map_err(Failure::usage)?,
        None => sources::aws_facts(loaded, aws.as_ref().expect("set above")).await.map_err(Failure::failed)?,
    };
    let (facts_tx, facts_rx) = tokio::sync::watch::channel(base);
    if let Some(aws) = aws.clone() {
        // AWS facts change when the autoscaling group replaces a firewall: refresh each resync.
        let loaded = loaded.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(resync).await;
                match sources::aws_facts(&loaded, &aws).await {
                    Ok(f) => {
                        let _ = facts_tx.send(f);
                    }
                    Err(e) => tracing::warn!(error = %e, "refreshing AWS facts failed; keeping the last ones"),
                }
            }
        });
    }
    let mut clusters = Vec::new();
    for c in &cfg.clusters {
        let client = sources::cluster_client(loaded, c, aws.as_ref(), Identity::PanUserPreferred).await.map_err(Failure::failed)?;
        clusters.push(WatchedCluster { name: c.name.clone(), client });
    }
    let metrics = metrics::Metrics::default();
    if let Some(addr) = &cfg.sync.metrics_addr {
        let addr = addr.parse().map_err(|e| Failure::usage(format!("sync.metrics_addr: {e}")))?;
        let bound = metrics::serve(addr, metrics.clone()).await.map_err(|e| Failure::failed(format!("metrics on {addr}: {e}")))?;
        eprintln!("metrics on http://{bound}/metrics");
    }
    let (leader, elector) =
        leader_elect.then(|| leader_gate(&cfg, &clusters[0].client)).map_or((None, None), |(rx, e)| (Some(rx), Some(e)));
    let engine = engine(loaded, conn, None).await?;
    if let Some(aws) = aws.clone() {
        // The bootstrap package's vm-auth-key: checked at start and every resync; renewed ahead
        // of expiry (with --leader-elect only by the leader).
        let (cfg, client, leader, metrics) = (cfg.clone(), engine.client.clone(), leader.clone(), metrics.clone());
        tokio::spawn(async move {
            loop {
                let may_renew = leader.as_ref().is_none_or(|l| *l.borrow());
                match super::vm_auth_key::renew_if_due(&aws, &cfg, &client, may_renew).await {
                    Ok(lines) => lines.iter().for_each(|l| tracing::warn!("{l}")),
                    Err(e) => tracing::warn!("the bootstrap vm-auth-key was not checked: {e}"),
                }
                // Its expiry on /metrics (after a renewal: the new key's), for the expiry alert.
                match super::vm_auth_key::expiry_unix(&aws, &cfg, &client).await {
                    Ok(at) => metrics.vm_auth_key_expiry(at),
                    Err(e) => tracing::warn!("the bootstrap vm-auth-key's expiry is unknown: {e}"),
                }
                tokio::time::sleep(resync).await;
            }
        });
    }
    let on_converge = spawn_front_and_egress(&cfg, aws.clone(), &clusters);
    let setup = WatchSetup {
        engine,
        clusters,
        base_facts: facts_rx,
        label: cfg.sync.label.clone(),
        debounce,
        resync,
        metrics,
        leader,
        events: true,
        on_converge,
    };
    eprintln!("watching {} cluster(s); Ctrl-C to stop", cfg.clusters.len());
    watch::run(setup, shutdown_signal()).await;
    if let Some((elector, renewals)) = elector {
        elector.stop(renewals).await;
    }
    Ok(())
}

type Elector = (crate::kube::leader::LeaderElector, tokio::task::JoinHandle<()>);

/// With `--leader-elect`: the Lease this replica competes for; only the holder writes. Also the
/// elector and its renewals, to give the lease up on shutdown.
fn leader_gate(cfg: &crate::config::Config, client: &kube::Client) -> (tokio::sync::watch::Receiver<bool>, Elector) {
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| format!("{}-{}", hostname(), std::process::id()));
    let elector = crate::kube::leader::LeaderElector::new(
        client.clone(),
        crate::render::manifests::NAMESPACE,
        &format!("pano-eks-sync-{}", cfg.name),
        &identity,
        Duration::from_secs(15),
    );
    let (rx, renewals) = elector.clone().spawn();
    (rx, (elector, renewals))
}

pub fn credentials(cli: &Cli, cluster: &str, out: Option<&Path>) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::runtime())?;
    let c = loaded
        .config
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .ok_or_else(|| Failure::usage(format!("no [[clusters]] entry named {cluster} in {}", loaded.path.display())))?
        .clone();
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| sources::state_dir(&loaded).join(&c.name));
    runtime()?.block_on(async {
        let needs_aws = c.kubeconfig.is_none() && (c.api_server.is_none() || c.token_file.is_none());
        let aws = if needs_aws { Some(Aws::connect(&loaded.config.region).await) } else { None };
        let client = sources::cluster_client(&loaded, &c, aws.as_ref(), Identity::Operator).await.map_err(Failure::failed)?;
        let endpoint = client_endpoint(&loaded, &c, aws.as_ref()).await?;
        let files = crate::kube::apply_pan_user(&client, &endpoint, &out, Duration::from_secs(60))
            .await
            .map_err(|e| Failure::failed(format!("cluster {}: {e}", c.name)))?;
        match cli.output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::json!({"cluster": c.name, "credential_json": files.credential_json, "kubeconfig": files.kubeconfig})
            ),
            OutputFormat::Text => {
                println!("pan-user credential JSON (for Panorama): {}", files.credential_json.display());
                println!("pan-user kubeconfig: {}", files.kubeconfig.display());
            }
        }
        Ok(())
    })
}

/// The API endpoint clients of this cluster should be pointed at (for the exported kubeconfig).
async fn client_endpoint(loaded: &LoadedConfig, c: &crate::config::Cluster, aws: Option<&Aws>) -> Result<String, Failure> {
    if let Some(api) = &c.api_server {
        return Ok(api.clone());
    }
    if let Some(kc) = &c.kubeconfig {
        let k = ::kube::config::Kubeconfig::read_from(loaded.resolve(kc)).map_err(|e| Failure::failed(e.to_string()))?;
        let ctx_name = c.context.clone().or(k.current_context.clone()).unwrap_or_default();
        let cluster_name =
            k.contexts.iter().find(|x| x.name == ctx_name).and_then(|x| x.context.as_ref()).map(|x| x.cluster.clone()).unwrap_or_default();
        return k
            .clusters
            .iter()
            .find(|x| x.name == cluster_name)
            .and_then(|x| x.cluster.as_ref()?.server.clone())
            .ok_or_else(|| Failure::failed(format!("{}: no server for context {ctx_name}", kc.display())));
    }
    let aws = aws.ok_or_else(|| Failure::failed("no AWS access"))?;
    let info = crate::aws::eks::describe_cluster(&aws.eks, &c.name).await.map_err(|e| Failure::failed(e.to_string()))?;
    info.map(|i| i.endpoint).ok_or_else(|| Failure::failed(format!("EKS cluster {} does not exist", c.name)))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "pano-eks".into())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("stopping: finishing the converge in flight, starting no new one");
}

fn print_plan(plan: &Plan, xml: bool) {
    if plan.is_noop() {
        println!("no changes: Panorama already holds exactly the desired objects");
    }
    for op in &plan.operations {
        let (sign, verb) = match op {
            Operation::Create { .. } => ('+', "create"),
            Operation::Update { .. } => ('~', "update"),
            Operation::Delete { .. } => ('-', "delete"),
            Operation::Move { .. } => ('>', "move"),
        };
        match op {
            Operation::Move { to, .. } => println!("{sign} {verb} {:?} {} to {to}", op.kind(), op.name()),
            _ => println!("{sign} {verb} {:?} {}", op.kind(), op.name()),
        }
        if xml {
            if let Operation::Create { object } | Operation::Update { object } = op {
                println!("    {}", codec::encode(object).to_xml());
            }
        }
    }
    let (c, u, d) = plan.counts();
    println!(
        "plan: {c} to create, {u} to update, {d} to delete, {} to move (device group changed: {}, template changed: {})",
        plan.moves(),
        plan.device_group_changed,
        plan.template_changed
    );
    print_problems(plan);
}

fn print_problems(plan: &Plan) {
    for p in &plan.problems {
        eprintln!("warning: {}: {}", p.subject, p.message);
    }
}
