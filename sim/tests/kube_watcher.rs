//! kube-sim driven by kube-rs (over TLS, with the kubeconfig kube-sim writes): the pan-user
//! identity from the manifests lists and watches Services and is refused Secrets; the kube-rs
//! watcher survives dropped connections (resumes from its resourceVersion) and, once history is
//! compacted, gets 410 Gone, re-lists and continues. Also status and server-side-apply patches.

mod kube_support;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube_support::{ADMIN, KubeSim, manifests_dir};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.expect("config");
    kube::Client::try_from(cfg).expect("client")
}

/// Creates the manifests (the .yaml files, as `kubectl create -f manifests/identity/` would) with
/// typed kube-rs calls.
async fn create_manifests(c: &kube::Client) {
    let mut files: Vec<_> = std::fs::read_dir(manifests_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let pp = PostParams::default();
    for f in files {
        let v: Value = serde_saphyr::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let ns = v["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        match v["kind"].as_str().unwrap() {
            "Namespace" => drop(Api::<Namespace>::all(c.clone()).create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap()),
            "ServiceAccount" => {
                drop(Api::<ServiceAccount>::namespaced(c.clone(), &ns).create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap())
            }
            "ClusterRole" => drop(Api::<ClusterRole>::all(c.clone()).create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap()),
            "ClusterRoleBinding" => {
                drop(Api::<ClusterRoleBinding>::all(c.clone()).create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap())
            }
            "Secret" => drop(Api::<Secret>::namespaced(c.clone(), &ns).create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap()),
            "Role" => drop(Api::<Role>::namespaced(c.clone(), &ns).create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap()),
            "RoleBinding" => {
                drop(Api::<RoleBinding>::namespaced(c.clone(), &ns).create(&pp, &serde_json::from_value(v).unwrap()).await.unwrap())
            }
            k => panic!("unexpected kind {k} in manifests"),
        }
    }
}

/// A kubeconfig like the admin's but with pan-user's token from its token Secret.
async fn pan_user(sim: &KubeSim, admin: &kube::Client) -> kube::Client {
    let s = Api::<Secret>::namespaced(admin.clone(), "pano-eks").get("pan-user-token").await.unwrap();
    let token = String::from_utf8(s.data.unwrap()["token"].0.clone()).unwrap();
    let cfg = std::fs::read_to_string(sim.kubeconfig()).unwrap().replace(&format!("token: {ADMIN}"), &format!("token: {token}"));
    let p = sim.dir.join("pan-user.kubeconfig");
    std::fs::write(&p, cfg).unwrap();
    client(&p).await
}

async fn control(c: &kube::Client, what: &str) -> Value {
    let method = if what == "stats" { "GET" } else { "POST" };
    let req = hyper::Request::builder().method(method).uri(format!("/_sim/{what}")).body(Vec::new()).unwrap();
    serde_json::from_str(&c.request_text(req).await.unwrap()).unwrap()
}

fn svc(name: &str, labels: Value) -> Service {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}))
    .unwrap()
}

/// What the watcher reported, reduced to comparable strings.
fn describe(e: &watcher::Event<Service>) -> String {
    let name = |s: &Service| s.metadata.name.clone().unwrap_or_default();
    match e {
        watcher::Event::Init => "Init".into(),
        watcher::Event::InitApply(s) => format!("InitApply {}", name(s)),
        watcher::Event::InitDone => "InitDone".into(),
        watcher::Event::Apply(s) => format!("Apply {}", name(s)),
        watcher::Event::Delete(s) => format!("Delete {}", name(s)),
    }
}

/// Waits for an event equal to `want`, returning everything seen on the way.
async fn until(rx: &mut mpsc::UnboundedReceiver<String>, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(e) = rx.recv().await {
            seen.push(e.clone());
            if e == want {
                return;
            }
        }
    })
    .await;
    assert!(r.is_ok(), "timed out waiting for {want:?}; saw {seen:?}");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pan_user_watcher_survives_drops_and_relists_after_410() {
    let sim = KubeSim::start(&[]);
    let admin = client(&sim.kubeconfig()).await;
    create_manifests(&admin).await;
    let pan = pan_user(&sim, &admin).await;

    // RBAC: Services yes (list, watch), Secrets no.
    assert!(Api::<Service>::all(pan.clone()).list(&Default::default()).await.is_ok());
    let err = Api::<Secret>::namespaced(pan.clone(), "pano-eks").list(&Default::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err:?}");
    let err = Api::<Secret>::namespaced(pan.clone(), "pano-eks").get("pan-user-token").await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err:?}");
    let err = Api::<Service>::namespaced(pan.clone(), "default").create(&PostParams::default(), &svc("nope", json!({}))).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err:?}");

    // The watcher runs as pan-user, forwarding what it sees.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = watcher(Api::<Service>::all(pan.clone()), watcher::Config::default());
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            let text = match &ev {
                Ok(e) => describe(e),
                Err(e) => format!("Error {e}"),
            };
            if tx.send(text).is_err() {
                return;
            }
            if ev.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let initial = until(&mut rx, "InitDone").await;
    assert_eq!(initial, ["Init", "InitApply kubernetes", "InitDone"]);
    let services = Api::<Service>::namespaced(admin.clone(), "default");
    services.create(&PostParams::default(), &svc("a", json!({"panw-tg-port": "8080"}))).await.unwrap();
    until(&mut rx, "Apply a").await;
    let lists = |s: &Value| s["requests"]["list services"].as_u64().unwrap_or(0);
    let stats = control(&admin, "stats").await;
    assert_eq!(lists(&stats), 2, "our list + the watcher's initial list: {stats}");
    assert_eq!(stats["watches_open"], 1);

    // Kill the watch connection: the watcher resumes from its resourceVersion (no re-list)
    // and still sees a change made while it was disconnected.
    let dropped = control(&admin, "drop-watches").await;
    assert_eq!(dropped["dropped"], 1);
    services.create(&PostParams::default(), &svc("b", json!({}))).await.unwrap();
    let seen = until(&mut rx, "Apply b").await;
    assert!(!seen.contains(&"Init".to_string()), "no re-list after a plain drop: {seen:?}");
    let stats = control(&admin, "stats").await;
    assert_eq!(lists(&stats), 2, "{stats}");
    assert!(stats["watches_started"].as_u64().unwrap() >= 2, "{stats}");

    // Compact history, then drop: resuming answers 410 Gone, so the watcher re-lists.
    services.delete("a", &DeleteParams::default()).await.unwrap();
    until(&mut rx, "Delete a").await;
    control(&admin, "compact").await;
    services.create(&PostParams::default(), &svc("c", json!({}))).await.unwrap();
    until(&mut rx, "Apply c").await;
    control(&admin, "compact").await;
    control(&admin, "drop-watches").await;
    let seen = until(&mut rx, "InitDone").await;
    assert!(
        seen.iter().any(|e| e.starts_with("Error") && e.contains("too old resource version") && e.contains("Expired")),
        "410 surfaced: {seen:?}"
    );
    assert!(seen.contains(&"InitApply c".to_string()) && !seen.contains(&"InitApply a".to_string()), "{seen:?}");
    services.create(&PostParams::default(), &svc("d", json!({}))).await.unwrap();
    until(&mut rx, "Apply d").await;
    let stats = control(&admin, "stats").await;
    assert_eq!(lists(&stats), 3, "one re-list: {stats}");
    assert!(stats["gone_410"].as_u64().unwrap() >= 1, "{stats}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_ssa_and_selector_watch() {
    let sim = KubeSim::start(&[]);
    let admin = client(&sim.kubeconfig()).await;
    let services = Api::<Service>::namespaced(admin.clone(), "default");

    // A label-selected watch sees a Service leave the selection as a deletion.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = watcher(services.clone(), watcher::Config::default().labels("panw-tg-port"));
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(e)) = stream.next().await {
            if tx.send(describe(&e)).is_err() {
                return;
            }
        }
    });
    until(&mut rx, "InitDone").await;

    // Server-side apply creates, then merges.
    let ssa = PatchParams::apply("pano-eks-test");
    let applied = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"panw-tg-port": "8080"}},
                         "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 8080}]}});
    let s = services.patch("web", &ssa, &Patch::Apply(&applied)).await.unwrap();
    assert_eq!(s.spec.as_ref().unwrap().type_.as_deref(), Some("LoadBalancer"));
    until(&mut rx, "Apply web").await;

    // The AWS controller publishes the NLB hostname through the status subresource.
    let hostname = "k8s-default-web-abc.elb.us-east-1.amazonaws.com";
    let st = json!({"status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}});
    let s = services.patch_status("web", &PatchParams::default(), &Patch::Merge(&st)).await.unwrap();
    let ingress = |s: &Service| {
        s.status.as_ref().and_then(|x| x.load_balancer.as_ref()).and_then(|l| l.ingress.as_ref()).and_then(|i| i[0].hostname.clone())
    };
    assert_eq!(ingress(&s).as_deref(), Some(hostname));
    // An ordinary update cannot change status; a status update cannot change spec.
    let mut changed = s.clone();
    changed.status.as_mut().unwrap().load_balancer.as_mut().unwrap().ingress = None;
    changed.spec.as_mut().unwrap().session_affinity = Some("ClientIP".into());
    let s = services.replace("web", &PostParams::default(), &changed).await.unwrap();
    assert_eq!(ingress(&s).as_deref(), Some(hostname));
    assert_eq!(s.spec.as_ref().unwrap().session_affinity.as_deref(), Some("ClientIP"));
    let mut changed = s.clone();
    changed.spec.as_mut().unwrap().session_affinity = Some("None".into());
    let s = services.replace_status("web", &PostParams::default(), &changed).await.unwrap();
    assert_eq!(s.spec.as_ref().unwrap().session_affinity.as_deref(), Some("ClientIP"));

    // Stale resourceVersion → 409.
    let mut stale = s.clone();
    services.patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {"x": "1"}}}))).await.unwrap();
    stale.metadata.annotations = Some([("y".to_string(), "2".to_string())].into());
    let err = services.replace("web", &PostParams::default(), &stale).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"), "{err:?}");

    // Removing the label turns into a deletion for the selector watch.
    services
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"metadata": {"labels": {"panw-tg-port": null}}})))
        .await
        .unwrap();
    until(&mut rx, "Delete web").await;
    task.abort();
}
