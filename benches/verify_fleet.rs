//! `pano-eks verify` at fleet scale against panorama-sim (prints figures; not a timed test):
//! one pass over F firewalls × N Services, with panorama-sim answering each call after
//! `VERIFY_BENCH_LATENCY_MS` (default 20: a Panorama proxying an op to a firewall on the same
//! region is slower than that; the figure scales with it). Prints wall time, op calls made (per
//! kind), the calls per second the ≤ 5-in-flight bound allows, and whether every row was green.
//!
//!   cargo bench --bench verify_fleet --profile dev            2 and 6 firewalls × 1,000 Services
//!   VERIFY_BENCH_SERVICES=200 VERIFY_BENCH_FIREWALLS=2 cargo bench --bench verify_fleet --profile dev
//!
//! (`--profile dev`: the time is the injected latency × calls / 5, not CPU; a release build of
//! the workspace is not needed for this figure.)

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use pano_eks::panorama::verify::{self, Scope};
use pano_eks::secret::Secret;
use pano_eks::sync::{Credentials, Engine, EngineOptions};
use pano_eks_core::Facts;

fn env_num(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// F firewalls, alternating between the two AZs of `support::facts_json` (untrust 192.168.1/11,
/// trust 192.168.2/12), as AWS discovery would report their ENIs.
fn devices(f: usize) -> String {
    let d: Vec<serde_json::Value> = (1..=f)
        .map(|i| {
            let (u, t) = if i % 2 == 1 { (1, 2) } else { (11, 12) };
            serde_json::json!({"serial": format!("00790{i:07}"), "hostname": format!("fw-{i:02}"), "ip": format!("10.0.0.{}", 10 + i),
                "interfaces": [{"name": "ethernet1/1", "zone": "untrust", "address": format!("192.168.{u}.{}/24", 10 + i)},
                               {"name": "ethernet1/2", "zone": "trust", "address": format!("192.168.{t}.{}/24", 10 + i)}]})
        })
        .collect();
    serde_json::Value::Array(d).to_string()
}

fn requests(sim: &support::Sim) -> BTreeMap<String, u64> {
    let s = sim.stats();
    s["requests"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect()).unwrap_or_default()
}

fn pass(rt: &tokio::runtime::Runtime, firewalls: usize, services: usize, latency_ms: usize) {
    let sim = support::Sim::start_with_devices(&devices(firewalls), &["--job-step-ms", "0"]);
    support::allow_inbound_and_stack_the_template(&sim);
    let facts = Facts::from_json(&support::facts_json(services, "")).unwrap();
    let dns: serde_json::Map<String, serde_json::Value> = (0..services)
        .map(|i| (format!("internal-svc-{i}.elb.us-west-2.amazonaws.com"), serde_json::json!([format!("192.168.110.{}", 10 + i % 200)])))
        .collect();
    sim.dns(serde_json::Value::Object(dns));
    let cfg = support::unlimited(sim.config(""));
    let engine = rt
        .block_on(Engine::connect_with(
            &cfg,
            sim.dir.path(),
            EngineOptions::default(),
            Credentials::Password(Secret::new(support::PASSWORD)),
        ))
        .unwrap();
    let converged = rt.block_on(engine.converge(&facts)).unwrap();
    sim.faults(serde_json::json!({"latency_ms": latency_ms}));
    let fqdns = pano_eks_core::verify::fqdns(&facts);
    let statuses = pano_eks_core::verify::after_converge(&converged.plan.services);
    let scope = Scope::all(&engine.settings, &statuses, &converged.plan.clusters, &fqdns);
    let before = requests(&sim);
    let t = Instant::now();
    let report = rt.block_on(verify::run(&engine.client, &scope)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let after = requests(&sim);
    let kinds: Vec<String> = after
        .iter()
        .filter(|(k, _)| k.starts_with("op."))
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| format!("{k} {d}"))
        })
        .collect();
    let failed = report.rows.iter().filter(|r| !r.ok).count();
    println!(
        "verify {firewalls} firewalls x {services} Services, {latency_ms} ms per call: {secs:.1} s wall, {} op calls ({:.0} calls/s; \
         the bound: 5 in flight / {latency_ms} ms = {:.0} calls/s), {} rows, {failed} failed",
        report.calls,
        report.calls as f64 / secs,
        5000.0 / latency_ms.max(1) as f64,
        report.rows.len()
    );
    println!("  calls by kind: {}", kinds.join(", "));
    if failed > 0 {
        let first: Vec<String> = report
            .rows
            .iter()
            .filter(|r| !r.ok)
            .take(3)
            .map(|r| format!("{} {} {}: {}", r.serial, r.check.as_str(), r.subject, r.detail))
            .collect();
        println!("  first failures: {}", first.join("; "));
    }
}

fn main() {
    let services = env_num("VERIFY_BENCH_SERVICES").unwrap_or(1_000);
    let latency = env_num("VERIFY_BENCH_LATENCY_MS").unwrap_or(20);
    let fleets: Vec<usize> = match env_num("VERIFY_BENCH_FIREWALLS") {
        Some(f) => vec![f],
        None => vec![2, 6],
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for f in fleets {
        pass(&rt, f, services, latency);
    }
}
