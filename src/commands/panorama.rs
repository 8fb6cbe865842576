//! `plan`, `sync --once` and `status`: load config and facts, connect, run the engine, print.

use pano_eks_core::{Facts, Operation, Plan, ServiceState};

use super::{CmdResult, Failure, load_config};
use crate::cli::{Cli, FactsSource, OutputFormat, PanoramaFlags, WriteModeArg};
use crate::config::{LoadOptions, LoadedConfig};
use crate::panorama::apply::WriteMode;
use crate::panorama::codec;
use crate::panorama::observe::{self, Which};
use crate::sync::{Engine, EngineOptions};

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))
}

fn load_facts(source: &FactsSource) -> Result<Facts, Failure> {
    let text = std::fs::read_to_string(&source.facts)
        .map_err(|e| Failure::usage(format!("cannot read facts file {}: {e}", source.facts.display())))?;
    Facts::from_json(&text).map_err(|e| Failure::usage(format!("{}: {e}", source.facts.display())))
}

async fn engine(loaded: &LoadedConfig, conn: &PanoramaFlags, mode: Option<WriteMode>) -> Result<Engine, Failure> {
    let base = loaded.path.parent().unwrap_or(std::path::Path::new(".")).to_path_buf();
    let opts = EngineOptions { insecure: conn.insecure, mode, ..Default::default() };
    Engine::connect(&loaded.config, &base, opts).await.map_err(|e| Failure::failed(e.to_string()))
}

pub fn plan(cli: &Cli, source: &FactsSource, conn: &PanoramaFlags) -> CmdResult {
    let loaded = load_config(cli, LoadOptions { existing_vpc: false })?;
    let facts = load_facts(source)?;
    runtime()?.block_on(async {
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
    let loaded = load_config(cli, LoadOptions { existing_vpc: false })?;
    let facts = load_facts(source)?;
    let batch = loaded.config.sync.batch_size as usize;
    let mode = write_mode.map(|m| match m {
        WriteModeArg::MultiConfig => WriteMode::MultiConfig { batch },
        WriteModeArg::Bulk => WriteMode::Bulk { batch },
        WriteModeArg::OnePerCall => WriteMode::OnePerCall,
    });
    runtime()?.block_on(async {
        let engine = engine(&loaded, conn, mode).await?;
        let report = engine.converge(&facts).await.map_err(|e| Failure::failed(format!("sync failed: {e}")))?;
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
                    println!("pushed {} (job {}): {}", p.target, p.job, if devs.is_empty() { "no firewall connected".into() } else { devs.join(", ") });
                }
                print_problems(&report.plan);
            }
        }
        Ok(())
    })
}

pub fn status(cli: &Cli, source: &FactsSource, conn: &PanoramaFlags) -> CmdResult {
    let loaded = load_config(cli, LoadOptions { existing_vpc: false })?;
    let facts = load_facts(source)?;
    runtime()?.block_on(async {
        let engine = engine(&loaded, conn, None).await?;
        let (plan, _) = engine.plan(&facts).await.map_err(|e| Failure::failed(e.to_string()))?;
        // "Committed" = the Service's NAT rule is in Panorama's running config.
        let locs = crate::panorama::locations::Locations::from_settings(&engine.settings);
        let running = observe::read(&engine.client, &locs, Which::Running).await.map_err(|e| Failure::failed(e.to_string()))?;
        let committed = |rule: &Option<String>| rule.as_ref().is_some_and(|r| running.nat_rules.iter().any(|x| &x.name == r));
        match cli.output {
            OutputFormat::Json => {
                let services: Vec<serde_json::Value> = plan
                    .services
                    .iter()
                    .map(|s| {
                        let mut v = serde_json::to_value(s).expect("status serializes");
                        v["committed"] = serde_json::Value::Bool(s.state == ServiceState::Protected && committed(&s.nat_rule));
                        v
                    })
                    .collect();
                let out = serde_json::json!({ "services": services, "clusters": plan.clusters, "problems": plan.problems });
                println!("{}", serde_json::to_string_pretty(&out).expect("serializes"));
            }
            OutputFormat::Text => {
                println!("{:<40} {:>5}  {:<10} {:<9} {}", "SERVICE", "PORT", "STATE", "COMMITTED", "NAT RULE / REASON");
                for s in &plan.services {
                    let state = format!("{:?}", s.state).to_lowercase();
                    let detail = s.nat_rule.clone().unwrap_or_else(|| s.reason.clone());
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
                for c in &plan.clusters {
                    println!("\ncluster {} (tag {})", c.name, c.tag);
                    for sn in &c.subnets {
                        println!("  {} {}: outbound {} routes {}", sn.id, sn.cidr, sn.outbound_rule.as_deref().unwrap_or("-"), sn.routes.join(", "));
                    }
                }
                print_problems(&plan);
            }
        }
        Ok(())
    })
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
        };
        println!("{sign} {verb} {:?} {}", op.kind(), op.name());
        if xml {
            if let Operation::Create { object } | Operation::Update { object } = op {
                println!("    {}", codec::encode(object).to_xml());
            }
        }
    }
    let (c, u, d) = plan.counts();
    println!("plan: {c} to create, {u} to update, {d} to delete (device group changed: {}, template changed: {})", plan.device_group_changed, plan.template_changed);
    print_problems(plan);
}

fn print_problems(plan: &Plan) {
    for p in &plan.problems {
        eprintln!("warning: {}: {}", p.subject, p.message);
    }
}
