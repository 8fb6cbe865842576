//! `pano-eks verify`: plan (to learn which Services Panorama protects), ask every firewall of
//! the device group through Panorama, print one row per check. Sequencing and printing only:
//! what to ask and how to judge is `pano_eks_core::verify`, the calls `panorama::verify`.

use pano_eks_core::verify::{fqdns, summary};
use pano_eks_core::{ClusterStatus, ServiceStatus};

use super::shared::{connect_panorama, gather_facts, runtime};
use super::{CmdResult, Failure, load_config};
use crate::cli::{Cli, FactsSource, OutputFormat, PanoramaFlags};
use crate::config::LoadOptions;
use crate::panorama::verify::{self, Report, Scope};

pub fn run(cli: &Cli, source: &FactsSource, conn: &PanoramaFlags, cluster: Option<&str>, service: Option<&str>) -> CmdResult {
    let loaded = load_config(cli, LoadOptions::runtime())?;
    let only = parse_service(service)?;
    runtime()?.block_on(async {
        let facts = gather_facts(&loaded, source).await?;
        let engine = connect_panorama(&loaded, conn).await.map_err(Failure::failed)?;
        let (plan, _) = engine.plan(&facts).await.map_err(|e| Failure::failed(e.to_string()))?;
        let (services, clusters) = select(&plan.services, &plan.clusters, cluster, only.as_ref());
        if let Some(c) = cluster.filter(|c| !plan.clusters.iter().any(|x| x.name == *c)) {
            return Err(Failure::usage(format!("--cluster {c}: no such managed cluster")));
        }
        if let (Some((ns, n)), true) = (&only, services.is_empty()) {
            return Err(Failure::usage(format!("--service {ns}/{n}: no labelled Service of that name")));
        }
        let fqdns = fqdns(&facts);
        let scope = Scope::all(&engine.settings, &services, &clusters, &fqdns);
        let report = verify::run(&engine.client, &scope).await.map_err(|e| Failure::failed(format!("verify failed: {e}")))?;
        print(cli.output, &report);
        if report.ok() { Ok(()) } else { Err(Failure::failed(format!("{} check(s) failed", report.rows.iter().filter(|r| !r.ok).count()))) }
    })
}

fn parse_service(s: Option<&str>) -> Result<Option<(String, String)>, Failure> {
    match s.map(|s| s.split_once('/')) {
        None => Ok(None),
        Some(Some((ns, name))) if !ns.is_empty() && !name.is_empty() => Ok(Some((ns.to_owned(), name.to_owned()))),
        Some(_) => Err(Failure::usage(format!("--service {}: expected NAMESPACE/NAME", s.unwrap_or_default()))),
    }
}

/// `--cluster` keeps that cluster's Services and subnets; `--service` that Service only (and no
/// subnet checks).
fn select(
    services: &[ServiceStatus],
    clusters: &[ClusterStatus],
    cluster: Option<&str>,
    only: Option<&(String, String)>,
) -> (Vec<ServiceStatus>, Vec<ClusterStatus>) {
    let in_cluster = |c: &str| cluster.is_none_or(|w| w == c);
    let svcs = services
        .iter()
        .filter(|s| in_cluster(&s.cluster) && only.is_none_or(|(ns, n)| *ns == s.namespace && *n == s.name))
        .cloned()
        .collect();
    let cls = if only.is_some() { vec![] } else { clusters.iter().filter(|c| in_cluster(&c.name)).cloned().collect() };
    (svcs, cls)
}

fn print(format: OutputFormat, report: &Report) {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(report).expect("report serializes")),
        OutputFormat::Text => {
            println!("{:<14} {:<17} {:<40} {:<4} ANSWER", "FIREWALL", "CHECK", "SUBJECT", "OK");
            for r in &report.rows {
                println!(
                    "{:<14} {:<17} {:<40} {:<4} {}",
                    r.serial,
                    r.check.as_str(),
                    r.subject,
                    if r.ok { "ok" } else { "FAIL" },
                    r.detail
                );
            }
            let firewalls = summary(&report.rows);
            let green = firewalls.iter().filter(|f| f.2 == 0).count();
            println!("verified on {green}/{} firewall(s); {} op call(s)", firewalls.len(), report.calls);
        }
    }
}
