//! The runtime image, run the way a pod runs it (issue 17). Containers cannot be started here
//! (setrlimit is refused), so: `scripts/build-image` assembles the image from this test build's
//! binary (the debug build, so CI needs no second, release build) with buildah, in a private
//! storage folder; each "pod" is a working container of that image whose root filesystem
//! (`buildah mount`) runs the image's entrypoint with the Deployment's args under `chroot`, in a
//! mount namespace of its own: the root read-only, the service-account token, CA and namespace
//! at /var/run/secrets/kubernetes.io/serviceaccount/, the config folder as the ConfigMap mounts
//! it, the Panorama key in the environment as the Secret gives it, KUBERNETES_SERVICE_HOST/PORT
//! at kube-sim (TLS, its CA), uid 65532 with no capabilities and no_new_privs. Two such pods
//! elect one leader, which protects a labelled Service in panorama-sim; killed, the other takes
//! over. The pod spec (args, user, read-only root, privilege escalation) is read from
//! manifests/in-cluster/sync-deployment.yaml, so the test runs what the Deployment says.
//!
//! Needs root, buildah, unshare, setpriv, chroot, mount and ldd: with PANO_EKS_REQUIRE_TOOLS=1
//! (scripts/test) a missing one fails the test by name; otherwise it says it skipped.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Container, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use pano_eks::kube::ClusterAccess;
use pano_eks::secret::Secret;
use support::aws_world::KubeSim;
use support::{ADMIN, PASSWORD, Sim, TestConfig, repo_root};

/// The image under test (a private buildah storage: nothing else sees it).
const IMAGE: &str = "localhost/pano-eks:in-cluster-test";
/// Bound of each wait: a failure detector (an idle machine needs about a second per step).
const WAIT: Duration = Duration::from_secs(60);
/// The Lease `sync --watch --leader-elect` holds for 15 s (src/commands/panorama.rs).
const LEASE: Duration = Duration::from_secs(15);
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const AWS_FACTS: &str = r#"{"clusters": [{"name": "shop", "subnets": [{"id": "subnet-1", "cidr": "192.168.110.0/24", "az": "us-west-2a"}]}],
  "firewalls": [{"id": "i-a", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}]}"#;

/// The host tools a pod-like run needs.
struct Tools {
    buildah: PathBuf,
    unshare: PathBuf,
    setpriv: PathBuf,
    chroot: PathBuf,
    mount: PathBuf,
    ldd: PathBuf,
}

fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The tools, or why the test cannot run: a failure under PANO_EKS_REQUIRE_TOOLS=1, else a skip.
fn tools_or_skip(test: &str) -> Option<Tools> {
    let mut missing = Vec::new();
    let uid0 = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false);
    if !uid0 {
        missing.push("root (chroot, mount namespaces and buildah's storage need it)".to_string());
    }
    let mut get = |tool: &str, package: &str| {
        let p = find(tool);
        if p.is_none() {
            missing.push(format!("{tool} (Debian package {package})"));
        }
        p.unwrap_or_default()
    };
    let tools = Tools {
        buildah: get("buildah", "buildah"),
        unshare: get("unshare", "util-linux"),
        setpriv: get("setpriv", "util-linux"),
        chroot: get("chroot", "coreutils"),
        mount: get("mount", "mount"),
        ldd: get("ldd", "libc-bin"),
    };
    if missing.is_empty() {
        // Unprivileged inside a container: no mount namespace.
        let ok = Command::new(&tools.unshare).args(["--mount", "--propagation", "private", "true"]).status().is_ok_and(|s| s.success());
        if !ok {
            missing.push("a mount namespace (`unshare --mount` was refused: unprivileged?)".to_string());
        }
    }
    if missing.is_empty() {
        return Some(tools);
    }
    let why = format!("{test}: missing {}", missing.join(", "));
    assert!(std::env::var("PANO_EKS_REQUIRE_TOOLS").as_deref() != Ok("1"), "{why} (PANO_EKS_REQUIRE_TOOLS=1)");
    eprintln!("SKIP {why}");
    None
}

/// buildah over a private storage folder; removes its containers and images when dropped.
struct Buildah {
    bin: PathBuf,
    storage: tempfile::TempDir,
    /// `vfs` when overlay mounts fail here (STORAGE_DRIVER, which buildah reads).
    driver: Option<&'static str>,
}

impl Buildah {
    fn new(bin: &Path) -> Buildah {
        let mut b = Buildah { bin: bin.to_path_buf(), storage: tempfile::tempdir().unwrap(), driver: None };
        if b.try_run(&["from", "--name", "probe", "scratch"]).and_then(|_| b.try_run(&["mount", "probe"])).is_err() {
            eprintln!("buildah: overlay storage does not work here; using vfs");
            let _ = b.try_run(&["rm", "--all"]);
            b.driver = Some("vfs");
        }
        let _ = b.try_run(&["rm", "--all"]);
        b
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.storage.path().join("root")).arg("--runroot").arg(self.storage.path().join("run"));
        if let Some(d) = self.driver {
            c.env("STORAGE_DRIVER", d);
        }
        c
    }

    fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = self.command().args(args).output().map_err(|e| format!("buildah: {e}"))?;
        if !out.status.success() {
            return Err(format!("buildah {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_string())
    }

    fn run(&self, args: &[&str]) -> String {
        self.try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let _ = self.try_run(&["rm", "--all"]);
        let _ = self.try_run(&["rmi", "--all", "--force"]);
    }
}

/// What the Deployment's `sync` container says about how it runs.
struct PodSpec {
    args: Vec<String>,
    /// The folder the config (ConfigMap) is mounted at: the `--config` file's.
    config_dir: String,
    uid: i64,
    read_only_root: bool,
    no_new_privs: bool,
    /// Env names taken from the pod's own name (fieldRef metadata.name).
    pod_name_env: Vec<String>,
}

fn deployment() -> Deployment {
    let text = std::fs::read_to_string(repo_root().join("manifests/in-cluster/sync-deployment.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn sync_container(d: &Deployment) -> Container {
    let pod = d.spec.template.spec.as_ref().unwrap();
    pod.containers.iter().find(|c| c.name == "sync").cloned().expect("a container named sync")
}

fn pod_spec() -> PodSpec {
    let d = deployment();
    let pod_sc = d.spec.template.spec.as_ref().unwrap().security_context.clone().unwrap_or_default();
    let c = sync_container(&d);
    let sc = c.security_context.clone().unwrap_or_default();
    let args = c.args.clone().expect("the sync container's args");
    let config = args.iter().position(|a| a == "--config").map(|i| args[i + 1].clone()).expect("args name --config");
    let config_dir = Path::new(&config).parent().unwrap().display().to_string();
    let pod_name_env = c
        .env
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).is_some_and(|f| f.field_path == "metadata.name"))
        .map(|e| e.name)
        .collect();
    PodSpec {
        args,
        config_dir,
        uid: sc.run_as_user.or(pod_sc.run_as_user).expect("runAsUser"),
        read_only_root: sc.read_only_root_filesystem == Some(true),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        pod_name_env,
    }
}

/// Regular files and links under `root`, relative, sorted.
fn files_under(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.insert(e.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out
}

/// The libraries and loader `ldd` says `bin` needs, as absolute paths.
fn linked(ldd: &Path, bin: &Path) -> Vec<String> {
    let out = Command::new(ldd).arg(bin).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [_, "=>", p, ..] if p.starts_with('/') => Some(p.to_string()),
                [p, ..] if p.starts_with('/') => Some(p.to_string()),
                _ => None,
            }
        })
        .collect()
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (std::fs::File::open(a).unwrap(), std::fs::File::open(b).unwrap());
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return fb.read(&mut bb[..1]).unwrap() == 0;
        }
        if fb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// One pod: a working container of the image, its root mounted, the entrypoint running in it.
struct Pod {
    name: String,
    child: Child,
    log: PathBuf,
    metrics: SocketAddr,
}

/// What every pod mounts: the service-account folder and the config folder (host paths).
struct Volumes {
    service_account: PathBuf,
    config: PathBuf,
}

impl Pod {
    fn start(t: &Tools, b: &Buildah, spec: &PodSpec, name: &str, vols: &Volumes, env: &[(String, String)], logs: &Path) -> Pod {
        let ctr = b.run(&["from", "--name", name, IMAGE]);
        let root = PathBuf::from(b.run(&["mount", &ctr]));
        // Mount points, as the runtime makes them in the container's own layer.
        std::fs::create_dir_all(root.join(SA_DIR.trim_start_matches('/'))).unwrap();
        std::fs::create_dir_all(root.join(spec.config_dir.trim_start_matches('/'))).unwrap();
        let inspect: serde_json::Value = serde_json::from_str(&b.run(&["inspect", "--type", "image", IMAGE])).unwrap();
        let cfg = &inspect["OCIv1"]["config"];
        let entrypoint: Vec<String> = serde_json::from_value(cfg["Entrypoint"].clone()).unwrap();
        let image_env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap_or_default();

        // In a mount namespace of its own: the root bound read-only (readOnlyRootFilesystem), the
        // volumes read-only on their mount points, then chroot as the pod's user, no_new_privs
        // (allowPrivilegeEscalation: false). Leaving uid 0 clears every capability (drop ALL).
        let script = r#"set -e
mount=$1 setpriv=$2 chroot=$3 root=$4 sa=$5 cfg=$6 cfgdir=$7 uid=$8 ro=$9 nnp=${10}
shift 10
"$mount" --bind "$root" "$root"
"$mount" --bind -o ro "$sa" "$root/var/run/secrets/kubernetes.io/serviceaccount"
"$mount" --bind -o ro "$cfg" "$root$cfgdir"
if [ "$ro" = 1 ]; then "$mount" -o remount,bind,ro "$root"; fi
if [ "$nnp" = 1 ]; then exec "$setpriv" --no-new-privs "$chroot" --userspec="$uid:$uid" "$root" "$@"; fi
exec "$chroot" --userspec="$uid:$uid" "$root" "$@"
"#;
        let log = logs.join(format!("{name}.log"));
        let mut cmd = Command::new(&t.unshare);
        cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "pod"])
            .arg(&t.mount)
            .arg(&t.setpriv)
            .arg(&t.chroot)
            .arg(&root)
            .arg(&vols.service_account)
            .arg(&vols.config)
            .arg(&spec.config_dir)
            .arg(spec.uid.to_string())
            .arg(if spec.read_only_root { "1" } else { "0" })
            .arg(if spec.no_new_privs { "1" } else { "0" })
            .args(&entrypoint)
            .args(&spec.args)
            // No AWS here: the subnets and firewalls discovery would read come from a file.
            .arg("--facts")
            .arg(format!("{}/facts.json", spec.config_dir))
            // The container's environment only: the image's, the runtime's, the pod's.
            .env_clear()
            .envs(image_env.iter().filter_map(|kv| kv.split_once('=')))
            .env("HOSTNAME", name)
            .envs(spec.pod_name_env.iter().map(|n| (n.as_str(), name)))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(logs.join(format!("{name}.stdout"))).unwrap())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("unshare starts");
        // "metrics on http://ADDR/metrics" on stderr once it listens.
        let start = Instant::now();
        let metrics = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(|l| l.strip_prefix("metrics on http://")?.strip_suffix("/metrics")) {
                break addr.parse().unwrap();
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!("pod {name} exited ({st}) before serving metrics:\n{text}");
            }
            assert!(start.elapsed() < WAIT, "pod {name} did not serve metrics within {:?}:\n{text}", start.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        };
        Pod { name: name.to_string(), child, log, metrics }
    }

    fn get(&self, path: &str) -> (String, String) {
        http_get(self.metrics, path)
    }

    fn metric(&self, line_start: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        body.lines().find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.trim().parse().ok())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it as the kubelet does (SIGTERM) and waits (bounded) for the exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let st = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(st.success());
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                eprintln!("pod {} stopped {:?} after SIGTERM", self.name, start.elapsed());
                return st;
            }
            assert!(start.elapsed() < WAIT, "pod {} still running {:?} after SIGTERM:\n{}", self.name, start.elapsed(), self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The running process as the kernel sees it: (uid, effective capabilities, no_new_privs).
    fn credentials(&self) -> (String, String, String) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).unwrap_or_default().trim().to_string();
        (field("Uid:"), field("CapEff:"), field("NoNewPrivs:"))
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET, as a kubelet probe or Prometheus makes it: (status line, body).
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // One write: the responder answers after its first read and closes, so a request split over
    // several writes (as `write!` may do) can meet a closed socket.
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: pod\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

fn until(what: &str, bound: Duration, mut pred: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !pred() {
        assert!(start.elapsed() < bound, "waited {:?} for: {what}", start.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

fn service(name: &str, port: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"panw-tg-port": port},
                     "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}
    }))
    .unwrap()
}

/// What the kubelet and the ConfigMap/Secret give a pod in the cluster kube-sim plays.
struct Cluster {
    rt: tokio::runtime::Runtime,
    admin: kube::Client,
}

impl Cluster {
    fn connect(k: &KubeSim) -> Cluster {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let access =
            ClusterAccess { endpoint: k.url.clone(), ca_pem: Some(std::fs::read(&k.ca).unwrap()), token: Secret::new("kube-sim-admin") };
        let admin = rt.block_on(pano_eks::kube::client(&access)).unwrap();
        Cluster { rt, admin }
    }

    /// The pan-user identity as `pano-eks credentials` applies it, plus the leader-election Role
    /// and RoleBinding the in-cluster Deployment needs; returns a token for pan-user as the
    /// kubelet gets one for a projected service-account volume (TokenRequest).
    fn pan_user_token(&self, url: &str, out: &Path) -> String {
        use pano_eks::render::manifests::{MANIFESTS, NAMESPACE, SERVICE_ACCOUNT};
        self.rt.block_on(async {
            pano_eks::kube::apply_pan_user(&self.admin, url, out, WAIT).await.unwrap();
            for (file, yaml) in MANIFESTS.iter().filter(|(f, _)| f.contains("leader-election")) {
                let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
                match v["kind"].as_str() {
                    Some("Role") => {
                        let r: Role = serde_json::from_value(v).unwrap();
                        Api::<Role>::namespaced(self.admin.clone(), NAMESPACE).create(&PostParams::default(), &r).await.unwrap();
                    }
                    Some("RoleBinding") => {
                        let r: RoleBinding = serde_json::from_value(v).unwrap();
                        Api::<RoleBinding>::namespaced(self.admin.clone(), NAMESPACE).create(&PostParams::default(), &r).await.unwrap();
                    }
                    other => panic!("{file}: unexpected kind {other:?}"),
                }
            }
            let req = serde_json::from_value(serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 3600}})).unwrap();
            let tr = Api::<ServiceAccount>::namespaced(self.admin.clone(), NAMESPACE)
                .create_token_request(SERVICE_ACCOUNT, &PostParams::default(), &req)
                .await
                .unwrap();
            tr.status.and_then(|s| s.token).expect("TokenRequest answers a token")
        })
    }

    fn lease_holder(&self, name: &str) -> Option<String> {
        let api: Api<Lease> = Api::namespaced(self.admin.clone(), pano_eks::render::manifests::NAMESPACE);
        self.rt.block_on(api.get_opt(name)).unwrap()?.spec?.holder_identity
    }

    /// A labelled Service whose load balancer got a hostname (as the AWS controller publishes it).
    fn labelled_service(&self, name: &str, port: &str) {
        let api: Api<Service> = Api::namespaced(self.admin.clone(), "default");
        self.rt.block_on(async {
            api.create(&PostParams::default(), &service(name, port)).await.unwrap();
            let host = format!("internal-{name}.elb.us-west-2.amazonaws.com");
            let status = serde_json::json!({"status": {"loadBalancer": {"ingress": [{"hostname": host}]}}});
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
        });
    }

    /// The `Protected` Event on a Service, if one was recorded: who reported it.
    fn protected_reported_by(&self, svc: &str) -> Option<String> {
        let api: Api<Event> = Api::namespaced(self.admin.clone(), "default");
        let list = self.rt.block_on(api.list(&Default::default())).unwrap();
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Protected") && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(svc))
            .map(|e| e.reporting_instance.unwrap_or_default())
    }
}

fn keygen(sim: &Sim) -> String {
    let cert = reqwest::Certificate::from_pem(&std::fs::read(sim.ca()).unwrap()).unwrap();
    let http = reqwest::blocking::Client::builder().tls_certs_only([cert]).build().unwrap();
    let xml = http
        .post(format!("{}/api/", sim.url))
        .form(&[("type", "keygen"), ("user", ADMIN), ("password", PASSWORD)])
        .send()
        .unwrap()
        .text()
        .unwrap();
    xml.split("<key>").nth(1).and_then(|k| k.split("</key>").next()).expect("a key").to_string()
}

fn write_file(path: &Path, text: &str, mode: u32, uid: Option<u32>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    if let Some(uid) = uid {
        std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    }
}

fn nat_rule(svc: &str) -> String {
    format!("demo.in.shop.default.{svc}")
}

#[test]
fn the_image_run_as_two_pods_elects_one_leader_that_protects_a_labelled_service() {
    let Some(t) = tools_or_skip("the_image_run_as_two_pods_elects_one_leader_that_protects_a_labelled_service") else { return };
    let work = tempfile::tempdir().unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_pano-eks"));

    // The image, from this build's binary.
    let b = Buildah::new(&t.buildah);
    let started = Instant::now();
    let mut build = Command::new(repo_root().join("scripts/build-image"));
    build.arg("--binary").arg(&bin).args(["--tag", IMAGE, "--storage"]).arg(b.storage.path());
    if let Some(d) = b.driver {
        build.env("STORAGE_DRIVER", d);
    }
    let out = build.output().unwrap();
    assert!(out.status.success(), "scripts/build-image failed:\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("scripts/build-image took {:?}", started.elapsed());

    // Its metadata: the Deployment's user, the entrypoint, the binary's own revision.
    let inspect: serde_json::Value = serde_json::from_str(&b.run(&["inspect", "--type", "image", IMAGE])).unwrap();
    let cfg = &inspect["OCIv1"]["config"];
    let spec = pod_spec();
    assert_eq!(cfg["User"], format!("{0}:{0}", spec.uid), "{cfg}");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/usr/local/bin/pano-eks"]), "{cfg}");
    let version = String::from_utf8(Command::new(&bin).arg("--version").output().unwrap().stdout).unwrap();
    let rev = version.trim().rsplit_once("(git ").and_then(|(_, r)| r.strip_suffix(')')).expect("--version names the revision");
    assert_eq!(cfg["Labels"]["org.opencontainers.image.revision"], rev, "{cfg}");
    assert_eq!(cfg["Labels"]["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"), "{cfg}");

    // Its content, nothing else: the binary, what it links, CA certificates, passwd and group.
    let probe = b.run(&["from", "--name", "content", IMAGE]);
    let root = PathBuf::from(b.run(&["mount", &probe]));
    let mut want: BTreeSet<String> =
        ["usr/local/bin/pano-eks", "etc/passwd", "etc/group", "etc/ssl/certs/ca-certificates.crt"].into_iter().map(String::from).collect();
    want.extend(linked(&t.ldd, &bin).iter().map(|p| p.trim_start_matches('/').to_string()));
    assert_eq!(files_under(&root), want);
    assert!(same_bytes(&bin, &root.join("usr/local/bin/pano-eks")), "the image holds the binary it was built from");
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.lines().any(|l| l.split(':').nth(2) == Some(&spec.uid.to_string())), "{passwd}");
    b.run(&["rm", &probe]);

    // The world: panorama-sim, kube-sim with pan-user and its leader-election rights.
    let sim = Sim::start(&["--job-step-ms", "20"]);
    let k = KubeSim::start("shop");
    let cluster = Cluster::connect(&k);
    let token = cluster.pan_user_token(&k.url, &work.path().join("credentials"));
    let api_key = keygen(&sim);

    // The volumes: the projected service-account token (0600, owned by the pod's user, as the
    // kubelet writes it with runAsUser), and the ConfigMap's files.
    let vols = Volumes { service_account: work.path().join("sa"), config: work.path().join("config") };
    std::fs::create_dir_all(&vols.service_account).unwrap();
    std::fs::create_dir_all(&vols.config).unwrap();
    let uid = u32::try_from(spec.uid).unwrap();
    write_file(&vols.service_account.join("token"), &token, 0o600, Some(uid));
    write_file(&vols.service_account.join("ca.crt"), &std::fs::read_to_string(&k.ca).unwrap(), 0o644, None);
    write_file(&vols.service_account.join("namespace"), pano_eks::render::manifests::NAMESPACE, 0o644, None);
    let config = TestConfig {
        panorama_url: &sim.url,
        panorama_ca: "panorama-ca.pem",
        clusters: "[[clusters]]\nname = \"shop\"\nin_cluster = true\nsubnets = [\"192.168.110.0/24\", \"192.168.111.0/24\"]\n",
        // Each pod prints the port it got (both share the host's network here, unlike pods).
        extra_sync: "metrics_addr = \"127.0.0.1:0\"\ndebounce = \"200ms\"\n",
        ..TestConfig::default()
    }
    .text();
    let password_line = "password_env = \"PANO_EKS_TEST_PANORAMA_PASSWORD\"";
    assert!(config.contains(password_line));
    let config = config.replace(password_line, "api_key_env = \"PANORAMA_API_KEY\"");
    write_file(&vols.config.join("pano-eks.toml"), &config, 0o644, None);
    write_file(&vols.config.join("panorama-ca.pem"), &std::fs::read_to_string(sim.ca()).unwrap(), 0o644, None);
    write_file(&vols.config.join("facts.json"), AWS_FACTS, 0o644, None);
    // No authcodes file: sync never reads it (config::LoadOptions::runtime), and licence codes have
    // no place in a pod's ConfigMap.

    // KUBERNETES_SERVICE_HOST/PORT as the kubelet sets them: an IP address, so no DNS is needed.
    let hostport = k.url.strip_prefix("https://").unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    let env = vec![
        ("KUBERNETES_SERVICE_HOST".to_string(), host.to_string()),
        ("KUBERNETES_SERVICE_PORT".to_string(), port.to_string()),
        ("PANORAMA_API_KEY".to_string(), api_key.clone()),
    ];
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut pods = vec![
        Pod::start(&t, &b, &spec, "pano-eks-sync-a", &vols, &env, &logs),
        Pod::start(&t, &b, &spec, "pano-eks-sync-b", &vols, &env, &logs),
    ];

    // Both run as the Deployment says, and both are ready once their watch has synced.
    for p in &pods {
        let (uids, caps, nnp) = p.credentials();
        assert!(uids.split_whitespace().all(|u| u == spec.uid.to_string()), "{}: uids {uids}", p.name);
        assert_eq!(caps, "0000000000000000", "{}: no capabilities", p.name);
        assert_eq!(nnp, "1", "{}: no_new_privs", p.name);
        assert!(p.get("/healthz").0.contains(" 200 "), "{}", p.name);
        until(&format!("{} ready", p.name), WAIT, || p.get("/readyz").0.contains(" 200 "));
    }

    // One leader: the Lease names one of the two.
    let lease = "pano-eks-sync-demo";
    until("a Lease holder", WAIT, || cluster.lease_holder(lease).is_some());
    let holder = cluster.lease_holder(lease).unwrap();
    let (li, fi) = match holder.as_str() {
        "pano-eks-sync-a" => (0, 1),
        "pano-eks-sync-b" => (1, 0),
        other => panic!("the Lease is held by {other:?}, not one of the pods"),
    };

    // A labelled Service becomes protected: committed in Panorama, written by the leader only.
    sim.reset_writes();
    cluster.labelled_service("frontend", "82");
    until("frontend's NAT rule committed", WAIT, || sim.config_xml("running").contains(&nat_rule("frontend")));
    let writes = sim.writes();
    assert!(!writes.is_empty());
    for w in &writes {
        let xpath = w["xpath"].as_str().unwrap();
        assert_eq!(w["admin"], ADMIN, "{w}");
        assert_eq!(w["refused"], false, "{w}");
        assert!(
            xpath.contains("/device-group/entry[@name='eks-dg']/") || xpath.contains("/template/entry[@name='eks-template']/"),
            "writes only in our device group and template: {w}"
        );
    }
    let rule_xpath = format!("/nat/rules/entry[@name='{}']", nat_rule("frontend"));
    assert!(writes.iter().any(|w| w["xpath"].as_str().unwrap().ends_with(&rule_xpath)), "the NAT rule on its own xpath: {writes:?}");
    until("the leader reports frontend protected", WAIT, || {
        cluster.protected_reported_by("frontend").is_some()
            && pods[li].metric("pano_eks_services{cluster=\"shop\",state=\"protected\"}") == Some(1.0)
    });
    assert_eq!(cluster.protected_reported_by("frontend").as_deref(), Some(holder.as_str()), "the Event names the leader pod");
    assert_eq!(pods[li].metric("pano_eks_leader"), Some(1.0));
    assert_eq!(pods[fi].metric("pano_eks_leader"), Some(0.0));
    assert_eq!(pods[fi].metric("pano_eks_reconciles_total"), Some(0.0), "the follower never converged");

    // The leader's pod goes (SIGTERM, as on a rollout or a drain): it gives the Lease up on its
    // way out, so the other takes it at its next round (≤ lease/3) rather than after expiry.
    let st = pods[li].terminate();
    assert!(st.success(), "{}: exit {st} after SIGTERM:\n{}", pods[li].name, pods[li].log_text());
    let follower = pods[fi].name.clone();
    let after_exit = cluster.lease_holder(lease);
    assert!(
        after_exit.is_none() || after_exit.as_deref() == Some(follower.as_str()),
        "the stopped leader still holds the Lease: {after_exit:?}"
    );
    // A Service created in the hand-over: the follower saw it but did not write; once it leads
    // it converges without waiting for another change (or the 5-minute resync).
    cluster.labelled_service("cart", "83");
    let in_gap = cluster.lease_holder(lease).is_none();
    let failover = until("the other pod takes the Lease", LEASE * 5, || cluster.lease_holder(lease).as_deref() == Some(follower.as_str()));
    eprintln!("failover took {failover:?} after the leader stopped (lease {LEASE:?}); cart created with no leader: {in_gap}");
    until("cart's NAT rule committed by the new leader", WAIT, || sim.config_xml("running").contains(&nat_rule("cart")));
    until("the new leader reports cart protected", WAIT, || cluster.protected_reported_by("cart").is_some());
    assert_eq!(cluster.protected_reported_by("cart").as_deref(), Some(follower.as_str()));
    assert_eq!(pods[fi].metric("pano_eks_leader"), Some(1.0));

    let st = pods[fi].terminate();
    assert!(st.success(), "{}: exit {st} after SIGTERM:\n{}", pods[fi].name, pods[fi].log_text());
    // No secret in what the pods printed.
    for p in &pods {
        let text = p.log_text() + &std::fs::read_to_string(logs.join(format!("{}.stdout", p.name))).unwrap();
        assert!(!text.contains(&api_key), "{}: the Panorama key is in its log", p.name);
        assert!(!text.contains(&token), "{}: the service-account token is in its log", p.name);
    }
    drop(pods);
}

/// The Containerfile builds what scripts/build-image assembles, and the Deployment's container
/// matches the image (its user, entrypoint) and a restricted pod: no root, read-only root fs, no
/// privilege escalation, no capabilities, RuntimeDefault seccomp, resources, probes on /readyz
/// and /healthz on the metrics port. Needs no tools.
#[test]
fn the_containerfile_and_the_deployment_match_the_image_build_image_makes() {
    let cf = std::fs::read_to_string(repo_root().join("Containerfile")).unwrap();
    let script = std::fs::read_to_string(repo_root().join("scripts/build-image")).unwrap();
    let froms: Vec<&str> = cf.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage: {froms:?}");
    let builder = froms[0].split_whitespace().nth(1).unwrap();
    let tag = builder.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    assert!(tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()), "the builder image is pinned: {builder}");
    assert_eq!(froms[1], "FROM scratch", "the runtime starts empty, as build-image's does");
    assert!(cf.contains("scripts/image-rootfs target/release/pano-eks /rootfs"), "the same content script as build-image");
    assert!(script.contains("scripts/image-rootfs\" \"$bin\""), "build-image assembles with scripts/image-rootfs");
    assert!(cf.contains("COPY --from=build /rootfs/ /"));
    assert!(cf.lines().any(|l| l == "USER 65532:65532") && script.contains("--user 65532:65532"));
    let entry = "[\"/usr/local/bin/pano-eks\"]";
    assert!(cf.contains(&format!("ENTRYPOINT {entry}")) && script.contains(&format!("--entrypoint '{entry}'")));
    assert!(cf.contains(&format!("org.opencontainers.image.version=\"{}\"", env!("CARGO_PKG_VERSION"))), "version label");
    assert!(cf.contains("org.opencontainers.image.revision=\"${PANO_EKS_GIT_REV}\""));

    let d = deployment();
    let pod = d.spec.template.spec.clone().unwrap();
    let pod_sc = pod.security_context.clone().unwrap_or_default();
    let c = sync_container(&d);
    let image = c.image.clone().unwrap();
    let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), ""));
    assert_eq!(name.rsplit('/').next(), Some("pano-eks"), "{image}");
    assert!(tag.is_empty() || tag == env!("CARGO_PKG_VERSION"), "build-image's default tag is pano-eks:<version>: {image}");
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.run_as_user.or(pod_sc.run_as_user), Some(65532), "the image's user");
    assert_eq!(sc.run_as_non_root.or(pod_sc.run_as_non_root), Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.clone().unwrap().drop, Some(vec!["ALL".to_string()]));
    let seccomp = sc.seccomp_profile.clone().or(pod_sc.seccomp_profile.clone()).expect("a seccomp profile");
    assert_eq!(seccomp.type_, "RuntimeDefault");
    let res = c.resources.clone().unwrap();
    let requests = res.requests.unwrap();
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"), "{requests:?}");
    assert!(res.limits.unwrap().contains_key("memory"));
    let port = c.ports.clone().unwrap().into_iter().find(|p| p.name.as_deref() == Some("metrics")).expect("a port named metrics");
    assert_eq!(port.container_port, 9090, "sync.metrics_addr = \"0.0.0.0:9090\" (docs/image.md)");
    for (probe, path) in [(c.readiness_probe.clone(), "/readyz"), (c.liveness_probe.clone(), "/healthz")] {
        let get = probe.and_then(|p| p.http_get).unwrap_or_else(|| panic!("an httpGet probe on {path}"));
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("metrics".into()));
    }
}
