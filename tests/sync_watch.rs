//! `sync --watch` against kube-sim and panorama-sim: Services created, relabelled, given a new
//! hostname and deleted make Panorama follow; a dropped watch is re-listed; of two replicas with
//! leader election only one writes, and the other takes over when the leader goes away.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use pano_eks::kube::{ClusterAccess, leader::LeaderElector};
use pano_eks::panorama::locations::Locations;
use pano_eks::panorama::observe::{self, Which};
use pano_eks::secret::Secret;
use pano_eks::sync::metrics::Metrics;
use pano_eks::sync::watch::{self, WatchSetup, WatchedCluster};
use pano_eks::sync::{Credentials, Engine, EngineOptions, Report};
use pano_eks_core::{Facts, Observed};
use support::aws_world::KubeSim;
use support::{PASSWORD, Sim};

const AWS_FACTS: &str = r#"{"clusters": [{"name": "shop", "subnets": [{"id": "subnet-1", "cidr": "192.168.110.0/24", "az": "us-west-2a"}]}],
  "firewalls": [{"id": "i-a", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}]}"#;

async fn kube_client(k: &KubeSim) -> kube::Client {
    let access =
        ClusterAccess { endpoint: k.url.clone(), ca_pem: Some(std::fs::read(&k.ca).unwrap()), token: Secret::new("kube-sim-admin") };
    pano_eks::kube::client(&access).await.unwrap()
}

async fn engine(sim: &Sim) -> Engine {
    let cfg = sim.config("");
    Engine::connect_with(&cfg, sim.dir.path(), EngineOptions::default(), Credentials::Password(Secret::new(PASSWORD))).await.unwrap()
}

fn service(name: &str, port: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"panw-tg-port": port},
                     "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}
    }))
    .unwrap()
}

/// Publishes the NLB hostname in the Service's status, as the AWS load balancer controller would.
async fn publish_hostname(api: &Api<Service>, name: &str, host: &str) {
    let status = serde_json::json!({"status": {"loadBalancer": {"ingress": [{"hostname": host}]}}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

async fn candidate(e: &Engine) -> Observed {
    observe::read(&e.client, &Locations::from_settings(&e.settings), Which::Candidate).await.unwrap()
}

/// Bound of every wait in these tests: a failure detector, not a performance check (an idle
/// machine needs well under a second for each step).
const WAIT: Duration = Duration::from_secs(60);

/// Polls Panorama's candidate config until `pred` holds (bounded by `WAIT`).
async fn until(e: &Engine, what: &str, pred: impl Fn(&Observed) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if pred(&candidate(e).await) {
            return start.elapsed();
        }
        assert!(start.elapsed() < WAIT, "waited {:?} for: {what}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn setup(
    engine: Engine,
    client: kube::Client,
    leader: Option<tokio::sync::watch::Receiver<bool>>,
    log: Arc<Mutex<Vec<usize>>>,
) -> WatchSetup {
    setup_with_facts(AWS_FACTS, engine, client, leader, log)
}

fn setup_with_facts(
    aws_facts: &str,
    engine: Engine,
    client: kube::Client,
    leader: Option<tokio::sync::watch::Receiver<bool>>,
    log: Arc<Mutex<Vec<usize>>>,
) -> WatchSetup {
    let (_tx, rx) = tokio::sync::watch::channel(Facts::from_json(aws_facts).unwrap());
    std::mem::forget(_tx); // the AWS facts stay as they are for the test's lifetime
    WatchSetup {
        engine,
        clusters: vec![WatchedCluster { name: "shop".into(), client }],
        base_facts: rx,
        label: "panw-tg-port".into(),
        debounce: Duration::from_millis(200),
        resync: Duration::from_secs(3600),
        metrics: Metrics::default(),
        leader,
        events: true,
        on_converge: Some(Box::new(move |r: &Result<Report, String>| {
            if let Ok(r) = r {
                log.lock().unwrap().push(r.plan.operations.len());
            }
        })),
    }
}

fn has_rule(o: &Observed, svc: &str) -> bool {
    o.nat_rules.iter().any(|r| r.name == format!("demo.in.shop.default.{svc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panorama_follows_service_changes_and_survives_a_dropped_watch() {
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(setup(engine(&sim).await, client.clone(), None, log.clone()), async move {
        let _ = stop_rx.await;
    }));
    let e = engine(&sim).await;

    // Create: pending until the load balancer has a hostname, then protected.
    api.create(&PostParams::default(), &service("frontend", "82")).await.unwrap();
    until(&e, "outbound rule and routes for the cluster", |o| !o.static_routes.is_empty()).await;
    assert!(!has_rule(&candidate(&e).await, "frontend"), "no hostname yet: pending, nothing written");
    publish_hostname(&api, "frontend", "internal-fe-1.elb.us-west-2.amazonaws.com").await;
    until(&e, "frontend's NAT rule", |o| has_rule(o, "frontend")).await;

    // Relabel: the NAT rule now uses the new port's service object.
    let relabel = serde_json::json!({"metadata": {"labels": {"panw-tg-port": "83"}}});
    api.patch("frontend", &PatchParams::default(), &Patch::Merge(&relabel)).await.unwrap();
    until(&e, "the rule follows the new port", |o| {
        o.nat_rules.iter().any(|r| r.name == "demo.in.shop.default.frontend" && r.service.ends_with("83"))
    })
    .await;

    // New hostname: the address object is updated in place.
    publish_hostname(&api, "frontend", "internal-fe-2.elb.us-west-2.amazonaws.com").await;
    until(&e, "the address follows the hostname", |o| {
        o.addresses
            .iter()
            .any(|a| matches!(&a.value, pano_eks_core::AddressValue::Fqdn(h) if h == "internal-fe-2.elb.us-west-2.amazonaws.com"))
    })
    .await;

    // The watch connection is cut: the watcher re-lists and the next change still lands.
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&k.ca).unwrap()).unwrap()])
        .build()
        .unwrap();
    let r = http.post(format!("{}/_sim/drop-watches", k.url)).send().await.unwrap();
    assert!(r.status().is_success());
    api.create(&PostParams::default(), &service("cart", "84")).await.unwrap();
    publish_hostname(&api, "cart", "internal-cart.elb.us-west-2.amazonaws.com").await;
    until(&e, "cart protected after the watch was dropped", |o| has_rule(o, "cart")).await;

    // Delete: its objects go, the other Service's stay.
    api.delete("frontend", &DeleteParams::default()).await.unwrap();
    until(&e, "frontend's objects removed", |o| !has_rule(o, "frontend") && has_rule(o, "cart")).await;
    // …and the deletion is committed (the candidate shows it before the commit job ends).
    let start = Instant::now();
    loop {
        let running = observe::read(&e.client, &Locations::from_settings(&e.settings), Which::Running).await.unwrap();
        if has_rule(&running, "cart") && !has_rule(&running, "frontend") {
            break;
        }
        assert!(start.elapsed() < WAIT, "the deletion was not committed within {:?}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run).await.expect("stops on shutdown").unwrap();
    assert!(!log.lock().unwrap().is_empty());
}

/// Waits (bounded) until a replica's converge log shows a converge that wrote.
async fn until_wrote(log: &Arc<Mutex<Vec<usize>>>, who: &str) {
    let start = Instant::now();
    while !log.lock().unwrap().iter().any(|n| *n > 0) {
        assert!(start.elapsed() < WAIT, "{who} did not write within {:?}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_writer_and_failover() {
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    // The Lease lives in the pano-eks namespace.
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "pano-eks"}})).unwrap();
    Api::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
    let lease = Duration::from_secs(3);
    let a = LeaderElector::new(client.clone(), "pano-eks", "pano-eks-sync-demo", "replica-a", lease);
    let b = LeaderElector::new(client.clone(), "pano-eks", "pano-eks-sync-demo", "replica-b", lease);
    let (a_rx, a_task) = a.spawn();
    // b starts only once a holds the lease, so "a leads" is a state, not a race.
    let start = Instant::now();
    while !*a_rx.borrow() {
        assert!(start.elapsed() < WAIT, "replica a did not take the free lease within {:?}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (b_rx, b_task) = b.spawn();

    let (log_a, log_b) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let (stop_a, stop_a_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, stop_b_rx) = tokio::sync::oneshot::channel::<()>();
    let ra = tokio::spawn(watch::run(setup(engine(&sim).await, client.clone(), Some(a_rx.clone()), log_a.clone()), async move {
        let _ = stop_a_rx.await;
    }));
    let rb = tokio::spawn(watch::run(setup(engine(&sim).await, client.clone(), Some(b_rx.clone()), log_b.clone()), async move {
        let _ = stop_b_rx.await;
    }));
    let e = engine(&sim).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    assert!(*a_rx.borrow() && !*b_rx.borrow(), "exactly one leader: a");

    api.create(&PostParams::default(), &service("one", "82")).await.unwrap();
    publish_hostname(&api, "one", "internal-one.elb.us-west-2.amazonaws.com").await;
    until(&e, "one protected", |o| has_rule(o, "one")).await;
    until_wrote(&log_a, "the leader").await;
    assert!(log_b.lock().unwrap().is_empty(), "the follower never converged");

    // The leader goes away without releasing (killed): b takes over within the lease duration.
    a_task.abort();
    let _ = stop_a.send(());
    let _ = ra.await;
    let killed = Instant::now();
    // b may take over only once a's lease has expired; the bound is a failure detector (five
    // lease durations), the figure is printed below.
    while !*b_rx.borrow() {
        assert!(killed.elapsed() < lease * 5, "no failover within {:?} (lease {lease:?})", killed.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failover = killed.elapsed();
    api.create(&PostParams::default(), &service("two", "83")).await.unwrap();
    publish_hostname(&api, "two", "internal-two.elb.us-west-2.amazonaws.com").await;
    until(&e, "two protected by the new leader", |o| has_rule(o, "two")).await;
    until_wrote(&log_b, "the new leader").await;
    eprintln!("failover took {failover:?} (lease {lease:?})");
    let _ = stop_b.send(());
    let _ = rb.await;
    b_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_held_while_the_others_keep_syncing() {
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let e = engine(&sim).await;
    // Panorama already protects blog's Service (from an earlier run)...
    let seeded: Facts = Facts::from_json(r#"{"clusters": [
        {"name": "blog", "subnets": [{"id": "subnet-9", "cidr": "192.168.120.0/24", "az": "us-west-2a"}],
         "services": [{"namespace": "default", "name": "api", "labels": {"panw-tg-port": "90"}, "type": "LoadBalancer",
                       "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
                       "lb_hostname": "internal-api.elb.us-west-2.amazonaws.com", "ports": [{"port": 80}], "created": "2026-11-26T10:00:00Z"}]}],
        "firewalls": [{"id": "i-a", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}]}"#).unwrap();
    e.converge(&seeded).await.unwrap();
    assert!(candidate(&e).await.nat_rules.iter().any(|r| r.name == "demo.in.blog.default.api"));

    // ...and now blog's API cannot be reached (nothing listens on port 9): shop still converges.
    let dead =
        ClusterAccess { endpoint: "https://127.0.0.1:9".into(), ca_pem: Some(std::fs::read(&k.ca).unwrap()), token: Secret::new("x") };
    let blog_client = pano_eks::kube::client(&dead).await.unwrap();
    let mut facts = Facts::from_json(AWS_FACTS).unwrap();
    facts.clusters.push(seeded.clusters[0].clone());
    facts.clusters[1].services.clear();
    let (_tx, rx) = tokio::sync::watch::channel(facts);
    let mut s = setup(engine(&sim).await, client.clone(), None, Arc::new(Mutex::new(Vec::new())));
    s.base_facts = rx;
    s.clusters.push(WatchedCluster { name: "blog".into(), client: blog_client });
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(s, async move {
        let _ = stop_rx.await;
    }));
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &service("frontend", "82")).await.unwrap();
    publish_hostname(&api, "frontend", "internal-fe.elb.us-west-2.amazonaws.com").await;
    until(&e, "shop's Service protected while blog is unreachable", |o| has_rule(o, "frontend")).await;
    let now = candidate(&e).await;
    assert!(now.nat_rules.iter().any(|r| r.name == "demo.in.blog.default.api"), "blog's objects were held, not deleted");
    let _ = stop.send(());
    let _ = run.await;
}

/// A Service that stops being protectable (its label turns invalid) while another admin's
/// security rule names its address: the address is held, and the Service gets a `Held` Warning
/// Event naming the rule, next to its `InvalidLabel` one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_address_is_told_on_its_service_as_a_kubernetes_event() {
    use k8s_openapi::api::events::v1::Event;
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(setup(engine(&sim).await, client.clone(), None, Arc::new(Mutex::new(Vec::new()))), async move {
        let _ = stop_rx.await;
    }));
    let e = engine(&sim).await;
    api.create(&PostParams::default(), &service("frontend", "82")).await.unwrap();
    publish_hostname(&api, "frontend", "internal-fe.elb.us-west-2.amazonaws.com").await;
    until(&e, "frontend protected", |o| has_rule(o, "frontend")).await;

    let dg = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']";
    let rule = "<entry name='allow-fe'><from><member>untrust</member></from><to><member>trust</member></to><source><member>any</member></source>\
        <destination><member>demo.shop.default.frontend</member></destination><service><member>application-default</member></service>\
        <application><member>web-browsing</member></application><action>allow</action></entry>";
    let xpath = format!("{dg}/pre-rulebase/security/rules");
    let params = [("type", "config"), ("action", "set"), ("xpath", xpath.as_str()), ("element", rule)];
    // (A blocking HTTP client: off the async worker.)
    let r = tokio::task::block_in_place(|| sim.api_as("other-admin", "other", &params));
    assert!(r.contains("success"), "{r}");
    let relabel = serde_json::json!({"metadata": {"labels": {"panw-tg-port": "not-a-port"}}});
    api.patch("frontend", &PatchParams::default(), &Patch::Merge(&relabel)).await.unwrap();
    until(&e, "frontend's NAT rule removed", |o| !has_rule(o, "frontend")).await;

    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    let held =
        loop {
            let list = events.list(&Default::default()).await.unwrap();
            if let Some(ev) = list.items.into_iter().find(|ev| {
                ev.reason.as_deref() == Some("Held") && ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("frontend")
            }) {
                break ev;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no Held event after {:?}", start.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
    assert_eq!(held.type_.as_deref(), Some("Warning"));
    let note = held.note.unwrap_or_default();
    assert!(note.contains("demo.shop.default.frontend") && note.contains("security rule \"allow-fe\""), "{note}");
    assert!(candidate(&e).await.addresses.iter().any(|a| a.name == "demo.shop.default.frontend"), "the address is held");
    let _ = stop.send(());
    let _ = run.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_converge_is_tried_again_without_waiting_for_a_change() {
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    let mut s = setup(engine(&sim).await, client.clone(), None, Arc::new(Mutex::new(Vec::new())));
    s.on_converge = Some(Box::new(move |r: &Result<Report, String>| seen.lock().unwrap().push(r.is_ok())));
    // Every commit fails until the fault is lifted.
    let faults = |v: serde_json::Value| {
        let sim_url = sim.url.clone();
        let ca = sim.ca();
        async move {
            let http = reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap()])
                .build()
                .unwrap();
            assert!(http.post(format!("{sim_url}/_sim/faults")).json(&v).send().await.unwrap().status().is_success());
        }
    };
    faults(serde_json::json!({"fail_commit": "injected: commit refused"})).await;
    api.create(&PostParams::default(), &service("frontend", "82")).await.unwrap();
    publish_hostname(&api, "frontend", "internal-fe-1.elb.us-west-2.amazonaws.com").await;
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(s, async move {
        let _ = stop_rx.await;
    }));
    let start = Instant::now();
    while !outcomes.lock().unwrap().contains(&false) {
        assert!(start.elapsed() < WAIT, "no failed converge within {:?}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The fault goes; nothing changes in Kubernetes, and the resync is an hour away: the retry
    // (2 s after the failure) commits the Service.
    faults(serde_json::json!({"fail_commit": null})).await;
    let e = engine(&sim).await;
    let lifted = Instant::now();
    loop {
        let running = observe::read(&e.client, &Locations::from_settings(&e.settings), Which::Running).await.unwrap();
        if has_rule(&running, "frontend") {
            break;
        }
        assert!(
            lifted.elapsed() < WAIT,
            "the failed converge was not tried again within {:?}: {:?}",
            lifted.elapsed(),
            outcomes.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("retried and committed {:?} after the fault was lifted", lifted.elapsed());
    let _ = stop.send(());
    let _ = run.await;
}

/// `sync --watch` re-verifies after each push (issue 15): every member firewall gets rows in
/// /metrics, and the firewalls were asked (the sim's count of the ops verify sends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_is_followed_by_a_verification_exported_as_metrics() {
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let s = setup(engine(&sim).await, client.clone(), None, Arc::new(Mutex::new(Vec::new())));
    let metrics = s.metrics.clone();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(s, async move {
        let _ = stop_rx.await;
    }));
    api.create(&PostParams::default(), &service("frontend", "82")).await.unwrap();
    publish_hostname(&api, "frontend", "internal-fe.elb.us-west-2.amazonaws.com").await;
    let start = Instant::now();
    let want = ["007900000001", "007900000002"].map(|fw| format!("pano_eks_verify_checks{{firewall=\"{fw}\",check=\"in-sync\""));
    loop {
        let text = metrics.render();
        if want.iter().all(|w| text.contains(w.as_str())) {
            break;
        }
        assert!(start.elapsed() < WAIT, "no verification in /metrics after {:?}:\n{text}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = tokio::task::block_in_place(|| sim.stats());
    assert!(stats["requests"]["op.show.devicegroups"].as_u64().unwrap_or(0) >= 1, "{stats}");
    assert!(stats["requests"]["op.show.interface"].as_u64().unwrap_or(0) >= 2, "each connected firewall asked: {stats}");
    assert!(!metrics.render().contains("pano_eks_verify_last_timestamp_seconds 0\n"), "the time of the verification is set");
    // No DNS map in the sim: neither firewall resolves frontend's FQDN, and the Service is told so.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    let ev = loop {
        let list = events.list(&Default::default()).await.unwrap();
        let found = list.items.into_iter().find(|ev| {
            ev.reason.as_deref() == Some("VerifyFailed") && ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("frontend")
        });
        if let Some(ev) = found {
            break ev;
        }
        assert!(start.elapsed() < WAIT, "no VerifyFailed event after {:?}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    let note = ev.note.unwrap_or_default();
    assert!(note.contains("007900000001 fqdn") && note.contains("007900000002 fqdn"), "{note}");
    let _ = stop.send(());
    let _ = run.await;
}

/// The value of an unlabelled metric in /metrics text.
fn gauge(text: &str, name: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' '))).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// `sync --watch` verifies after every converge, also a resync that pushed nothing (issue 15),
/// off the loop; and after a push that both firewalls report OK but silently ignore, the
/// `config-version` check fails on both (their policy version did not move past our push,
/// although neither is behind the other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_runs_on_each_resync_and_catches_a_push_every_firewall_ignored() {
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let mut s = setup(engine(&sim).await, client.clone(), None, Arc::new(Mutex::new(Vec::new())));
    s.resync = Duration::from_secs(2);
    let metrics = s.metrics.clone();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(s, async move {
        let _ = stop_rx.await;
    }));
    api.create(&PostParams::default(), &service("frontend", "82")).await.unwrap();
    publish_hostname(&api, "frontend", "internal-fe.elb.us-west-2.amazonaws.com").await;
    let start = Instant::now();
    let rows = |fw: &str, check: &str, result: &str| {
        format!("pano_eks_verify_checks{{firewall=\"{fw}\",check=\"{check}\",result=\"{result}\"}} 1")
    };
    let sample = |text: &str| {
        (
            gauge(text, "pano_eks_verify_last_timestamp_seconds"),
            gauge(text, "pano_eks_pushes_total"),
            gauge(text, "pano_eks_reconciles_total"),
        )
    };
    let (mut first, mut pushes, mut reconciles) = loop {
        let text = metrics.render();
        if gauge(&text, "pano_eks_verify_last_timestamp_seconds") > 0.0 && text.contains(&rows("007900000002", "config-version", "ok")) {
            break sample(&text);
        }
        assert!(start.elapsed() < WAIT, "no verification after {:?}:\n{text}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Nothing changes: a later converge (the resync) pushes nothing, and a pass follows it.
    let start = Instant::now();
    loop {
        let text = metrics.render();
        let (at, p, r) = sample(&text);
        if at > first && r > reconciles && p == pushes {
            break;
        }
        if at > first && p != pushes {
            // A pass of the first Service's later converges (its hostname): start from it.
            (first, pushes, reconciles) = (at, p, r);
        }
        assert!(start.elapsed() < WAIT, "no verification after a resync that pushed nothing, after {:?}:\n{text}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both firewalls take the next push silently (OK in the job, old config kept).
    tokio::task::block_in_place(|| sim.faults(serde_json::json!({"push_silently_ignored_by": ["007900000001", "007900000002"]})));
    let relabel = serde_json::json!({"metadata": {"labels": {"panw-tg-port": "85"}}});
    api.patch("frontend", &PatchParams::default(), &Patch::Merge(&relabel)).await.unwrap();
    let start = Instant::now();
    loop {
        let text = metrics.render();
        if ["007900000001", "007900000002"].iter().all(|fw| text.contains(&rows(fw, "config-version", "fail"))) {
            assert!(gauge(&text, "pano_eks_pushes_total") > pushes, "{text}");
            break;
        }
        assert!(start.elapsed() < WAIT, "config-version did not fail on both after {:?}:\n{text}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    let _ = run.await;
}

/// After a converge from the watch cache, verify asks the firewalls only about what it changed
/// (issue 18): with four Services protected and verified green, one relabel costs per firewall
/// one NAT match and one security match for that Service and one FQDN table, and no fib-lookup
/// (the subnets did not change); the other Services' rows are kept, so /metrics still counts all
/// four. Counted from what the sim received, not from what the product reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_relabel_verify_asks_only_about_the_relabelled_service() {
    let sim = Sim::start_with_devices(support::DEVICES_WITH_INTERFACES, &["--job-step-ms", "20"]);
    tokio::task::block_in_place(|| support::allow_inbound_and_stack_the_template(&sim));
    let names = ["a", "b", "c", "d"];
    let host = |n: &str| format!("internal-{n}.elb.us-west-2.amazonaws.com");
    let dns: serde_json::Map<String, serde_json::Value> =
        names.iter().enumerate().map(|(i, n)| (host(n), serde_json::json!([format!("192.168.110.{}", 70 + i)]))).collect();
    tokio::task::block_in_place(|| sim.dns(serde_json::Value::Object(dns)));
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let facts = support::facts_json(0, "");
    let s = setup_with_facts(&facts, engine(&sim).await, client.clone(), None, Arc::new(Mutex::new(Vec::new())));
    let metrics = s.metrics.clone();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(s, async move {
        let _ = stop_rx.await;
    }));
    for (i, n) in names.iter().enumerate() {
        api.create(&PostParams::default(), &service(n, &(8100 + i).to_string())).await.unwrap();
        publish_hostname(&api, n, &host(n)).await;
    }
    let fws = ["007900000001", "007900000002"];
    let green = |text: &str, services: usize| {
        text.lines().filter(|l| l.contains("result=\"fail\"")).all(|l| l.ends_with(" 0"))
            && fws.iter().all(|fw| {
                [("inbound-nat", services), ("inbound-security", services), ("fqdn", services), ("route", 2), ("outbound-nat", 2)]
                    .iter()
                    .all(|(check, n)| {
                        text.contains(&format!("pano_eks_verify_checks{{firewall=\"{fw}\",check=\"{check}\",result=\"ok\"}} {n}\n"))
                    })
            })
    };
    let start = Instant::now();
    let before = loop {
        let text = metrics.render();
        // Green, and nothing still running that would ask the firewalls more.
        if green(&text, 4) && gauge(&text, "pano_eks_converge_in_progress") == 0.0 && gauge(&text, "pano_eks_verify_in_progress") == 0.0 {
            break gauge(&text, "pano_eks_verify_last_timestamp_seconds");
        }
        assert!(start.elapsed() < WAIT, "four Services not verified green after {:?}:\n{text}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let kinds = ["op.test.nat-policy-match", "op.test.security-policy-match", "op.test.routing", "op.request.system"];
    let sent = || {
        let stats = sim.stats();
        kinds.map(|k| stats["requests"][k].as_u64().unwrap_or(0))
    };
    let sent_before = tokio::task::block_in_place(sent);
    let relabel = serde_json::json!({"metadata": {"labels": {"panw-tg-port": "8200"}}});
    api.patch("b", &PatchParams::default(), &Patch::Merge(&relabel)).await.unwrap();
    let e = engine(&sim).await;
    until(&e, "b's NAT rule on the new port", |o| {
        o.nat_rules.iter().any(|r| r.name == "demo.in.shop.default.b" && r.service.ends_with("8200"))
    })
    .await;
    let start = Instant::now();
    loop {
        let text = metrics.render();
        if gauge(&text, "pano_eks_verify_last_timestamp_seconds") > before
            && green(&text, 4)
            && gauge(&text, "pano_eks_verify_in_progress") == 0.0
        {
            break;
        }
        assert!(start.elapsed() < WAIT, "no green verification after the relabel after {:?}:\n{text}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent_after = tokio::task::block_in_place(sent);
    let delta: Vec<u64> = sent_after.iter().zip(&sent_before).map(|(a, b)| a - b).collect();
    assert_eq!(
        delta,
        [2, 2, 0, 2],
        "what the pass after the relabel asked ({kinds:?}), per firewall: b's NAT and security match, one FQDN table"
    );
    let _ = stop.send(());
    let _ = run.await;
}

/// The `pano_eks_*` names a PromQL expression reads.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("pano_eks_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every expression of the shipped dashboard and alerts, named by where it is (parsing both files).
fn shipped_queries() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/monitoring");
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("dashboard.json")).unwrap()).unwrap();
    let rules: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(dir.join("alerts.yaml")).unwrap()).unwrap();
    assert_eq!(rules["kind"], "PrometheusRule");
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            out.push((format!("dashboard panel {:?}", p["title"]), t["expr"].as_str().unwrap().to_string()));
        }
    }
    for g in rules["spec"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            out.push((format!("alert {}", r["alert"]), r["expr"].as_str().unwrap().to_string()));
        }
    }
    out
}

/// The names `unknown` finds in `queries` that `exported` lacks, or queries that read no metric.
fn unknown(queries: &[(String, String)], exported: &std::collections::BTreeSet<String>) -> Vec<String> {
    let mut bad = Vec::new();
    for (at, expr) in queries {
        let names = metric_names(expr);
        if names.is_empty() {
            bad.push(format!("{at}: reads no pano_eks_ metric: {expr}"));
        }
        bad.extend(names.into_iter().filter(|n| !exported.contains(n)).map(|n| format!("{at}: {n} is not exported")));
    }
    bad
}

/// GET /metrics as Prometheus does (plain HTTP on the metrics port).
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: sync\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alerts_query_only_metrics_a_running_sync_exports() {
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let ws = setup(engine(&sim).await, client.clone(), None, Arc::new(Mutex::new(Vec::new())));
    let addr = pano_eks::sync::metrics::serve("127.0.0.1:0".parse().unwrap(), ws.metrics.clone()).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(ws, async move {
        let _ = stop_rx.await;
    }));
    api.create(&PostParams::default(), &service("frontend", "82")).await.unwrap();
    publish_hostname(&api, "frontend", "internal-fe-1.elb.us-west-2.amazonaws.com").await;
    let e = engine(&sim).await;
    until(&e, "frontend's NAT rule", |o| has_rule(o, "frontend")).await;

    // Scrape the running sync once its converge is counted (the rule is written before the count).
    let start = Instant::now();
    let text = loop {
        let text = scrape(addr).await;
        if text.contains("state=\"protected\"} 1") {
            break text;
        }
        assert!(start.elapsed() < WAIT, "waited {:?} for the protected Service in /metrics:\n{text}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let exported: std::collections::BTreeSet<String> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_whitespace().next()).map(String::from).collect();
    assert!(exported.contains("pano_eks_services") && exported.contains("pano_eks_leader"), "{text}");

    let queries = shipped_queries();
    assert!(queries.len() >= 10, "the dashboard and alerts have their queries: {queries:?}");
    let bad = unknown(&queries, &exported);
    assert!(bad.is_empty(), "queries of metrics sync does not export:\n{}", bad.join("\n"));
    // The check itself can fail: a query of a name sync does not export is caught.
    let canary = [("canary".to_string(), "rate(pano_eks_push_failures_total[5m]) > 0".to_string())];
    assert_eq!(unknown(&canary, &exported), ["canary: pano_eks_push_failures_total is not exported"]);

    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run).await.expect("stops on shutdown").unwrap();
}

/// A labelled Service behind an internet-facing load balancer gets an `Exposed` Warning Event
/// naming the annotation (its objects are still written); re-annotated internal, it is
/// `Protected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internet_facing_service_is_told_exposed_then_protected_when_made_internal() {
    use k8s_openapi::api::events::v1::Event;
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(setup(engine(&sim).await, client.clone(), None, Arc::new(Mutex::new(Vec::new()))), async move {
        let _ = stop_rx.await;
    }));
    let e = engine(&sim).await;
    let scheme = "service.beta.kubernetes.io/aws-load-balancer-scheme";
    let mut svc = service("frontend", "82");
    svc.metadata.annotations = Some(
        [
            ("service.beta.kubernetes.io/aws-load-balancer-type".to_owned(), "external".to_owned()),
            (scheme.to_owned(), "internet-facing".to_owned()),
        ]
        .into(),
    );
    api.create(&PostParams::default(), &svc).await.unwrap();
    publish_hostname(&api, "frontend", "fe.elb.us-west-2.amazonaws.com").await;
    until(&e, "frontend's NAT rule written", |o| has_rule(o, "frontend")).await;

    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let event = |reason: &'static str| {
        let events = events.clone();
        async move {
            let start = Instant::now();
            loop {
                let list = events.list(&Default::default()).await.unwrap();
                if let Some(ev) = list.items.into_iter().find(|ev| {
                    ev.reason.as_deref() == Some(reason) && ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("frontend")
                }) {
                    break ev;
                }
                assert!(start.elapsed() < Duration::from_secs(20), "no {reason} event after {:?}", start.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let exposed = event("Exposed").await;
    assert_eq!(exposed.type_.as_deref(), Some("Warning"));
    let note = exposed.note.unwrap_or_default();
    assert!(note.contains("internet-facing") && note.contains(scheme), "{note}");

    let internal = serde_json::json!({"metadata": {"annotations": {scheme: "internal"}}});
    api.patch("frontend", &PatchParams::default(), &Patch::Merge(&internal)).await.unwrap();
    let protected = event("Protected").await;
    assert_eq!(protected.type_.as_deref(), Some("Normal"));
    let _ = stop.send(());
    let _ = run.await;
}

/// A push that does not end OK on a firewall is counted per target and firewall on /metrics
/// (`pano_eks_push_results_total{result!="OK"}`: what `PanoEksPushFailingOnFirewall` reads), also
/// though the converge itself fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_failing_on_a_firewall_is_counted_for_that_firewall() {
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(sim.ca()).unwrap()).unwrap()])
        .build()
        .unwrap();
    let fault = serde_json::json!({"fail_push_serial": "*", "fail_push_message": "injected: push refused"});
    assert!(http.post(format!("{}/_sim/faults", sim.url)).json(&fault).send().await.unwrap().status().is_success());
    let k = KubeSim::start("shop");
    let client = kube_client(&k).await;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let ws = setup(engine(&sim).await, client.clone(), None, Arc::new(Mutex::new(Vec::new())));
    let addr = pano_eks::sync::metrics::serve("127.0.0.1:0".parse().unwrap(), ws.metrics.clone()).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(watch::run(ws, async move {
        let _ = stop_rx.await;
    }));
    api.create(&PostParams::default(), &service("frontend", "82")).await.unwrap();
    publish_hostname(&api, "frontend", "internal-fe-1.elb.us-west-2.amazonaws.com").await;
    let start = Instant::now();
    let failed: Vec<String> = loop {
        let text = scrape(addr).await;
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("pano_eks_push_results_total{target=\"device-group/eks-dg\"") && l.contains("result=\"FAIL\""))
            .map(String::from)
            .collect();
        if !lines.is_empty() {
            break lines;
        }
        assert!(start.elapsed() < WAIT, "waited {:?} for a failed push per firewall in /metrics:\n{text}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // One series per firewall of the device group, each naming its serial.
    assert!(failed.len() >= 2 && failed.iter().all(|l| !l.contains("firewall=\"\"")), "{failed:?}");
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run).await.expect("stops on shutdown").unwrap();
}
