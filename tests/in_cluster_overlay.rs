//! In-cluster mode as a user deploys it: `pano-eks render` writes the overlay for the cluster with
//! `in_cluster = true`; the real kubectl's kustomize builds it into exactly the expected objects;
//! `kubectl apply -k` (client-side, again as a no-op, then server-side) against kube-sim creates
//! them, read back with kubectl. Skips without kubectl unless PANO_EKS_REQUIRE_TOOLS=1.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::TestConfig;

/// kubectl (`$KUBECTL` or PATH), or None with a skip message when tools are optional.
fn kubectl() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return Some(PathBuf::from(k));
    }
    let found = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("kubectl")).find(|p| p.is_file()));
    if found.is_none() {
        assert!(
            std::env::var("PANO_EKS_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "kubectl is required (PANO_EKS_REQUIRE_TOOLS=1) but not on PATH"
        );
        eprintln!("SKIP: kubectl not on PATH");
    }
    found
}

struct KubeSim {
    child: Child,
    kubeconfig: PathBuf,
}

impl KubeSim {
    fn start(dir: &Path) -> KubeSim {
        let kubeconfig = dir.join("kube-sim.kubeconfig");
        let mut child = Command::new(support::aws_world::kube_sim_binary())
            .args(["--listen", "127.0.0.1:0", "--admin-token", "kube-sim-admin", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kube-sim starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("kube-sim listening on https://"), "ready line: {line}");
        KubeSim { child, kubeconfig }
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stdout).unwrap()
}

/// `kubectl kustomize` output: one JSON value per YAML document.
fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n").map(|d| serde_saphyr::from_str::<Value>(d).unwrap_or_else(|e| panic!("{e}: {d}"))).collect()
}

fn id(o: &Value) -> (String, String, String) {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    (s("/kind"), s("/metadata/namespace"), s("/metadata/name"))
}

const PASSWORD_ENV: &str = "PANO_EKS_TEST_PANORAMA_PASSWORD";

/// Writes the config (in-cluster cluster `shop`, Panorama on 8443 with a CA file) and renders.
fn render(dir: &Path) -> (PathBuf, String) {
    std::fs::write(dir.join("ca.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
    let config = TestConfig {
        panorama_url: "https://10.20.0.5:8443",
        clusters: "[[clusters]]\nname = \"shop\"\nsubnets = [\"192.168.110.0/24\", \"192.168.111.0/24\"]\nin_cluster = true\n\
                   [[clusters]]\nname = \"blog\"\nsubnets = [\"192.168.120.0/24\", \"192.168.121.0/24\"]\n",
        extra_sync: "metrics_addr = \"0.0.0.0:9300\"\nimage = \"registry.example.com/team/pano-eks:0.1.0\"\npanorama_secret = \"panorama-creds\"\n",
        ..TestConfig::default()
    }
    .write(dir, "pano-eks.toml");
    let out = dir.join("rendered");
    run(Command::new(env!("CARGO_BIN_EXE_pano-eks")).arg("--config").arg(&config).args(["render", "--out"]).arg(&out));
    (out.join("in-cluster/shop"), std::fs::read_to_string(config).unwrap())
}

fn expected() -> BTreeSet<(String, String, String)> {
    [
        ("Namespace", "", "pano-eks"),
        ("ServiceAccount", "pano-eks", "pan-user"),
        ("ClusterRole", "", "cluster-read-all"),
        ("ClusterRoleBinding", "", "pan-user-cluster-read-all"),
        ("Role", "pano-eks", "pano-eks-leader-election"),
        ("RoleBinding", "pano-eks", "pano-eks-leader-election"),
        ("ConfigMap", "pano-eks", "pano-eks-config"),
        ("Deployment", "pano-eks", "pano-eks-sync"),
        ("PodDisruptionBudget", "pano-eks", "pano-eks-sync"),
        ("NetworkPolicy", "pano-eks", "pano-eks-sync"),
    ]
    .into_iter()
    .map(|(k, n, m)| (k.to_string(), n.to_string(), m.to_string()))
    .collect()
}

/// Checks the built objects say what the config asked for; returns the ConfigMap's generated name.
fn check_objects(objects: &[Value], config_text: &str) -> String {
    let find = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"));
    let cm = find("ConfigMap");
    let cm_name = cm["metadata"]["name"].as_str().unwrap().to_string();
    assert!(cm_name.starts_with("pano-eks-config-") && cm_name.len() > "pano-eks-config-".len(), "content-hashed name: {cm_name}");
    assert_eq!(cm["data"]["pano-eks.toml"], config_text, "the ConfigMap holds the user's config as written");
    assert!(cm["data"]["ca.pem"].as_str().unwrap().contains("BEGIN CERTIFICATE"), "the Panorama CA beside it");

    let d = find("Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "pan-user");
    assert_eq!(pod["volumes"][0]["configMap"]["name"], cm_name.as_str(), "the volume follows the generated name");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example.com/team/pano-eks:0.1.0");
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.windows(2).any(|w| w == ["--config", "/etc/pano-eks/pano-eks.toml"]) && args.contains(&"--leader-elect"), "{args:?}");
    let env = c["env"].as_array().unwrap();
    let password = env.iter().find(|e| e["name"] == PASSWORD_ENV).expect("the config's password variable is set");
    assert_eq!(password["valueFrom"]["secretKeyRef"], serde_json::json!({"name": "panorama-creds", "key": PASSWORD_ENV}));
    assert!(env.iter().any(|e| e["name"] == "POD_NAME"), "the base's env stays");
    assert_eq!(c["ports"], serde_json::json!([{"name": "metrics", "containerPort": 9300}]), "sync.metrics_addr's port");

    let np = find("NetworkPolicy");
    let egress_ports: BTreeSet<String> = np["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ports"].as_array().unwrap().iter().map(|p| format!("{}/{}", p["protocol"].as_str().unwrap(), p["port"])))
        .collect();
    let want: BTreeSet<String> = ["UDP/53", "TCP/53", "TCP/443", "TCP/80", "TCP/8443"].into_iter().map(String::from).collect();
    assert_eq!(egress_ports, want, "DNS, HTTPS, the Pod Identity agent, Panorama's own port: nothing else");
    assert_eq!(np["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    let ingress = &np["spec"]["ingress"][0];
    assert_eq!(ingress["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "monitoring");
    assert_eq!(ingress["ports"][0]["port"], "metrics");
    cm_name
}

#[test]
fn the_rendered_overlay_builds_and_applies_exactly_the_in_cluster_objects() {
    let Some(kubectl) = kubectl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (overlay, config_text) = render(dir.path());
    let mut files: Vec<String> = std::fs::read_dir(&overlay).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, ["ca.pem", "kustomization.yaml", "pano-eks.toml"]);

    // Built from the render folder alone: copy it elsewhere, away from this repository.
    let moved = tempfile::tempdir().unwrap();
    let copy = moved.path().join("out");
    run(Command::new("cp").arg("-r").arg(dir.path().join("rendered")).arg(&copy));
    let overlay = copy.join("in-cluster/shop");
    let built = run(Command::new(&kubectl).arg("kustomize").arg(&overlay));
    let objects = documents(&built);
    let mut got: BTreeSet<_> = objects.iter().map(id).collect();
    let cm_name = check_objects(&objects, &config_text);
    assert!(got.remove(&("ConfigMap".into(), "pano-eks".into(), cm_name.clone())));
    got.insert(("ConfigMap".into(), "pano-eks".into(), "pano-eks-config".into()));
    assert_eq!(got, expected(), "exactly these objects (no pan-user token Secret: the pods use their projected token)");

    let sim = KubeSim::start(dir.path());
    let kc = |args: &[&str]| {
        run(Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&sim.kubeconfig)
            .arg("--cache-dir")
            .arg(dir.path().join("kube-cache"))
            .args(args)
            .env_remove("KUBECTL_KUSTOMIZE")
            .env_remove("KUBECONFIG"))
    };
    let overlay_arg = overlay.to_str().unwrap();
    let applied = kc(&["apply", "-k", overlay_arg]);
    assert_eq!(applied.lines().filter(|l| l.ends_with(" created")).count(), 10, "{applied}");
    for line in [
        "namespace/pano-eks created",
        "deployment.apps/pano-eks-sync created",
        "poddisruptionbudget.policy/pano-eks-sync created",
        "networkpolicy.networking.k8s.io/pano-eks-sync created",
        &format!("configmap/{cm_name} created"),
        "clusterrole.rbac.authorization.k8s.io/cluster-read-all created",
        "rolebinding.rbac.authorization.k8s.io/pano-eks-leader-election created",
    ] {
        assert!(applied.lines().any(|l| l == line), "{line} in {applied}");
    }
    // A second apply changes nothing. kubectl itself reports the PDB `configured`: its
    // `selector` is `patchStrategy: replace`, so the client-side patch is never empty
    // (Azure/eno#246); the server finds nothing to change and keeps its resourceVersion.
    let pdb_version = |kc: &dyn Fn(&[&str]) -> String| {
        let v: Value = serde_json::from_str(&kc(&["get", "pdb", "-n", "pano-eks", "pano-eks-sync", "-o", "json"])).unwrap();
        v["metadata"]["resourceVersion"].as_str().unwrap().to_string()
    };
    let before = pdb_version(&kc);
    let again = kc(&["apply", "-k", overlay_arg]);
    for line in again.lines() {
        assert!(line.ends_with(" unchanged") || line == "poddisruptionbudget.policy/pano-eks-sync configured", "{again}");
    }
    assert_eq!(again.lines().count(), 10, "{again}");
    assert_eq!(pdb_version(&kc), before, "the PDB's no-op patch stored nothing");
    let ssa = kc(&["apply", "--server-side", "--field-manager", "pano-eks-test", "-k", overlay_arg]);
    assert_eq!(ssa.lines().filter(|l| l.ends_with(" serverside-applied")).count(), 10, "{ssa}");

    // Read back: the namespace's objects are exactly ours (plus what the API server itself puts
    // into every namespace), and each says what kustomize built.
    let listed: Value = serde_json::from_str(&kc(&[
        "get",
        "deployments,poddisruptionbudgets,networkpolicies,configmaps,roles,rolebindings,serviceaccounts,secrets",
        "-n",
        "pano-eks",
        "-o",
        "json",
    ]))
    .unwrap();
    let mut names: BTreeSet<_> = listed["items"].as_array().unwrap().iter().map(id).collect();
    for made_by_controllers in [("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")] {
        names.remove(&(made_by_controllers.0.into(), "pano-eks".into(), made_by_controllers.1.into()));
    }
    let want: BTreeSet<_> = expected()
        .into_iter()
        .filter(|(_, ns, _)| ns == "pano-eks")
        .map(|(k, ns, n)| if k == "ConfigMap" { (k, ns, cm_name.clone()) } else { (k, ns, n) })
        .collect();
    assert_eq!(names, want);
    for o in &objects {
        let (kind, ns, name) = id(o);
        let mut args = vec!["get", kind.as_str(), name.as_str(), "-o", "json"];
        if !ns.is_empty() {
            args.extend(["-n", ns.as_str()]);
        }
        let stored: Value = serde_json::from_str(&kc(&args)).unwrap();
        for field in ["spec", "data", "rules", "roleRef", "subjects"] {
            if let Some(want) = o.get(field) {
                assert_eq!(stored.get(field), Some(want), "{kind} {name}: {field} as applied");
            }
        }
    }
}
