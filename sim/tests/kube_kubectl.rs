//! kube-sim driven by the real kubectl (over TLS, with the kubeconfig kube-sim writes): the
//! commands the project's tests use — create -f manifests/, get -l … -o json, label, annotate,
//! apply, patch (incl. --subresource=status), replace, delete — and pan-user's RBAC.
//! Skips without kubectl unless PANO_EKS_REQUIRE_TOOLS=1.

mod kube_support;

use base64::Engine;
use kube_support::{KubeSim, kubectl, manifests_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Kc {
    bin: PathBuf,
    config: PathBuf,
    cache: PathBuf,
}

impl Kc {
    fn new(bin: &Path, sim: &KubeSim, config: PathBuf) -> Self {
        Self { bin: bin.to_path_buf(), config, cache: sim.dir.join(format!("cache-{}", rand_suffix())) }
    }
    /// Runs kubectl; returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.config)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("run kubectl");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "kubectl {args:?} failed: {err}{out}");
        out
    }
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl JSON")
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn write_service(dir: &Path, name: &str, labels: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{{labels}}}\nspec:\n  type: LoadBalancer\n  selector: {{app: {name}}}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
        ),
    )
    .unwrap();
    p
}

/// The pan-user token from the Secret the token controller filled.
fn pan_user_kubeconfig(admin: &Kc, sim: &KubeSim) -> PathBuf {
    let secret = admin.json(&["get", "secret", "-n", "pano-eks", "pan-user-token"]);
    let b64 = secret["data"]["token"].as_str().expect("token controller filled data.token");
    let token = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
    let ca = base64::engine::general_purpose::STANDARD.decode(secret["data"]["ca.crt"].as_str().unwrap()).unwrap();
    assert!(String::from_utf8_lossy(&ca).contains("BEGIN CERTIFICATE"));
    assert_eq!(secret["data"]["namespace"], base64::engine::general_purpose::STANDARD.encode("pano-eks"));
    let admin_cfg = std::fs::read_to_string(sim.kubeconfig()).unwrap();
    let cfg = admin_cfg.replace(&format!("token: {}", kube_support::ADMIN), &format!("token: {token}"));
    assert_ne!(cfg, admin_cfg);
    let p = sim.dir.join("pan-user.kubeconfig");
    std::fs::write(&p, cfg).unwrap();
    p
}

#[test]
fn kubectl_scenario() {
    let Some(bin) = kubectl() else { return };
    let sim = KubeSim::start(&[]);
    assert!(sim.url.starts_with("https://"));
    let k = Kc::new(&bin, &sim, sim.kubeconfig());

    // create -f manifests/ posts every object (discovery, openapi v3 field validation, POSTs).
    let out = k.ok(&["create", "-f", manifests_dir().to_str().unwrap()]);
    for what in [
        "namespace/pano-eks created",
        "serviceaccount/pan-user created",
        "clusterrole.rbac.authorization.k8s.io/cluster-read-all created",
        "clusterrolebinding.rbac.authorization.k8s.io/pan-user-cluster-read-all created",
        "secret/pan-user-token created",
    ] {
        assert!(out.contains(what), "{what} missing in {out}");
    }
    let (ok, _, err) = k.run(&["create", "-f", manifests_dir().to_str().unwrap()]);
    assert!(!ok && err.contains("AlreadyExists") || err.contains("already exists"), "{err}");

    // Services: create, select by label, label/annotate/unlabel.
    write_service(&sim.dir, "web", "panw-tg-port: \"8080\"");
    write_service(&sim.dir, "db", "tier: data");
    k.ok(&["create", "-f", sim.dir.join("web.yaml").to_str().unwrap(), "-f", sim.dir.join("db.yaml").to_str().unwrap()]);
    let list = k.json(&["get", "svc", "-l", "panw-tg-port"]);
    assert_eq!(list["kind"], "List");
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web"]);
    assert_eq!(list["items"][0]["spec"]["ports"][0]["protocol"], "TCP");
    assert!(list["items"][0]["spec"]["ports"][0]["nodePort"].as_u64().is_some_and(|p| (30000..32768).contains(&p)));

    k.ok(&["label", "svc", "db", "panw-tg-port=5432"]);
    k.ok(&["annotate", "svc", "db", "pano-eks/note=hello"]);
    let db = k.json(&["get", "svc", "db"]);
    assert_eq!(db["metadata"]["labels"]["panw-tg-port"], "5432");
    assert_eq!(db["metadata"]["annotations"]["pano-eks/note"], "hello");
    assert_eq!(k.json(&["get", "svc", "-l", "panw-tg-port"])["items"].as_array().unwrap().len(), 2);
    let (ok, _, err) = k.run(&["label", "svc", "db", "panw-tg-port=1"]);
    assert!(!ok && err.contains("already has a value"), "kubectl refuses relabel without --overwrite: {err}");
    k.ok(&["label", "svc", "db", "panw-tg-port=1", "--overwrite"]);
    k.ok(&["label", "svc", "db", "panw-tg-port-"]);
    k.ok(&["annotate", "svc", "db", "pano-eks/note-"]);
    let db = k.json(&["get", "svc", "db"]);
    assert!(db["metadata"]["labels"].get("panw-tg-port").is_none());
    assert!(db["metadata"]["annotations"].as_object().is_none_or(|a| a.is_empty()));
    assert_eq!(k.json(&["get", "svc", "-l", "panw-tg-port in (8080,1)"])["items"].as_array().unwrap().len(), 1);
    assert_eq!(k.json(&["get", "svc", "-A", "--field-selector", "metadata.name=web"])["items"].as_array().unwrap().len(), 1);
    // Human-readable output works too (client-side columns).
    assert!(k.ok(&["get", "svc"]).contains("web"));

    // Status subresource: the AWS load balancer controller's write. Spec writes cannot touch it.
    let nlb = "k8s-default-web-0123456789.elb.us-east-1.amazonaws.com";
    let status_patch = format!(r#"{{"status":{{"loadBalancer":{{"ingress":[{{"hostname":"{nlb}"}}]}}}}}}"#);
    if k.ok(&["patch", "--help"]).contains("--subresource") {
        k.ok(&["patch", "svc", "web", "--subresource=status", "--type=merge", "-p", &status_patch]);
    } else {
        // kubectl < 1.24 (Debian bookworm ships 1.20) has no --subresource: PUT the status.
        let mut web = k.json(&["get", "svc", "web"]);
        web["status"] = serde_json::from_str::<Value>(&status_patch).unwrap()["status"].clone();
        let p = sim.dir.join("web-status.json");
        std::fs::write(&p, web.to_string()).unwrap();
        k.ok(&["replace", "--raw", "/api/v1/namespaces/default/services/web/status", "-f", p.to_str().unwrap()]);
    }
    k.ok(&[
        "patch",
        "svc",
        "web",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"hostname":"evil"}]}},"spec":{"selector":{"app":"web2"}}}"#,
    ]);
    let web = k.json(&["get", "svc", "web"]);
    assert_eq!(web["status"]["loadBalancer"]["ingress"][0]["hostname"], nlb);
    assert_eq!(web["spec"]["selector"]["app"], "web2");

    // Optimistic concurrency: replace with a stale resourceVersion → 409 Conflict.
    let mut stale = web.clone();
    k.ok(&["annotate", "svc", "web", "bump=1"]);
    stale["metadata"]["annotations"] = serde_json::json!({"x": "y"});
    let p = sim.dir.join("stale.json");
    std::fs::write(&p, stale.to_string()).unwrap();
    let (ok, _, err) = k.run(&["replace", "-f", p.to_str().unwrap()]);
    assert!(!ok && err.contains("the object has been modified"), "{err}");

    // apply (client-side, strategic merge), twice; then server-side apply.
    let applied = write_service(&sim.dir, "api", "panw-tg-port: \"9090\"");
    assert!(k.ok(&["apply", "-f", applied.to_str().unwrap()]).contains("service/api created"));
    assert!(k.ok(&["apply", "-f", applied.to_str().unwrap()]).contains("service/api unchanged"));
    std::fs::write(&applied, std::fs::read_to_string(&applied).unwrap().replace("port: 80", "port: 81")).unwrap();
    assert!(k.ok(&["apply", "-f", applied.to_str().unwrap()]).contains("service/api configured"));
    let api = k.json(&["get", "svc", "api"]);
    assert_eq!(api["spec"]["ports"].as_array().unwrap().len(), 1, "strategic merge replaced port 80 by 81: {}", api["spec"]["ports"]);
    assert_eq!(api["spec"]["ports"][0]["port"], 81);
    assert!(k.ok(&["apply", "--server-side", "-f", applied.to_str().unwrap()]).contains("serverside-applied"));

    // Pagination: kubectl's --chunk-size follows `continue` tokens.
    let all = k.json(&["get", "svc", "-A", "--chunk-size=1"]);
    assert_eq!(all["items"].as_array().unwrap().len(), 4, "kubernetes, web, db, api");

    // pan-user: list/watch Services everywhere, nothing on Secrets.
    let pan = Kc::new(&bin, &sim, pan_user_kubeconfig(&k, &sim));
    assert_eq!(pan.json(&["get", "svc", "-A", "-l", "panw-tg-port"])["items"].as_array().unwrap().len(), 2);
    let (ok, _, err) = pan.run(&["get", "secrets", "-n", "pano-eks"]);
    assert!(
        !ok && err.contains("Forbidden") && err.contains(r#"cannot list resource "secrets" in API group "" in the namespace "pano-eks""#),
        "{err}"
    );
    let (ok, _, err) = pan.run(&["get", "secret", "pan-user-token", "-n", "pano-eks"]);
    assert!(!ok && err.contains("Forbidden"), "{err}");
    let (ok, _, err) = pan.run(&["label", "svc", "web", "x=y"]);
    assert!(!ok && err.contains(r#"cannot patch resource "services""#), "{err}");
    assert_eq!(pan.ok(&["auth", "can-i", "watch", "services"]).trim(), "yes");
    let (_, out, _) = pan.run(&["auth", "can-i", "get", "secrets", "-n", "pano-eks"]);
    assert_eq!(out.trim(), "no");

    // delete; deleting the Secret revokes the legacy token.
    assert!(k.ok(&["delete", "svc", "web", "db"]).contains("service \"db\" deleted"));
    let (ok, _, err) = k.run(&["get", "svc", "web"]);
    assert!(!ok && err.contains(r#"services "web" not found"#), "{err}");
    k.ok(&["delete", "secret", "pan-user-token", "-n", "pano-eks"]);
    let (ok, _, err) = pan.run(&["get", "svc"]);
    assert!(!ok && (err.contains("Unauthorized") || err.contains("must be logged in")), "{err}");
    // Deleting the namespace removes its content.
    k.ok(&["delete", "-f", manifests_dir().join("00-namespace.yaml").to_str().unwrap()]);
    assert!(k.json(&["get", "sa", "-n", "pano-eks"])["items"].as_array().unwrap().is_empty());
}

/// The kinds the in-cluster kustomize base adds (apps, policy, networking.k8s.io) are discovered
/// like a real API server's, and `kubectl apply -k` of the base (client-side, then server-side)
/// stores every object.
#[test]
fn kubectl_apply_k_of_the_in_cluster_base() {
    let Some(bin) = kubectl() else { return };
    let sim = KubeSim::start(&[]);
    let k = Kc::new(&bin, &sim, sim.kubeconfig());
    let base = manifests_dir().join("../in-cluster");
    let base = base.to_str().unwrap();

    let resources = k.ok(&["api-resources", "--no-headers"]);
    for (name, short, gv, namespaced, kind) in [
        ("deployments", "deploy", "apps/v1", "true", "Deployment"),
        ("poddisruptionbudgets", "pdb", "policy/v1", "true", "PodDisruptionBudget"),
        ("networkpolicies", "netpol", "networking.k8s.io/v1", "true", "NetworkPolicy"),
    ] {
        let row: Vec<&str> = resources
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {resources}"))
            .split_whitespace()
            .collect();
        assert_eq!(row, [name, short, gv, namespaced, kind]);
    }

    let out = k.ok(&["apply", "-k", base]);
    for what in [
        "namespace/pano-eks created",
        "serviceaccount/pan-user created",
        "deployment.apps/pano-eks-sync created",
        "poddisruptionbudget.policy/pano-eks-sync created",
        "networkpolicy.networking.k8s.io/pano-eks-sync created",
    ] {
        assert!(out.lines().any(|l| l == what), "{what} missing in {out}");
    }
    assert!(!out.contains("secret/"), "the base creates no token Secret: {out}");
    // The PDB reads `configured` from kubectl itself (its selector's patchStrategy is replace,
    // so the client-side patch is never empty: Azure/eno#246); the server stores nothing new.
    let rv = |k: &Kc| k.json(&["get", "pdb", "-n", "pano-eks", "pano-eks-sync"])["metadata"]["resourceVersion"].clone();
    let before = rv(&k);
    let again = k.ok(&["apply", "-k", base]);
    assert!(again.lines().all(|l| l.ends_with(" unchanged") || l == "poddisruptionbudget.policy/pano-eks-sync configured"), "{again}");
    assert_eq!(rv(&k), before);
    let ssa = k.ok(&["apply", "--server-side", "-k", base]);
    assert!(ssa.lines().all(|l| l.ends_with(" serverside-applied")), "{ssa}");

    let d = k.json(&["get", "deploy", "-n", "pano-eks", "pano-eks-sync"]);
    assert_eq!(d["spec"]["replicas"], 2);
    let pdb = k.json(&["get", "pdb", "-n", "pano-eks", "pano-eks-sync"]);
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    let np = k.json(&["get", "netpol", "-n", "pano-eks", "pano-eks-sync"]);
    assert_eq!(np["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    let all = k.ok(&["get", "all", "-n", "pano-eks", "-o", "name"]);
    assert!(all.lines().any(|l| l == "deployment.apps/pano-eks-sync"), "deployments are in category all: {all}");
}
