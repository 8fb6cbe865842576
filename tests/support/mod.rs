//! Test harness: starts the real `panorama-sim` binary on a free loopback port (HTTPS with its
//! own CA), writes a config for it, and reads its control endpoints.
#![allow(dead_code)]

pub mod aws_world;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use pano_eks::config::{self, LoadOptions};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

/// The panorama-sim binary: `PANORAMA_SIM_BIN`, else built on demand.
pub fn sim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PANORAMA_SIM_BIN") {
        return PathBuf::from(p);
    }
    let bin = target_dir().join("debug/panorama-sim");
    if !bin.exists() {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "pano-eks-sim", "--bin", "panorama-sim"])
            .current_dir(repo_root())
            .status()
            .unwrap();
        assert!(st.success(), "building panorama-sim failed");
    }
    bin
}

pub struct Sim {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

pub const ADMIN: &str = "pano-eks";
pub const PASSWORD: &str = "sim-password";

impl Sim {
    /// Two connected firewalls in device group `eks-dg` and template stack `eks-stack`.
    pub fn start(extra: &[&str]) -> Sim {
        Sim::spawn(&["--devices-in", "eks-dg,eks-stack"], extra)
    }

    /// A fresh Panorama: two connected firewalls that belong to no device group or stack, and
    /// no device group, template or stack.
    pub fn start_fresh(extra: &[&str]) -> Sim {
        Sim::spawn(&[], extra)
    }

    /// The firewalls of `devices_json` (`--devices-file`: a JSON array of `{"serial",
    /// "hostname", "ip", "connected"?, …}`) in device group `eks-dg` and stack `eks-stack`.
    pub fn start_with_devices(devices_json: &str, extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("devices.json");
        std::fs::write(&file, devices_json).unwrap();
        Sim::spawn_in(dir, &["--devices-file", &path_str(&file)], &["--devices-in", "eks-dg,eks-stack"], extra)
    }

    fn spawn(membership: &[&str], extra: &[&str]) -> Sim {
        Sim::spawn_in(tempfile::tempdir().unwrap(), &["--devices", "2"], membership, extra)
    }

    fn spawn_in(dir: tempfile::TempDir, devices: &[&str], membership: &[&str], extra: &[&str]) -> Sim {
        let ca = dir.path().join("ca.pem");
        let mut child = Command::new(sim_binary())
            .args(["--listen", "127.0.0.1:0", "--tls-cert-out"])
            .arg(&ca)
            .args(["--admin", &format!("{ADMIN}:{PASSWORD}"), "--admin", "other-admin:other"])
            .args(devices)
            // As PAN-OS does (9.1 API guide, "Get Your API Key"): a keygen ends the admin's
            // previous key, so every test also proves the product survives another keygen.
            .args(["--keygen-rotates", "true"])
            .args(membership)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("panorama-sim starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("https://127.0.0.1:"), "ready line: {line}");
        pano_eks::panorama::client::install_crypto_provider();
        Sim { child, url, dir }
    }

    /// A blocking client trusting the sim's CA, built per call: a stored one would panic when
    /// dropped inside an async test.
    fn http(&self) -> reqwest::blocking::Client {
        let cert = reqwest::Certificate::from_pem(&std::fs::read(self.ca()).unwrap()).unwrap();
        reqwest::blocking::Client::builder().tls_certs_only([cert]).build().unwrap()
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn stats(&self) -> serde_json::Value {
        self.http().get(format!("{}/_sim/stats", self.url)).send().unwrap().json().unwrap()
    }

    /// The sim's wire-level record of every write (`GET /_sim/writes`): what a client *sent*,
    /// whatever the sim made of it.
    pub fn writes(&self) -> Vec<serde_json::Value> {
        self.http().get(format!("{}/_sim/writes", self.url)).send().unwrap().json().unwrap()
    }

    pub fn reset_writes(&self) {
        assert!(self.http().post(format!("{}/_sim/writes/reset", self.url)).send().unwrap().status().is_success());
    }

    pub fn jobs(&self) -> Vec<serde_json::Value> {
        self.http().get(format!("{}/_sim/jobs", self.url)).send().unwrap().json().unwrap()
    }

    pub fn config_xml(&self, which: &str) -> String {
        self.http().get(format!("{}/_sim/config?which={which}", self.url)).send().unwrap().text().unwrap()
    }

    pub fn faults(&self, patch: serde_json::Value) {
        let r = self.http().post(format!("{}/_sim/faults", self.url)).json(&patch).send().unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    }

    /// Replaces the DNS map managed firewalls resolve FQDN objects against (`POST /_sim/dns`).
    pub fn dns(&self, map: serde_json::Value) {
        let r = self.http().post(format!("{}/_sim/dns", self.url)).json(&map).send().unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    }

    /// Replaces the managed devices at run time (`POST /_sim/devices`, the devices-file shape).
    pub fn devices(&self, devices: serde_json::Value) {
        let r = self.http().post(format!("{}/_sim/devices", self.url)).json(&devices).send().unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    }

    pub fn reset(&self) {
        assert!(self.http().post(format!("{}/_sim/reset", self.url)).send().unwrap().status().is_success());
    }

    /// A raw XML API call as another admin would make it (to seed foreign objects).
    pub fn api_as(&self, user: &str, password: &str, params: &[(&str, &str)]) -> String {
        let http = self.http();
        let key_xml = http
            .post(format!("{}/api/", self.url))
            .form(&[("type", "keygen"), ("user", user), ("password", password)])
            .send()
            .unwrap()
            .text()
            .unwrap();
        let key = key_xml.split("<key>").nth(1).unwrap().split("</key>").next().unwrap().to_string();
        http.post(format!("{}/api/", self.url)).header("X-PAN-KEY", key).form(params).send().unwrap().text().unwrap()
    }

    /// Writes `pano-eks.toml` (and its authcodes file) pointing at this sim; returns its path.
    pub fn write_config(&self, extra_sync: &str) -> PathBuf {
        TestConfig {
            panorama_url: &self.url,
            panorama_ca: "ca.pem",
            clusters: "[[clusters]]\nname = \"shop\"\nsubnets = [\"192.168.110.0/24\", \"192.168.111.0/24\"]\n\
                       [[clusters]]\nname = \"blog\"\nsubnets = [\"192.168.120.0/24\", \"192.168.121.0/24\"]\n",
            extra_sync,
            ..TestConfig::default()
        }
        .write(self.dir.path(), "pano-eks.toml")
    }

    pub fn config(&self, extra_sync: &str) -> config::Config {
        let p = self.write_config(extra_sync);
        match config::load(&p, LoadOptions::runtime()) {
            Ok(c) => c.config,
            Err(d) => panic!("{d}"),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The config every integration test starts from: two AZs, the firewall network, deployment
/// `demo`, Panorama through `password_env`. Each test sets only what differs.
pub struct TestConfig<'a> {
    pub panorama_url: &'a str,
    /// Path of Panorama's CA, relative to the config's folder.
    pub panorama_ca: &'a str,
    pub ami: &'a str,
    pub key_name: &'a str,
    pub extra_network: &'a str,
    pub extra_firewalls: &'a str,
    /// The `[[clusters]]` tables.
    pub clusters: &'a str,
    pub extra_sync: &'a str,
}

impl Default for TestConfig<'_> {
    fn default() -> Self {
        TestConfig {
            panorama_url: "https://127.0.0.1:1",
            panorama_ca: "ca.pem",
            ami: "ami-0123456789abcdef0",
            key_name: "ops",
            extra_network: "",
            extra_firewalls: "",
            clusters: "[[clusters]]\nname = \"shop\"\nsubnets = [\"192.168.110.0/24\", \"192.168.111.0/24\"]\n",
            extra_sync: "",
        }
    }
}

impl TestConfig<'_> {
    pub fn text(&self) -> String {
        format!(
            r#"name = "demo"
region = "us-west-2"
[network]
vpc_cidr = "192.168.0.0/16"
azs = ["us-west-2a", "us-west-2b"]
mgmt_subnets = ["192.168.0.0/24", "192.168.10.0/24"]
untrust_subnets = ["192.168.1.0/24", "192.168.11.0/24"]
trust_subnets = ["192.168.2.0/24", "192.168.12.0/24"]
natgw_subnets = ["192.168.100.0/24", "192.168.101.0/24"]
{extra_network}
[firewalls]
ami = "{ami}"
key_name = "{key}"
ssh_from = "203.0.113.7/32"
authcodes_file = "authcodes"
{extra_firewalls}
[panorama]
url = "{url}"
ca_cert = "{ca}"
username = "{ADMIN}"
password_env = "PANO_EKS_TEST_PANORAMA_PASSWORD"
device_group = "eks-dg"
template = "eks-template"
template_stack = "eks-stack"
{clusters}
[sync]
{extra_sync}
"#,
            extra_network = self.extra_network,
            ami = self.ami,
            key = self.key_name,
            extra_firewalls = self.extra_firewalls,
            url = self.panorama_url,
            ca = self.panorama_ca,
            clusters = self.clusters,
            extra_sync = self.extra_sync,
        )
    }

    /// Writes the config as `dir/file_name` with the authcodes file it names; returns its path.
    pub fn write(&self, dir: &Path, file_name: &str) -> PathBuf {
        std::fs::write(dir.join("authcodes"), "I1234567\n").unwrap();
        let p = dir.join(file_name);
        std::fs::write(&p, self.text()).unwrap();
        p
    }
}

/// Facts JSON for `n` Services in cluster `shop` (ports 8000+i) and two firewalls in two AZs.
pub fn facts_json(n: usize, hostname_suffix: &str) -> String {
    facts_range(0, n, hostname_suffix)
}

/// Facts JSON for Services `svc-start` .. `svc-(end-1)`.
pub fn facts_range(start: usize, end: usize, hostname_suffix: &str) -> String {
    let services: Vec<String> = (start..end)
        .map(|i| {
            format!(
                r#"{{"namespace": "default", "name": "svc-{i}", "labels": {{"panw-tg-port": "{}"}}, "type": "LoadBalancer",
                 "annotations": {{"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
                 "lb_hostname": "internal-svc-{i}{hostname_suffix}.elb.us-west-2.amazonaws.com", "ports": [{{"port": 80, "protocol": "TCP"}}],
                 "created": "2026-11-26T10:00:{:02}Z"}}"#,
                8000 + i,
                i % 60
            )
        })
        .collect();
    format!(
        r#"{{"clusters": [{{"name": "shop", "subnets": [{{"id": "subnet-1", "cidr": "192.168.110.0/24", "az": "us-west-2a"}}, {{"id": "subnet-2", "cidr": "192.168.111.0/24", "az": "us-west-2b"}}],
           "services": [{}]}}],
          "firewalls": [{{"id": "i-0abc", "az": "us-west-2a", "trust_subnet_cidr": "192.168.2.0/24"}}, {{"id": "i-0def", "az": "us-west-2b", "trust_subnet_cidr": "192.168.12.0/24"}}]}}"#,
        services.join(",")
    )
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Objects in name order; rules keep theirs (only rule order means something to PAN-OS, and
/// one-per-call writes create objects several at a time, in no fixed order).
pub fn canonical(mut o: pano_eks_core::Observed) -> pano_eks_core::Observed {
    o.tags.sort_by(|a, b| a.name.cmp(&b.name));
    o.addresses.sort_by(|a, b| a.name.cmp(&b.name));
    o.services.sort_by(|a, b| a.name.cmp(&b.name));
    o.static_routes.sort_by(|a, b| a.name.cmp(&b.name));
    o.address_groups.sort_by(|a, b| a.name.cmp(&b.name));
    o
}

/// Operations with NAT rule uuids (PAN-OS's identity of a rule, new for each create) cleared.
pub fn without_uuids(ops: &[pano_eks_core::Operation]) -> Vec<pano_eks_core::Operation> {
    use pano_eks_core::{Object, Operation};
    let mut ops = ops.to_vec();
    for op in &mut ops {
        if let Operation::Create { object: Object::NatRule(r) } | Operation::Update { object: Object::NatRule(r) } = op {
            r.uuid = None;
        }
    }
    ops
}

/// The engine benchmarks measure the write path at 16,000 Services, more than any VM-Series can
/// hold (2,000 FQDN address objects on tiers 1-3, 6,144 on tier 4; docs/benchmarks.md): the
/// limits are lifted explicitly, so admission does not cut the estate to what the sim's tier-1
/// devices would take.
pub fn unlimited(mut cfg: pano_eks::config::Config) -> pano_eks::config::Config {
    let n = Some(usize::MAX / 4);
    cfg.firewalls.capacity = Some(pano_eks::config::FirewallCapacity {
        tier: None,
        fqdn_addresses: n,
        addresses: n,
        service_objects: n,
        nat_rules: n,
        security_rules: n,
    });
    cfg
}

/// Interfaces as AWS discovery reports the ENIs, matching `facts_json`'s trust subnets.
pub const DEVICES_WITH_INTERFACES: &str = r#"[
  {"serial": "007900000001", "hostname": "fw-01", "ip": "10.0.0.11", "interfaces": [
    {"name": "ethernet1/1", "zone": "untrust", "address": "192.168.1.10/24"}, {"name": "ethernet1/2", "zone": "trust", "address": "192.168.2.10/24"}]},
  {"serial": "007900000002", "hostname": "fw-02", "ip": "10.0.0.12", "interfaces": [
    {"name": "ethernet1/1", "zone": "untrust", "address": "192.168.11.10/24"}, {"name": "ethernet1/2", "zone": "trust", "address": "192.168.12.10/24"}]}]"#;

pub const DG_RULES: &str = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='eks-dg']/pre-rulebase";

/// Another admin's allow rule for the inbound traffic and the stack carrying our template (what
/// `panorama prepare` sets up), committed: our partial commit never takes another admin's
/// changes, so our push carries them to the firewalls.
pub fn allow_inbound_and_stack_the_template(sim: &Sim) {
    let allow = "<entry name='allow-in'><from><member>untrust</member></from><to><member>trust</member></to><source><member>any</member></source>\
        <destination><member>any</member></destination><service><member>any</member></service><application><member>any</member></application><action>allow</action></entry>";
    let stack = "/config/devices/entry[@name='localhost.localdomain']/template-stack/entry[@name='eks-stack']/templates";
    let rules = format!("{DG_RULES}/security/rules");
    for p in [
        &[("type", "config"), ("action", "set"), ("xpath", rules.as_str()), ("element", allow)][..],
        &[("type", "config"), ("action", "set"), ("xpath", stack), ("element", "<member>eks-template</member>")],
        &[("type", "commit"), ("cmd", "<commit></commit>")],
    ] {
        let r = sim.api_as("other-admin", "other", p);
        assert!(r.contains("success"), "{p:?}: {r}");
    }
}
