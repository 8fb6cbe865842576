//! Plan time for 16 clusters × 1,000 Services (3 subnets each, 2 firewalls): the first plan
//! against an empty Panorama, and the no-op resync against observed = desired. Target ≤ 50 ms.
//! Run with `cargo bench -p pano-eks-core`; `PLAN_BENCH_CLUSTERS` and `PLAN_BENCH_SERVICES`
//! (per cluster) change the shape, e.g. 1 × 16,000 for one large cluster.
//!
//! Prints min/median wall time and, on Linux, this thread's on-CPU time (schedstat; coarse on
//! some kernels), plus the load average: on a shared build box other jobs inflate both. For a
//! contention-free figure count instructions, e.g.
//! `PLAN_BENCH_ONLY=noop PLAN_BENCH_ITERS=1 valgrind --tool=callgrind --toggle-collect='pano_eks_core::plan::plan' <bench binary>`
//! (the count includes the one setup plan).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use pano_eks_core::*;

const RUNS: usize = 21;

fn shape() -> (usize, usize) {
    let n = |v: &str, d: usize| std::env::var(v).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
    (n("PLAN_BENCH_CLUSTERS", 16), n("PLAN_BENCH_SERVICES", 1_000))
}

fn facts() -> Facts {
    let (clusters, per_cluster) = shape();
    let clusters = (0..clusters)
        .map(|c| ClusterFacts {
            name: format!("cluster-{c:02}"),
            subnets: (0..3)
                .map(|s| SubnetFacts { id: format!("subnet-{c}-{s}"), cidr: format!("10.{c}.{}.0/24", s * 16), az: format!("az{s}") })
                .collect(),
            services: (0..per_cluster)
                .map(|i| ServiceFacts {
                    namespace: format!("team-{}", i % 20),
                    name: format!("service-{i:04}"),
                    labels: BTreeMap::from([("panw-tg-port".to_owned(), (20_000 + c * per_cluster + i).to_string())]),
                    annotations: BTreeMap::from([("service.beta.kubernetes.io/aws-load-balancer-internal".to_owned(), "true".to_owned())]),
                    service_type: "LoadBalancer".to_owned(),
                    load_balancer_class: None,
                    lb_hostname: Some(format!("internal-c{c}-s{i}-0123456789.elb.us-west-2.amazonaws.com")),
                    ports: vec![PortFacts { port: 8080, protocol: "TCP".to_owned() }],
                    created: Timestamp::parse("2026-11-26T10:00:00Z").unwrap(),
                })
                .collect(),
        })
        .collect();
    let firewalls = (0..2)
        .map(|i| FirewallFacts { id: format!("i-{i}"), az: format!("az{i}"), trust_subnet_cidr: format!("192.168.{i}.0/24") })
        .collect();
    Facts { clusters, firewalls, ..Default::default() }
}

/// This thread's time on a CPU (Linux schedstat), so a busy shared machine does not inflate
/// the figure the way wall time does. `None` elsewhere.
fn on_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(text.split_whitespace().next()?.parse().ok()?))
}

fn measure(label: &str, settings: &PlanSettings, facts: &Facts, observed: &Observed, expect_ops: impl Fn(usize) -> bool) -> Duration {
    let mut wall = Vec::with_capacity(RUNS);
    let mut cpu = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let (start, cpu_start) = (Instant::now(), on_cpu());
        let p = plan(black_box(settings), black_box(facts), black_box(observed)).unwrap();
        wall.push(start.elapsed());
        if let (Some(a), Some(b)) = (cpu_start, on_cpu()) {
            cpu.push(b - a);
        }
        assert!(expect_ops(p.operations.len()), "{label}: {} operations", p.operations.len());
        drop(black_box(p));
    }
    wall.sort();
    cpu.sort();
    print!("{label:<36} wall min {:>6.2} ms  median {:>6.2} ms", ms(wall[0]), ms(wall[RUNS / 2]));
    if cpu.len() == RUNS {
        print!("   on-CPU min {:>6.2} ms  median {:>6.2} ms", ms(cpu[0]), ms(cpu[RUNS / 2]));
    }
    println!("   ({RUNS} runs)");
    cpu.get(RUNS / 2).copied().unwrap_or(wall[RUNS / 2]).min(wall[RUNS / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let settings = PlanSettings::new("bench", "eks-dg", "eks-tpl");
    let facts = facts();
    let first = plan(&settings, &facts, &Observed::default()).unwrap();
    let mut observed = Observed::default();
    observed.apply(&first.operations);
    // For profilers: `PLAN_BENCH_ONLY=first|noop` loops one case (`PLAN_BENCH_ITERS` times,
    // default 50) and prints nothing else.
    if let Ok(case) = std::env::var("PLAN_BENCH_ONLY") {
        let start = if case == "noop" { observed } else { Observed::default() };
        let iterations = std::env::var("PLAN_BENCH_ITERS").ok().and_then(|n| n.parse().ok()).unwrap_or(50);
        for _ in 0..iterations {
            drop(black_box(plan(&settings, &facts, &start).unwrap()));
        }
        return;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (clusters, per_cluster) = shape();
    println!(
        "{clusters} clusters x {per_cluster} Services: {} operations, {} observed entries; load average {}",
        first.operations.len(),
        observed.len(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let a = measure("first plan (empty observed)", &settings, &facts, &Observed::default(), |n| n == first.operations.len());
    let b = measure("no-op resync (observed = desired)", &settings, &facts, &observed, |n| n == 0);
    let verdict = if a.max(b) <= Duration::from_millis(50) { "within" } else { "OVER" };
    println!("target 50 ms (median, on-CPU where available): {verdict}");
}
