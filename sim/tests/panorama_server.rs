//! The real binary over real sockets: ready line, TLS verification with the generated CA,
//! POST/GET on /api and /api/, HTTP-level faults, control endpoints, --state, and no secrets
//! in logs. The client is a minimal HTTP/1.1 over tokio-rustls (ring) written here.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Proc {
    child: Child,
    addr: String,
    https: bool,
    ca: Option<Vec<u8>>,
    _dir: TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new() -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "panorama-sim-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(extra: &[&str], https: bool) -> Proc {
    start_in(TempDir::new(), extra, https)
}

fn start_in(dir: TempDir, extra: &[&str], https: bool) -> Proc {
    let ca_path = dir.0.join("ca.pem");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_panorama-sim"));
    cmd.args(["--listen", "127.0.0.1:0", "--admin", "admin:s3cret-pw", "--admin", "admin2:pw2", "--devices", "2", "--job-step-ms", "10"]);
    if https {
        cmd.arg("--tls-cert-out").arg(&ca_path);
    } else {
        cmd.arg("--plain-http");
    }
    cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn panorama-sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let scheme = if https { "https" } else { "http" };
    let prefix = format!("panorama-sim listening on {scheme}://");
    assert!(line.starts_with(&prefix), "ready line: {line:?}");
    let addr = line.trim()[prefix.len()..].to_string();
    assert!(!addr.ends_with(":0"), "real port printed: {addr}");
    let ca = https.then(|| std::fs::read(&ca_path).expect("CA written"));
    Proc { child, addr, https, ca, _dir: dir }
}

struct Resp {
    status: u16,
    reason: String,
    body: String,
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn tls_config(roots_pem: Option<&[u8]>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = roots_pem {
        for c in CertificateDer::pem_slice_iter(pem) {
            roots.add(c.unwrap()).unwrap();
        }
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// One HTTP/1.1 request with `Connection: close`. Err = transport failure (TLS, drop).
async fn request(
    p: &Proc,
    server_name: &str,
    roots: Option<&[u8]>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Resp, String> {
    let tcp = TcpStream::connect(&p.addr).await.map_err(|e| e.to_string())?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n", p.addr, body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut raw = Vec::new();
    if p.https {
        let conn = tokio_rustls::TlsConnector::from(tls_config(roots));
        let name = ServerName::try_from(server_name.to_string()).unwrap();
        let mut s = conn.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
        s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let _ = s.read_to_end(&mut raw).await;
    } else {
        let mut s = tcp;
        s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let _ = s.read_to_end(&mut raw).await;
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    parts.next();
    let status = parts.next().unwrap_or("0").parse().unwrap_or(0);
    let reason = parts.next().unwrap_or("").to_string();
    Ok(Resp { status, reason, body: body.to_string() })
}

fn form(kv: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(kv).finish()
}

impl Proc {
    fn call(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Result<Resp, String> {
        rt().block_on(request(self, "127.0.0.1", self.ca.as_deref(), method, target, headers, body))
    }
    fn api(&self, kv: &[(&str, &str)]) -> Resp {
        self.call("POST", "/api/", &[("Content-Type", "application/x-www-form-urlencoded")], &form(kv)).unwrap()
    }
    fn control(&self, method: &str, path: &str, json: &str) -> Resp {
        self.call(method, &format!("/_sim/{path}"), &[("Content-Type", "application/json")], json).unwrap()
    }
    fn key(&self) -> String {
        let r = self.api(&[("type", "keygen"), ("user", "admin"), ("password", "s3cret-pw")]);
        assert_eq!(r.status, 200, "{}", r.body);
        let s = r.body.find("<key>").unwrap() + 5;
        let e = r.body.find("</key>").unwrap();
        r.body[s..e].to_string()
    }
}

const INFO: &str = "<show><system><info/></system></show>";

#[test]
fn https_with_generated_ca_post_and_get_forms() {
    let p = start(&[], true);
    let key = p.key();
    // POST form body, key in X-PAN-KEY, /api/
    let r = p
        .call(
            "POST",
            "/api/",
            &[("X-PAN-KEY", &key), ("Content-Type", "application/x-www-form-urlencoded")],
            &form(&[("type", "op"), ("cmd", INFO)]),
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<model>Panorama</model>"));
    // GET query string, key= param, /api without slash
    let q = form(&[("type", "op"), ("cmd", INFO), ("key", &key)]);
    let r = p.call("GET", &format!("/api?{q}"), &[], "").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<sw-version>10.2.9</sw-version>"));
    // the cert is valid for localhost too
    let r = rt().block_on(request(&p, "localhost", p.ca.as_deref(), "GET", &format!("/api/?{q}"), &[], "")).unwrap();
    assert_eq!(r.status, 200);
    // 403 with PAN-OS's reason phrase and body
    let r = p.api(&[("type", "keygen"), ("user", "admin"), ("password", "wrong")]);
    assert_eq!((r.status, r.reason.as_str()), (403, "Invalid Credential"));
    assert_eq!(r.body, "<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>");
    let r = p.api(&[("type", "op"), ("cmd", INFO), ("key", "nope")]);
    assert_eq!(r.status, 403);
}

#[test]
fn tls_is_verified_against_the_generated_ca_only() {
    let p = start(&[], true);
    let q = "/api/?type=keygen&user=admin&password=s3cret-pw";
    // empty trust store: handshake fails
    let e = rt().block_on(request(&p, "127.0.0.1", None, "GET", q, &[], "")).err().expect("must fail");
    assert!(e.starts_with("tls:"), "{e}");
    // a different CA (from another sim) is not trusted either
    let other = start(&[], true);
    let e = rt().block_on(request(&p, "127.0.0.1", other.ca.as_deref(), "GET", q, &[], "")).err().expect("must fail");
    assert!(e.contains("tls"), "{e}");
    // wrong name
    let e = rt().block_on(request(&p, "panorama.example.com", p.ca.as_deref(), "GET", q, &[], "")).err().expect("must fail");
    assert!(e.contains("tls"), "{e}");
}

#[test]
fn plain_http_mode() {
    let p = start(&[], false);
    assert!(p.key().starts_with("LUFRPT"));
}

#[test]
fn http_faults_latency_errors_drops_at_run_time() {
    let p = start(&["--seed", "9"], true);
    let key = p.key();
    let info = [("type", "op"), ("cmd", INFO), ("key", key.as_str())];
    let r = p.control("POST", "faults", r#"{"latency_ms": 300}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = Instant::now();
    assert_eq!(p.api(&info).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    p.control("POST", "faults", r#"{"latency_ms": 0, "http_error_rate": 1.0, "http_error_status": 502}"#);
    assert_eq!(p.api(&info).status, 502);
    p.control("POST", "faults", r#"{"http_error_rate": 0.0, "drop_rate": 1.0}"#);
    let r = p.call("POST", "/api/", &[("Content-Type", "application/x-www-form-urlencoded")], &form(&info));
    assert!(r.is_err(), "connection closed without an answer");
    p.control("POST", "faults", r#"{"drop_rate": 0.0}"#);
    assert_eq!(p.api(&info).status, 200);
    let stats: serde_json::Value = serde_json::from_str(&p.control("GET", "stats", "").body).unwrap();
    assert_eq!(stats["injected_http_errors"], 1);
    assert_eq!(stats["injected_drops"], 1);
    assert!(stats["bytes_in"].as_u64().unwrap() > 0 && stats["bytes_out"].as_u64().unwrap() > 0);
    // bad fault JSON is refused
    assert_eq!(p.control("POST", "faults", r#"{"no_such_fault": 1}"#).status, 400);
}

#[test]
fn fault_flags_at_start() {
    let p = start(&["--http-error-rate", "1", "--http-error-status", "500"], true);
    let r = p.api(&[("type", "keygen"), ("user", "admin"), ("password", "s3cret-pw")]);
    assert_eq!(r.status, 500);
    // control endpoints are never faulted
    assert_eq!(p.control("GET", "stats", "").status, 200);
}

#[test]
fn control_endpoints() {
    let p = start(&["--devices-in", "DG1,"], true);
    let key = p.key();
    let x = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry[@name='DG1']/tag";
    let r = p.api(&[("type", "config"), ("action", "set"), ("xpath", x), ("element", "<entry name='t'/>"), ("key", &key)]);
    assert!(r.body.contains("code=\"20\""), "{}", r.body);
    let cand = p.control("GET", "config?which=candidate", "").body;
    assert!(cand.contains("<entry name=\"t\"") && cand.contains("007900000001"));
    assert!(!p.control("GET", "config?which=running", "").body.contains("<entry name=\"t\""));
    assert_eq!(p.control("GET", "config?which=other", "").status, 400);
    let stats: serde_json::Value = serde_json::from_str(&p.control("GET", "stats", "").body).unwrap();
    assert_eq!(stats["requests"]["config.set"], 1);
    assert_eq!((stats["write_calls"].as_u64(), stats["write_ops"].as_u64()), (Some(1), Some(1)));
    // membership at run time, then push sees both devices in the stack
    assert_eq!(p.control("POST", "membership", r#"{"template_stack": "TS9"}"#).status, 200);
    let r = p.api(&[
        ("type", "commit"),
        ("action", "all"),
        ("cmd", "<commit-all><template-stack><name>TS9</name></template-stack></commit-all>"),
        ("key", &key),
    ]);
    assert!(r.body.contains("<job>"), "{}", r.body);
    std::thread::sleep(Duration::from_millis(100));
    let jobs: serde_json::Value = serde_json::from_str(&p.control("GET", "jobs", "").body).unwrap();
    assert_eq!(jobs[0]["type"], "CommitAll");
    assert_eq!(jobs[0]["status"], "FIN");
    assert_eq!(jobs[0]["devices"].as_array().unwrap().len(), 2);
    // reset
    assert_eq!(p.control("POST", "reset", "").status, 200);
    assert!(!p.control("GET", "config?which=candidate", "").body.contains("<entry name=\"t\""));
    assert_eq!(p.control("GET", "nope", "").status, 404);
    // keys survive a reset; rotate-keys revokes them
    assert_eq!(p.api(&[("type", "op"), ("cmd", INFO), ("key", &key)]).status, 200);
    p.control("POST", "rotate-keys", "");
    assert_eq!(p.api(&[("type", "op"), ("cmd", INFO), ("key", &key)]).status, 403);
}

#[test]
fn state_file_round_trip() {
    let dir = TempDir::new();
    let state = dir.0.join("state.xml");
    let state_s = state.to_str().unwrap().to_string();
    let p = start_in(dir, &["--state", &state_s], true);
    let key = p.key();
    let x = "/config/shared/tag";
    p.api(&[("type", "config"), ("action", "set"), ("xpath", x), ("element", "<entry name='persisted'/>"), ("key", &key)]);
    assert_eq!(p.control("POST", "save", "").status, 200);
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(saved.contains("persisted"));
    // a new process loads it
    let dir2 = TempDir::new();
    let p2 = start_in(dir2, &["--state", &state_s], true);
    assert!(p2.control("GET", "config?which=candidate", "").body.contains("persisted"));
    drop(p);
}

#[test]
fn no_secrets_in_logs() {
    let dir = TempDir::new();
    let log2 = dir.0.join("stderr.log");
    let p = start_in_with_log(dir, &log2);
    let key = p.key();
    let r = p.api(&[
        ("type", "op"),
        ("cmd", "<request><bootstrap><vm-auth-key><generate><lifetime>1</lifetime></generate></vm-auth-key></bootstrap></request>"),
        ("key", &key),
    ]);
    let vm_key = r.body.split_whitespace().nth(5).unwrap_or("").to_string();
    p.api(&[("type", "keygen"), ("user", "admin"), ("password", "wrong-pw-123")]);
    p.call("POST", "/api/", &[("X-PAN-KEY", &key)], &form(&[("type", "config"), ("action", "get"), ("xpath", "/config")])).unwrap();
    let mut p = p;
    let _ = p.child.kill();
    let _ = p.child.wait();
    let mut logs = String::new();
    std::fs::File::open(&log2).unwrap().read_to_string(&mut logs).unwrap();
    assert!(logs.contains("api"), "debug logging was on: {logs}");
    for secret in ["s3cret-pw", "wrong-pw-123", key.as_str(), vm_key.as_str()] {
        assert!(!secret.is_empty() && !logs.contains(secret), "secret {secret:?} leaked into logs");
    }
}

fn start_in_with_log(dir: TempDir, log: &std::path::Path) -> Proc {
    // Most verbose logging, set on the child only.
    let ca_path = dir.0.join("ca.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_panorama-sim"))
        .args(["--listen", "127.0.0.1:0", "--admin", "admin:s3cret-pw", "--tls-cert-out"])
        .arg(&ca_path)
        .env("PANORAMA_SIM_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("//").next().unwrap().to_string();
    let ca = Some(std::fs::read(&ca_path).unwrap());
    Proc { child, addr, https: true, ca, _dir: dir }
}

#[test]
fn profile_flags_faults_and_writes_record_over_http() {
    let p = start(&["--sw-version", "10.0.11", "--timezone-offset-minutes", "-480"], false);
    let key = p.key();
    let faults: serde_json::Value = serde_json::from_str(&p.control("GET", "faults", "").body).unwrap();
    assert_eq!(faults["multi_config_enabled"], false);
    assert_eq!(faults["partial_xpath_commit"], "sweep");
    assert_eq!(faults["refuse_writes"], serde_json::Value::Null);
    assert_eq!(faults["clock_skew_secs"], 0);
    let mc = "<multi-configure-request><set id='1' xpath='/config/shared/tag'><entry name='demo.in.x-frontend'/></set></multi-configure-request>";
    let r = p.api(&[("type", "config"), ("action", "multi-config"), ("element", mc), ("key", &key)]);
    assert!(r.body.contains("Multi-config is not enabled"), "{}", r.body);
    assert_eq!(p.control("POST", "faults", r#"{"multi_config_enabled": true}"#).status, 200);
    // refuse_writes: the multi-config fails on that sub-op
    let f = r#"{"refuse_writes": [{"name_glob": "demo.in.*frontend*", "message": "refused for the test"}]}"#;
    assert_eq!(p.control("POST", "faults", f).status, 200);
    let r = p.api(&[("type", "config"), ("action", "multi-config"), ("element", mc), ("key", &key)]);
    assert!(r.body.contains("code=\"13\"") && r.body.contains("refused for the test"), "{}", r.body);
    assert_eq!(p.control("POST", "faults", r#"{"refuse_writes": null}"#).status, 200);
    assert_eq!(p.control("POST", "faults", r#"{"partial_xpath_commit": "nope"}"#).status, 400);
    let r = p.api(&[("type", "config"), ("action", "multi-config"), ("element", mc), ("key", &key)]);
    assert!(r.body.contains("code=\"20\""), "{}", r.body);
    let w: serde_json::Value = serde_json::from_str(&p.control("GET", "writes", "").body).unwrap();
    let w = w.as_array().unwrap();
    assert_eq!(w.len(), 3);
    assert_eq!(w.iter().map(|x| x["refused"].as_bool().unwrap()).collect::<Vec<_>>(), [true, true, false]);
    assert_eq!(w.iter().map(|x| x["call"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(w[2]["element_names"], serde_json::json!(["demo.in.x-frontend"]));
    assert_eq!(w[2]["admin"], "admin");
    assert_eq!(p.control("POST", "writes/reset", "").status, 200);
    assert_eq!(p.control("GET", "writes", "").body, "[]");
    // clock in the configured zone
    let r = p.api(&[("type", "op"), ("cmd", "<show><clock/></show>"), ("key", &key)]);
    assert!(r.body.contains(" -08 "), "{}", r.body);
    // reset restores the profile default
    p.control("POST", "reset", "");
    let faults: serde_json::Value = serde_json::from_str(&p.control("GET", "faults", "").body).unwrap();
    assert_eq!(faults["multi_config_enabled"], false);
    // with --keygen-rotates, a second keygen ends the first key
    assert_eq!(p.control("POST", "faults", r#"{"keygen_rotates": true}"#).status, 200);
    let key = p.key();
    let k2 = p.key();
    assert_eq!(p.api(&[("type", "op"), ("cmd", INFO), ("key", &key)]).status, 403);
    assert_eq!(p.api(&[("type", "op"), ("cmd", INFO), ("key", &k2)]).status, 200);
}

#[test]
fn keygen_rotates_flag() {
    let p = start(&[], false);
    let k1 = p.key();
    assert_eq!(p.key(), k1, "default: one stable key per admin");
    let p = start(&["--keygen-rotates"], false);
    let faults: serde_json::Value = serde_json::from_str(&p.control("GET", "faults", "").body).unwrap();
    assert_eq!(faults["keygen_rotates"], true);
    let k1 = p.key();
    let k2 = p.key();
    assert_ne!(k2, k1);
    assert_eq!(p.api(&[("type", "op"), ("cmd", INFO), ("key", &k1)]).status, 403);
    assert_eq!(p.api(&[("type", "op"), ("cmd", INFO), ("key", &k2)]).status, 200);
    // reset goes back to the flag's value
    assert_eq!(p.control("POST", "faults", r#"{"keygen_rotates": false}"#).status, 200);
    p.control("POST", "reset", "");
    let faults: serde_json::Value = serde_json::from_str(&p.control("GET", "faults", "").body).unwrap();
    assert_eq!(faults["keygen_rotates"], true);
    let p = start(&["--keygen-rotates", "false"], false);
    let k1 = p.key();
    assert_eq!(p.key(), k1);
}
