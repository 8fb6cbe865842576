//! Benchmark of the sync engine against panorama-sim (prints figures; not a timed test).
//!
//!   cargo bench --bench sync_converge            (release build of pano-eks and the sim)
//!   SYNC_BENCH_SERVICES=2000 cargo bench --bench sync_converge
//!
//! Figures: plan time for 16 clusters × N/16 Services, first converge of N Services (wall time,
//! write calls, bytes per call, commits, pushes; every entry its own full-xpath `edit` in
//! multi-config batches), a no-op resync (writes, commits), and the same converge against a
//! PAN-OS 9.1 profile, where there is no multi-config and every entry is one call.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use pano_eks::panorama::apply::WriteMode;
use pano_eks::secret::Secret;
use pano_eks::sync::{Credentials, Engine, EngineOptions};
use pano_eks_core::{Facts, Observed};

fn facts(clusters: usize, per_cluster: usize) -> Facts {
    let mut cl = Vec::new();
    for c in 0..clusters {
        let services: Vec<String> = (0..per_cluster)
            .map(|i| {
                let port = 10_000 + c * per_cluster + i;
                format!(
                    r#"{{"namespace": "ns-{}", "name": "svc-{i}", "labels": {{"panw-tg-port": "{port}"}}, "type": "LoadBalancer",
                 "annotations": {{"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
                       "lb_hostname": "internal-c{c}-s{i}-0123456789.us-west-2.elb.amazonaws.com", "ports": [{{"port": 8080, "protocol": "TCP"}}],
                       "created": "2026-11-26T10:00:00Z"}}"#,
                    i % 10
                )
            })
            .collect();
        cl.push(format!(
            r#"{{"name": "cluster-{c:02}", "subnets": [{{"id": "subnet-{c}a", "cidr": "10.{c}.0.0/24", "az": "us-west-2a"}}, {{"id": "subnet-{c}b", "cidr": "10.{c}.1.0/24", "az": "us-west-2b"}}], "services": [{}]}}"#,
            services.join(",")
        ));
    }
    let text = format!(
        r#"{{"clusters": [{}], "firewalls": [{{"id": "i-a", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}}, {{"id": "i-b", "az": "us-west-2b", "trust_subnet_cidr": "192.168.12.0/24"}}]}}"#,
        cl.join(",")
    );
    Facts::from_json(&text).unwrap()
}

fn stat(sim: &support::Sim, k: &str) -> u64 {
    sim.stats()[k].as_u64().unwrap_or(0)
}

fn converge(rt: &tokio::runtime::Runtime, sim: &support::Sim, f: &Facts, mode: Option<WriteMode>) -> (f64, u64, u64, u64, usize) {
    let cfg = support::unlimited(sim.config(""));
    let opts = EngineOptions { mode, ..Default::default() };
    let engine =
        rt.block_on(Engine::connect_with(&cfg, sim.dir.path(), opts, Credentials::Password(Secret::new(support::PASSWORD)))).unwrap();
    let (w0, c0, p0, b0) = (stat(sim, "write_calls"), stat(sim, "commits"), stat(sim, "pushes"), stat(sim, "bytes_in"));
    let t = Instant::now();
    let r = rt.block_on(engine.converge(f)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let phases: Vec<String> = r.phases_ms.iter().map(|(p, ms)| format!("{p} {ms} ms")).collect();
    println!("  phases: {}", phases.join(", "));
    let writes = stat(sim, "write_calls") - w0;
    if writes > 0 {
        // bytes_in counts every request (reads too); the writes dominate a first converge.
        println!(
            "  {writes} write calls, {:.0} KiB requested per write call on average",
            (stat(sim, "bytes_in") - b0) as f64 / 1024.0 / writes as f64
        );
    }
    (secs, stat(sim, "write_calls") - w0, stat(sim, "commits") - c0, stat(sim, "pushes") - p0, r.plan.operations.len())
}

fn main() {
    let total: usize = std::env::var("SYNC_BENCH_SERVICES").ok().and_then(|v| v.parse().ok()).unwrap_or(16_000);
    let clusters = 16;
    let per = total / clusters;
    let f = facts(clusters, per);
    let settings = pano_eks::sync::plan_settings(&support_config());

    // Plan time (pure core), first plan against empty Panorama and no-op plan against its result.
    let mut first = Vec::new();
    let mut plan = None;
    for _ in 0..7 {
        let t = Instant::now();
        plan = Some(pano_eks_core::plan(&settings, &f, &Observed::default()).unwrap());
        first.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let plan = plan.unwrap();
    let mut full = Observed::default();
    full.apply(&plan.operations);
    let mut noop = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let p = pano_eks_core::plan(&settings, &f, &full).unwrap();
        noop.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(p.is_noop());
    }
    first.sort_by(f64::total_cmp);
    noop.sort_by(f64::total_cmp);
    println!(
        "plan {clusters} clusters x {per} Services ({} operations): first min {:.1} ms median {:.1} ms; no-op min {:.1} ms median {:.1} ms",
        plan.operations.len(),
        first[0],
        first[3],
        noop[0],
        noop[3]
    );

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = support::Sim::start(&["--job-step-ms", "50"]);
    let (secs, writes, commits, pushes, ops) = converge(&rt, &sim, &f, None);
    println!(
        "first converge of {total} Services ({ops} operations): {secs:.2} s wall, {writes} write calls, {commits} commit(s), {pushes} push(es)"
    );
    let (nsecs, nwrites, ncommits, _, nops) = converge(&rt, &sim, &f, None);
    println!("no-op resync: {nops} operations, {nwrites} write calls, {ncommits} commits, {nsecs:.2} s wall");
    drop(sim);

    // PAN-OS 9.1: no multi-config, so one full-xpath edit per call, at most 5 in flight.
    let sim = support::Sim::start(&["--job-step-ms", "50", "--sw-version", "9.1.16"]);
    let (osecs, owrites, _, _, _) = converge(&rt, &sim, &f, None);
    println!(
        "same converge on PAN-OS 9.1 (one entry per call, <= 5 in flight): {osecs:.2} s wall, {owrites} write calls; multi-config uses {:.0}x fewer calls, {:.1}x less time",
        owrites as f64 / writes.max(1) as f64,
        osecs / secs
    );
}

fn support_config() -> pano_eks::config::Config {
    // Planning needs only the settings; a throwaway sim config gives a valid file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("authcodes"), "I1\n").unwrap();
    let text = std::fs::read_to_string(support::repo_root().join("src/config/example.toml"))
        .unwrap()
        .replace("ami = \"\"", "ami = \"ami-0123456789abcdef0\"")
        .replace("key_name = \"\"", "key_name = \"k\"")
        .replace("ssh_from = \"0.0.0.0/0\"", "ssh_from = \"203.0.113.7/32\"")
        .replace("url = \"\"", "url = \"https://127.0.0.1\"");
    let p = dir.path().join("pano-eks.toml");
    std::fs::write(&p, text).unwrap();
    pano_eks::config::load(&p, pano_eks::config::LoadOptions::runtime()).unwrap_or_else(|d| panic!("{d}")).config
}
