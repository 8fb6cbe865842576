//! The AWS test world: moto_server with the pano-eks bridges (tests/moto/moto_pano.py) and
//! kube-sim, both on 127.0.0.1 free ports, stopped on drop. See docs/testing.md.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::repo_root;

fn venv() -> Option<PathBuf> {
    std::env::var_os("PANO_EKS_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/pano-eks/venv")))
        .filter(|v| v.join("bin/moto_server").exists())
}

/// `None` (test skipped) when moto is not installed, unless PANO_EKS_REQUIRE_TOOLS=1.
pub fn moto_available() -> bool {
    if venv().is_some() {
        return true;
    }
    assert!(std::env::var("PANO_EKS_REQUIRE_TOOLS").as_deref() != Ok("1"), "moto is required (scripts/setup-env)");
    eprintln!("skipped: moto not installed (run scripts/setup-env)");
    false
}

/// The date the EKS version bridge answers for (1.31 unsupported, 1.32/1.33 extended, 1.34/1.35 standard).
pub const MOTO_TODAY: &str = "2026-12-01";

pub struct Moto {
    child: Child,
    pub url: String,
    pub log: PathBuf,
    /// moto's request recorder file (`MOTO_RECORDER_FILEPATH`): every request after
    /// `start_recording`, one JSON object a line (headers, method, url, body).
    pub recording: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Moto {
    pub fn start() -> Moto {
        let venv = venv().expect("moto venv");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        let recording = dir.path().join("recording.jsonl");
        let port = free_port();
        let child = Command::new(venv.join("bin/python"))
            .arg(repo_root().join("tests/moto/moto_pano.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // The EKS calendar bridge's "today": fixed, so version verdicts do not age with the tests.
            .env("MOTO_PANO_TODAY", MOTO_TODAY)
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("moto starts");
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            // A failure detector (moto imports in ~2 s on an idle machine), not a performance check.
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "moto did not listen within {:?}: {}",
                start.elapsed(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, url, log, recording, _dir: dir }
    }

    /// Empties moto's recording and records every request from now on (moto's recorder:
    /// `/moto-api/recorder/reset-recording`, `/start-recording`).
    pub fn start_recording(&self) {
        pano_eks::panorama::client::install_crypto_provider();
        let http = reqwest::blocking::Client::new();
        for step in ["reset-recording", "start-recording"] {
            let r = http.post(format!("{}/moto-api/recorder/{step}", self.url)).send().unwrap();
            assert!(r.status().is_success(), "moto recorder {step}: {}", r.status());
        }
    }

    /// Stops recording and returns what was recorded, one JSON value a request.
    pub fn stop_recording(&self) -> Vec<serde_json::Value> {
        pano_eks::panorama::client::install_crypto_provider();
        let http = reqwest::blocking::Client::new();
        let r = http.post(format!("{}/moto-api/recorder/stop-recording", self.url)).send().unwrap();
        assert!(r.status().is_success(), "moto recorder stop: {}", r.status());
        let text = std::fs::read_to_string(&self.recording).unwrap_or_default();
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// An SDK configuration for this moto (no process environment involved).
    pub async fn aws(&self, region: &str) -> pano_eks::aws::Aws {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(&self.url)
            .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "test"))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .load()
            .await;
        pano_eks::aws::Aws::from_sdk(region, sdk)
    }

    /// Environment for a `pano-eks` child process talking to this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a moto test runs on: a current-thread runtime, moto, and an SDK client for one region.
pub struct MotoWorld {
    pub rt: tokio::runtime::Runtime,
    pub moto: Moto,
    pub aws: pano_eks::aws::Aws,
}

/// A fresh moto and a client for it in `region`; `None` (the test is skipped) when moto is not
/// installed, unless PANO_EKS_REQUIRE_TOOLS=1 (see `moto_available`).
pub fn moto_world(region: &str) -> Option<MotoWorld> {
    if !moto_available() {
        return None;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let moto = Moto::start();
    let aws = rt.block_on(moto.aws(region));
    Some(MotoWorld { rt, moto, aws })
}

impl MotoWorld {
    /// Makes key pair `key_name` and returns an AMI moto has: what `[firewalls]` and a cluster's
    /// nodes name.
    pub fn key_pair_and_ami(&self, key_name: &str) -> String {
        self.rt.block_on(async {
            self.aws.ec2.create_key_pair().key_name(key_name).send().await.unwrap();
            let images = self.aws.ec2.describe_images().send().await.unwrap();
            images.images().iter().find_map(|i| i.image_id().map(str::to_string)).expect("moto has AMIs")
        })
    }
}

/// The kube-sim binary: `KUBE_SIM_BIN`, else built on demand.
pub fn kube_sim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KUBE_SIM_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug/kube-sim");
    if !bin.exists() {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "pano-eks-sim", "--bin", "kube-sim"])
            .current_dir(repo_root())
            .status()
            .unwrap();
        assert!(st.success(), "building kube-sim failed");
    }
    bin
}

pub struct KubeSim {
    child: Child,
    pub url: String,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl KubeSim {
    /// Accepts EKS tokens for `cluster` (as admin).
    pub fn start(cluster: &str) -> KubeSim {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("kube-ca.pem");
        let mut child = Command::new(kube_sim_binary())
            .args(["--listen", "127.0.0.1:0", "--admin-token", "kube-sim-admin", "--accept-eks-tokens", cluster, "--tls-cert-out"])
            .arg(&ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kube-sim starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("https://127.0.0.1:"), "ready line: {line}");
        KubeSim { child, url, ca, _dir: dir }
    }
}

impl KubeSim {
    /// Stops the API server: the cluster can no longer be reached.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The core's plan and facts for some Services protected in cluster `shop` (name, port,
/// annotations): what the AWS side of a converge (fronts, egress) takes from the Panorama side.
pub fn protected_services(services: &[(&str, u16, &[(&str, &str)])]) -> (pano_eks_core::Plan, pano_eks_core::Facts) {
    use pano_eks_core::{ClusterFacts, Facts, Plan, ServiceFacts, ServiceState, ServiceStatus};
    let statuses = services
        .iter()
        .map(|(n, port, _)| ServiceStatus {
            cluster: "shop".into(),
            namespace: "default".into(),
            name: n.to_string(),
            port: Some(*port),
            state: ServiceState::Protected,
            reason: String::new(),
            nat_rule: Some(format!("{n}-{port}-inbound")),
            address: None,
            service_object: None,
            security_rule: None,
        })
        .collect();
    let facts = services
        .iter()
        .map(|(n, port, ann)| {
            let ann: std::collections::BTreeMap<&str, &str> = ann.iter().copied().collect();
            serde_json::from_value::<ServiceFacts>(serde_json::json!({
                "namespace": "default", "name": n, "type": "LoadBalancer", "created": "2026-01-01T00:00:00Z",
                "labels": {"panw-tg-port": port.to_string()}, "annotations": ann,
            }))
            .unwrap()
        })
        .collect();
    let plan = Plan {
        operations: vec![],
        device_group_changed: false,
        template_changed: false,
        services: statuses,
        clusters: vec![],
        problems: vec![],
    };
    let facts = Facts {
        clusters: vec![ClusterFacts { name: "shop".into(), subnets: vec![], services: facts }],
        firewalls: vec![],
        ..Default::default()
    };
    (plan, facts)
}
