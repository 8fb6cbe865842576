//! Resident memory of `pano-eks sync --once` in a large estate (issue 18): 16 clusters × 1,000
//! Services protected, then one Service relabelled, each run as a user would (the CLI under
//! `/usr/bin/time -v`, against panorama-sim answering each call after `SYNC_MEMORY_LATENCY_MS`,
//! default 20). Prints peak RSS and wall time of the first converge and of the relabel.
//!
//!   cargo bench --bench sync_memory        (SYNC_MEMORY_SERVICES=N for another size)
//!
//! `SYNC_MEMORY_HEAPTRACK=FILE` runs the relabel under `heaptrack -o FILE` too (where the peak
//! is: `heaptrack_print FILE.zst`); its RSS figure then includes heaptrack's own.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;

fn facts(clusters: usize, per_cluster: usize, relabelled: Option<usize>) -> String {
    let mut cl = Vec::new();
    for c in 0..clusters {
        let services: Vec<String> = (0..per_cluster)
            .map(|i| {
                let n = c * per_cluster + i;
                let port = if relabelled == Some(n) { 40_000 + n } else { 10_000 + n };
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
    format!(
        r#"{{"clusters": [{}], "firewalls": [{{"id": "i-a", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}}, {{"id": "i-b", "az": "us-west-2b", "trust_subnet_cidr": "192.168.12.0/24"}}]}}"#,
        cl.join(",")
    )
}

/// Runs `pano-eks sync --once` under `/usr/bin/time -v`: (peak RSS in MB, wall seconds).
fn sync_once(config: &std::path::Path, facts: &std::path::Path, trace: bool) -> (f64, f64) {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v");
    if let (true, Ok(h)) = (trace, std::env::var("SYNC_MEMORY_HEAPTRACK")) {
        cmd.args(["heaptrack", "-o", &h]);
    }
    let out = cmd
        .arg(env!("CARGO_BIN_EXE_pano-eks"))
        .args(["--config", &support::path_str(config), "sync", "--once", "--facts", &support::path_str(facts)])
        .env("PANO_EKS_TEST_PANORAMA_PASSWORD", support::PASSWORD)
        .output()
        .expect("/usr/bin/time runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sync failed: {}\n{err}", String::from_utf8_lossy(&out.stdout));
    let field = |name: &str| err.lines().find_map(|l| l.trim().strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default();
    let rss_kb: f64 = field("Maximum resident set size (kbytes):").parse().unwrap_or(0.0);
    let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss):");
    let secs = wall.rsplit(':').enumerate().map(|(i, p)| p.parse::<f64>().unwrap_or(0.0) * 60f64.powi(i as i32)).sum();
    (rss_kb / 1024.0, secs)
}

fn main() {
    let total: usize = std::env::var("SYNC_MEMORY_SERVICES").ok().and_then(|v| v.parse().ok()).unwrap_or(16_000);
    let latency = std::env::var("SYNC_MEMORY_LATENCY_MS").unwrap_or_else(|_| "20".into());
    let (clusters, per) = (16, total / 16);
    let sim = support::Sim::start(&["--job-step-ms", "50", "--latency-ms", &latency]);
    let limits = "capacity = { fqdn_addresses = 1000000, addresses = 1000000, service_objects = 1000000, nat_rules = 1000000, security_rules = 1000000 }";
    let config =
        support::TestConfig { panorama_url: &sim.url, panorama_ca: "ca.pem", extra_firewalls: limits, ..support::TestConfig::default() }
            .write(sim.dir.path(), "pano-eks.toml");
    let first = sim.dir.path().join("facts.json");
    std::fs::write(&first, facts(clusters, per, None)).unwrap();
    let (rss, secs) = sync_once(&config, &first, false);
    println!("sync --once, first converge of {total} Services: peak RSS {rss:.0} MB, {secs:.1} s wall");
    let relabel = sim.dir.path().join("relabel.json");
    std::fs::write(&relabel, facts(clusters, per, Some(total / 2))).unwrap();
    let (rss, secs) = sync_once(&config, &relabel, true);
    println!("sync --once, one Service relabelled among {total} (latency {latency} ms per call): peak RSS {rss:.0} MB, {secs:.1} s wall");
}
