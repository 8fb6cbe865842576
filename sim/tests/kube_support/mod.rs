//! Shared by the kube_* integration tests: start kube-sim on port 0, parse its ready line, talk
//! plain HTTP/1.1 to it, and find kubectl (skip, or fail under PANO_EKS_REQUIRE_TOOLS=1).
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ADMIN: &str = "test-admin-token";

pub struct KubeSim {
    child: Child,
    /// `https://127.0.0.1:PORT` or `http://…`.
    pub url: String,
    pub addr: String,
    pub dir: PathBuf,
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!("kube-sim-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

impl KubeSim {
    pub fn start(extra: &[&str]) -> Self {
        let dir = scratch_dir();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
            .args(["--listen", "127.0.0.1:0", "--admin-token", ADMIN, "--kubeconfig-out"])
            .arg(dir.join("kubeconfig"))
            .args(["--bookmark-interval-ms", "200"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kube-sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
        let url = line.trim().strip_prefix("kube-sim listening on ").unwrap_or_else(|| panic!("bad ready line {line:?}")).to_string();
        let addr = url.split("://").nth(1).expect("scheme").to_string();
        Self { child, url, addr, dir }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// One HTTP/1.1 request (plain HTTP sims only); returns status and parsed JSON body.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, ctype: &str, body: &str) -> (u16, Value) {
        let (status, raw) = self.raw(method, path, token, ctype, body);
        (status, serde_json::from_str(&raw).unwrap_or(Value::String(raw)))
    }

    pub fn raw(&self, method: &str, path: &str, token: Option<&str>, ctype: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text = String::from_utf8_lossy(&resp).to_string();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_string() };
        (status, body)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, Some(ADMIN), "application/json", "")
    }
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(ADMIN), "application/json", &body.to_string())
    }
    pub fn control(&self, what: &str) -> Value {
        let method = if what == "stats" { "GET" } else { "POST" };
        let (s, v) = self.call(method, &format!("/_sim/{what}"), None, "application/json", "");
        assert_eq!(s, 200, "{what}: {v}");
        v
    }
}

/// Decodes a chunked body (complete or cut off).
pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            out.push_str(&rest[..rest.len().min(n)]);
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// The kubectl to use, or None (with a skip message) when it is missing and tools are optional.
/// `$KUBECTL` overrides the PATH lookup (to try another kubectl version).
pub fn kubectl() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return Some(PathBuf::from(k));
    }
    let found = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("kubectl")).find(|p| p.is_file()));
    if found.is_none() {
        if std::env::var("PANO_EKS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("kubectl is required (PANO_EKS_REQUIRE_TOOLS=1) but not on PATH; run scripts/setup-env");
        }
        eprintln!("SKIP: kubectl not on PATH (install Debian's kubernetes-client, or run scripts/setup-env)");
    }
    found
}

pub fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests/identity")
}
