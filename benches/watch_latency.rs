//! Latency from a Service change to Panorama's candidate config under `sync --watch`, with the
//! default debounce (1 s), against kube-sim and panorama-sim. Prints p50/p95 over N changes and
//! the commits made for one burst of changes. Not a timed test.
//!
//!   cargo bench --bench watch_latency            WATCH_BENCH_CHANGES=100 (default)
//!
//! Large-estate mode (issue 18): `WATCH_BENCH_ESTATE=16000` protects that many Services first,
//! then makes the N changes a mix of create, relabel and delete, against panorama-sim answering
//! each call after `WATCH_BENCH_LATENCY_MS` (default 20 in this mode, 0 otherwise). It prints,
//! per change, the engine's config reads and write calls (the probe's own single-entry polls are
//! counted and subtracted), so a converge that reads the whole estate shows up as such.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use pano_eks::kube::ClusterAccess;
use pano_eks::panorama::cache::Confirmed;
use pano_eks::panorama::locations::Locations;
use pano_eks::panorama::observe::{self, Which};
use pano_eks::secret::Secret;
use pano_eks::sync::metrics::Metrics;
use pano_eks::sync::watch::{self, WatchSetup, WatchedCluster};
use pano_eks::sync::{Credentials, Engine, EngineOptions};
use pano_eks_core::{Facts, Kind};

const AWS_FACTS: &str = r#"{"clusters": [{"name": "shop", "subnets": [{"id": "subnet-1", "cidr": "192.168.110.0/24", "az": "us-west-2a"}]}],
  "firewalls": [{"id": "i-a", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}]}"#;

fn service(i: usize) -> Service {
    service_on(i, 10_000 + i)
}

fn service_on(i: usize, port: usize) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": "default", "labels": {"panw-tg-port": port.to_string()},
                     "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
        "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80, "protocol": "TCP"}]}
    }))
    .unwrap()
}

async fn publish(api: &Api<Service>, i: usize) {
    let status =
        serde_json::json!({"status": {"loadBalancer": {"ingress": [{"hostname": format!("internal-{i}.elb.us-west-2.amazonaws.com")}]}}});
    api.patch_status(&format!("svc-{i}"), &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

/// This process's peak resident set size (`VmHWM` in /proc/self/status), in MB.
fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn env_num(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// One change of the large-estate mode: what was done to which Service.
#[derive(Clone, Copy)]
enum Change {
    Create(usize),
    Relabel(usize, usize),
    Delete(usize),
}

/// The mixed sequence: create a new Service, relabel an existing one, delete an existing one.
fn changes(estate: usize, n: usize) -> Vec<Change> {
    (0..n)
        .map(|j| match j % 3 {
            0 => Change::Create(estate + j),
            1 => Change::Relabel(j, 30_000 + j),
            _ => Change::Delete(estate / 2 + j),
        })
        .collect()
}

fn main() {
    let n: usize = env_num("WATCH_BENCH_CHANGES").unwrap_or(100);
    let estate: usize = env_num("WATCH_BENCH_ESTATE").unwrap_or(0);
    let latency = env_num("WATCH_BENCH_LATENCY_MS").unwrap_or(if estate > 0 { 20 } else { 0 }).to_string();
    let sim = support::Sim::start(&["--job-step-ms", "50", "--latency-ms", &latency]);
    let k = support::aws_world::KubeSim::start("shop");
    let cfg = support::unlimited(sim.config(""));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // What each converge's confirmation read (None: a full read), and where its time went.
    let confirmed: Arc<Mutex<Vec<Option<Confirmed>>>> = Arc::default();
    let phases: Arc<Mutex<Vec<Vec<(&'static str, u128)>>>> = Arc::default();
    let stats = |key: &str| sim.stats()[key].as_u64().unwrap_or(0);
    let (latencies, burst_commits) = rt.block_on(async {
        let access =
            ClusterAccess { endpoint: k.url.clone(), ca_pem: Some(std::fs::read(&k.ca).unwrap()), token: Secret::new("kube-sim-admin") };
        let client = pano_eks::kube::client(&access).await.unwrap();
        let connect =
            || Engine::connect_with(&cfg, sim.dir.path(), EngineOptions::default(), Credentials::Password(Secret::new(support::PASSWORD)));
        let (_facts_tx, facts_rx) = tokio::sync::watch::channel(Facts::from_json(AWS_FACTS).unwrap());
        let confirmed_log = confirmed.clone();
        let phases_log = phases.clone();
        let setup = WatchSetup {
            engine: connect().await.unwrap(),
            clusters: vec![WatchedCluster { name: "shop".into(), client: client.clone() }],
            base_facts: facts_rx,
            label: "panw-tg-port".into(),
            debounce: Duration::from_secs(1),
            resync: Duration::from_secs(300),
            metrics: Metrics::default(),
            leader: None,
            events: true,
            on_converge: Some(Box::new(move |r: &Result<pano_eks::sync::Report, String>| {
                if let Ok(r) = r {
                    confirmed_log.lock().unwrap().push(r.confirmed.clone());
                    phases_log.lock().unwrap().push(r.phases_ms.clone());
                }
            })),
        };
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(watch::run(setup, async move {
            let _ = stop_rx.await;
        }));
        let probe = connect().await.unwrap();
        let locs = Locations::from_settings(&probe.settings);
        let api: Api<Service> = Api::namespaced(client.clone(), "default");
        tokio::time::sleep(Duration::from_secs(2)).await; // the first list and the cluster's routes
        if estate > 0 {
            let r = large_estate(&sim, &probe.client, &locs, &api, estate, n, &confirmed, &phases).await;
            let _ = stop.send(());
            let _ = run.await;
            return (r, 0);
        }
        let mut lat = Vec::new();
        for i in 0..n {
            api.create(&PostParams::default(), &service(i)).await.unwrap();
            let t = Instant::now();
            publish(&api, i).await;
            let rule = format!("demo.in.shop.default.svc-{i}");
            loop {
                let o = observe::read(&probe.client, &locs, Which::Candidate).await.unwrap();
                if o.nat_rules.iter().any(|r| r.name == rule) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            lat.push(t.elapsed().as_secs_f64());
        }
        // A burst of 20 changes at once: one commit (and its pushes) for all of them.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = tokio::task::block_in_place(|| stats("commits"));
        for i in n..n + 20 {
            api.create(&PostParams::default(), &service(i)).await.unwrap();
            publish(&api, i).await;
        }
        tokio::time::sleep(Duration::from_secs(6)).await;
        let after = tokio::task::block_in_place(|| stats("commits"));
        let _ = stop.send(());
        let _ = run.await;
        (lat, after - before)
    });
    if estate > 0 {
        return; // large_estate printed its figures
    }
    let mut s = latencies.clone();
    s.sort_by(f64::total_cmp);
    println!(
        "change -> Panorama candidate over {n} changes (debounce 1s): p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        pct(&s, 0.5),
        pct(&s, 0.95),
        s[s.len() - 1]
    );
    println!("burst of 20 Service changes: {burst_commits} commit(s)");
}

/// Waits until the candidate's NAT rule of `svc-{i}` is present with `port` in it, or absent
/// (`None`); returns how many single-entry reads the probe made.
async fn await_rule(client: &pano_eks::panorama::client::PanoramaClient, locs: &Locations, i: usize, port: Option<usize>) -> u64 {
    let xpath = locs.entry(Kind::NatRule, &format!("demo.in.shop.default.svc-{i}"));
    let mut polls = 0;
    loop {
        polls += 1;
        let got = client.get(&xpath).await.unwrap();
        let done = match (port, got) {
            (None, None) => true,
            (Some(p), Some(e)) => e.to_xml().contains(&p.to_string()),
            _ => false,
        };
        if done {
            return polls;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Protects `estate` Services, then makes `n` mixed changes; prints latency and calls per change.
async fn large_estate(
    sim: &support::Sim,
    client: &pano_eks::panorama::client::PanoramaClient,
    locs: &Locations,
    api: &Api<Service>,
    estate: usize,
    n: usize,
    confirmed: &Mutex<Vec<Option<Confirmed>>>,
    phases: &Mutex<Vec<Vec<(&'static str, u128)>>>,
) -> Vec<f64> {
    let t0 = Instant::now();
    for i in 0..estate {
        api.create(&PostParams::default(), &service(i)).await.unwrap();
        publish(api, i).await;
    }
    await_rule(client, locs, estate - 1, Some(10_000 + estate - 1)).await;
    println!("{estate} Services protected in {:.1} s", t0.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(3)).await; // let the first converge's commit settle
    let stats = || tokio::task::block_in_place(|| sim.stats());
    let reads =
        |s: &serde_json::Value| s["requests"]["config.get"].as_u64().unwrap_or(0) + s["requests"]["config.show"].as_u64().unwrap_or(0);
    let (mut lat, mut read_calls, mut write_calls) = (Vec::new(), Vec::new(), Vec::new());
    confirmed.lock().unwrap().clear();
    phases.lock().unwrap().clear();
    for c in changes(estate, n) {
        let before = stats();
        let t = Instant::now();
        let polls = match c {
            Change::Create(i) => {
                api.create(&PostParams::default(), &service(i)).await.unwrap();
                publish(api, i).await;
                await_rule(client, locs, i, Some(10_000 + i)).await
            }
            Change::Relabel(i, port) => {
                let patch = serde_json::json!({"metadata": {"labels": {"panw-tg-port": port.to_string()}}});
                api.patch(&format!("svc-{i}"), &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
                await_rule(client, locs, i, Some(port)).await
            }
            Change::Delete(i) => {
                api.delete(&format!("svc-{i}"), &Default::default()).await.unwrap();
                await_rule(client, locs, i, None).await
            }
        };
        lat.push(t.elapsed().as_secs_f64());
        // The converge may still be committing: wait out one debounce before counting its calls.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = stats();
        read_calls.push((reads(&after) - reads(&before)).saturating_sub(polls));
        write_calls.push(after["write_calls"].as_u64().unwrap_or(0) - before["write_calls"].as_u64().unwrap_or(0));
    }
    let mut s = lat.clone();
    s.sort_by(f64::total_cmp);
    let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    println!(
        "large estate ({estate} Services, {n} mixed changes, debounce 1s): change -> candidate p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        pct(&s, 0.5),
        pct(&s, 0.95),
        s[s.len() - 1]
    );
    println!(
        "per change: config reads mean {:.1} max {}, write calls mean {:.1} max {}",
        mean(&read_calls),
        max(&read_calls),
        mean(&write_calls),
        max(&write_calls)
    );
    let log = confirmed.lock().unwrap();
    let full = log.iter().filter(|c| c.is_none()).count();
    let cached: Vec<&Confirmed> = log.iter().flatten().collect();
    let whole: usize = cached.iter().map(|c| c.reread.len() + usize::from(c.fell_back)).sum();
    let kinds_read: std::collections::BTreeMap<Kind, usize> =
        cached.iter().flat_map(|c| c.named.keys().copied()).fold(Default::default(), |mut m, k| {
            *m.entry(k).or_default() += 1;
            m
        });
    println!(
        "converges during the changes: {} from the cache ({whole} whole-kind reads after a foreign edit; kinds read by name: {kinds_read:?}; referrers read {} times), {full} full",
        cached.len(),
        cached.iter().filter(|c| c.referrers).count()
    );
    // Where a converge's time went, mean over the converges during the changes.
    let phases = phases.lock().unwrap();
    let mut sum: Vec<(&str, u128)> = Vec::new();
    for p in phases.iter() {
        for (name, ms) in p {
            match sum.iter_mut().find(|(n, _)| n == name) {
                Some(e) => e.1 += ms,
                None => sum.push((name, *ms)),
            }
        }
    }
    let per: Vec<String> = sum.iter().map(|(n, ms)| format!("{n} {:.0} ms", *ms as f64 / phases.len().max(1) as f64)).collect();
    println!("a converge's phases (mean over {}): {}", phases.len(), per.join(", "));
    println!("peak RSS of this process (the watch loop, its kube store of {estate} Services, the probe): {} MB", peak_rss_mb());
    lat
}
