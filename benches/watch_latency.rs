//! Latency from a Service change to Panorama's candidate config under `sync --watch`, with the
//! default debounce (1 s), against kube-sim and panorama-sim. Prints p50/p95 over N changes and
//! the commits made for one burst of changes. Not a timed test.
//!
//!   cargo bench --bench watch_latency            WATCH_BENCH_CHANGES=100 (default)

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use pano_eks::kube::ClusterAccess;
use pano_eks::panorama::locations::Locations;
use pano_eks::panorama::observe::{self, Which};
use pano_eks::secret::Secret;
use pano_eks::sync::metrics::Metrics;
use pano_eks::sync::watch::{self, WatchSetup, WatchedCluster};
use pano_eks::sync::{Credentials, Engine, EngineOptions};
use pano_eks_core::Facts;

const AWS_FACTS: &str = r#"{"clusters": [{"name": "shop", "subnets": [{"id": "subnet-1", "cidr": "192.168.110.0/24", "az": "us-west-2a"}]}],
  "firewalls": [{"id": "i-a", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}]}"#;

fn service(i: usize) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": "default", "labels": {"panw-tg-port": (10_000 + i).to_string()}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}
    }))
    .unwrap()
}

async fn publish(api: &Api<Service>, i: usize) {
    let status =
        serde_json::json!({"status": {"loadBalancer": {"ingress": [{"hostname": format!("internal-{i}.elb.us-west-2.amazonaws.com")}]}}});
    api.patch_status(&format!("svc-{i}"), &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::var("WATCH_BENCH_CHANGES").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let sim = support::Sim::start(&["--job-step-ms", "50"]);
    let k = support::aws_world::KubeSim::start("shop");
    let cfg = sim.config("");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let stats = |key: &str| sim.stats()[key].as_u64().unwrap_or(0);
    let (latencies, burst_commits) = rt.block_on(async {
        let access =
            ClusterAccess { endpoint: k.url.clone(), ca_pem: Some(std::fs::read(&k.ca).unwrap()), token: Secret::new("kube-sim-admin") };
        let client = pano_eks::kube::client(&access).await.unwrap();
        let connect =
            || Engine::connect_with(&cfg, sim.dir.path(), EngineOptions::default(), Credentials::Password(Secret::new(support::PASSWORD)));
        let (_facts_tx, facts_rx) = tokio::sync::watch::channel(Facts::from_json(AWS_FACTS).unwrap());
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
            on_converge: None,
        };
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(watch::run(setup, async move {
            let _ = stop_rx.await;
        }));
        let probe = connect().await.unwrap();
        let locs = Locations::from_settings(&probe.settings);
        let api: Api<Service> = Api::namespaced(client.clone(), "default");
        tokio::time::sleep(Duration::from_secs(2)).await; // the first list and the cluster's routes
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
