//! What `sync --watch` exposes: Prometheus text on /metrics, liveness on /healthz, readiness on
//! /readyz. Served by a deliberately tiny HTTP/1.0 responder: adding hyper's server feature would
//! change hyper's feature set and rebuild every aws-sdk crate, for three GET endpoints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use pano_eks_core::{Plan, ServiceState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Default)]
struct Inner {
    reconciles: u64,
    reconcile_failures: u64,
    reconcile_seconds_sum: f64,
    reconcile_seconds_last: f64,
    operations_applied: u64,
    write_calls: u64,
    commits: u64,
    pushes: u64,
    /// cluster → (discovered, protected, conflicting, pending, invalid, refused, over-capacity, exposed)
    services: BTreeMap<String, [u64; 8]>,
    /// cluster → watch is synced and healthy
    clusters_ready: BTreeMap<String, bool>,
    leader: bool,
    last_success_unix: f64,
    /// A converge is running now (observe → … → the last push job finished).
    converging: bool,
    /// Passes running or about to start (an aborted one's guard may drop after the next began).
    verifying: u32,
    /// (firewall, check) → (rows ok, rows failed) of the last finished verification pass.
    verify: BTreeMap<(String, &'static str), (u64, u64)>,
    last_verify_unix: f64,
    /// (target, firewall serial, result) → per-firewall results of the pushes sync ran.
    push_results: BTreeMap<(String, String, String), u64>,
    /// Expiry of the bootstrap package's vm-auth-key (Unix time), when it is known.
    vm_auth_key_expiry_unix: Option<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct Metrics(Arc<Mutex<Inner>>);

impl Metrics {
    pub fn reconciled(&self, seconds: f64, report: Option<&super::Report>) {
        let mut m = self.0.lock().expect("metrics lock");
        m.reconciles += 1;
        m.reconcile_seconds_sum += seconds;
        m.reconcile_seconds_last = seconds;
        match report {
            Some(r) => {
                m.operations_applied += r.plan.operations.len() as u64;
                m.write_calls += r.write_calls as u64;
                m.commits += u64::from(r.commit_job.is_some());
                m.pushes += r.pushes.len() as u64;
                for p in &r.pushes {
                    count_push(&mut m, &p.target, &p.devices);
                }
                m.last_success_unix =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                set_services(&mut m, &r.plan);
            }
            None => m.reconcile_failures += 1,
        }
    }

    /// A push that failed on a firewall (the converge failed): its per-firewall results.
    pub fn pushed(&self, target: &str, devices: &[(String, String, String)]) {
        count_push(&mut self.0.lock().expect("metrics lock"), target, devices);
    }

    /// The bootstrap package's vm-auth-key expires at `unix` (`None`: no key, or not known).
    pub fn vm_auth_key_expiry(&self, unix: Option<i64>) {
        self.0.lock().expect("metrics lock").vm_auth_key_expiry_unix = unix;
    }

    /// The rows of a finished verification pass (issue 15), replacing the last one.
    pub fn verified(&self, rows: &[pano_eks_core::verify::Row]) {
        let mut m = self.0.lock().expect("metrics lock");
        m.verify.clear();
        for r in rows {
            let e = m.verify.entry((r.serial.clone(), r.check.as_str())).or_default();
            if r.ok {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        m.last_verify_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    }

    /// Marks a converge as running until the returned guard is dropped: `converge_in_progress`
    /// lets a reader (an operator, the lab's checks) wait until the pushes of a change are done.
    pub fn converging(&self) -> ConvergingGuard {
        self.0.lock().expect("metrics lock").converging = true;
        ConvergingGuard(self.clone())
    }

    /// Marks a verification pass as running (or about to start) until the guard is dropped: a
    /// pass the next converge aborts drops it too.
    pub fn verifying(&self) -> VerifyingGuard {
        self.0.lock().expect("metrics lock").verifying += 1;
        VerifyingGuard(self.clone())
    }

    pub fn cluster_ready(&self, cluster: &str, ready: bool) {
        self.0.lock().expect("metrics lock").clusters_ready.insert(cluster.to_string(), ready);
    }

    pub fn set_leader(&self, leader: bool) {
        self.0.lock().expect("metrics lock").leader = leader;
    }

    /// Ready: every cluster's watch has synced and the last reconcile did not fail.
    pub fn ready(&self) -> bool {
        let m = self.0.lock().expect("metrics lock");
        !m.clusters_ready.is_empty() && m.clusters_ready.values().all(|r| *r)
    }

    pub fn render(&self) -> String {
        let m = self.0.lock().expect("metrics lock");
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: f64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter("pano_eks_reconciles_total", "Converges attempted.", m.reconciles as f64);
        counter("pano_eks_reconcile_failures_total", "Converges that failed.", m.reconcile_failures as f64);
        counter("pano_eks_reconcile_duration_seconds_sum", "Time spent converging.", m.reconcile_seconds_sum);
        counter("pano_eks_operations_applied_total", "Panorama entries created, updated or deleted.", m.operations_applied as f64);
        counter("pano_eks_write_calls_total", "XML API calls that wrote.", m.write_calls as f64);
        counter("pano_eks_commits_total", "Partial commits of our admin's changes.", m.commits as f64);
        counter("pano_eks_pushes_total", "Pushes to a device group or template stack, all firewalls OK.", m.pushes as f64);
        let _ = writeln!(
            s,
            "# HELP pano_eks_reconcile_duration_seconds_last Duration of the last converge.\n# TYPE pano_eks_reconcile_duration_seconds_last gauge\npano_eks_reconcile_duration_seconds_last {}",
            m.reconcile_seconds_last
        );
        let _ = writeln!(
            s,
            "# HELP pano_eks_last_success_timestamp_seconds Unix time of the last successful converge.\n# TYPE pano_eks_last_success_timestamp_seconds gauge\npano_eks_last_success_timestamp_seconds {}",
            m.last_success_unix
        );
        let _ = writeln!(
            s,
            "# HELP pano_eks_converge_in_progress 1 while a converge (observe to the last push job) is running.\n# TYPE pano_eks_converge_in_progress gauge\npano_eks_converge_in_progress {}",
            u8::from(m.converging)
        );
        let _ = writeln!(
            s,
            "# HELP pano_eks_verify_in_progress 1 while a verification pass after a converge is running.\n# TYPE pano_eks_verify_in_progress gauge\npano_eks_verify_in_progress {}",
            u8::from(m.verifying > 0)
        );
        let _ = writeln!(
            s,
            "# HELP pano_eks_leader 1 when this replica holds the lease and writes to Panorama.\n# TYPE pano_eks_leader gauge\npano_eks_leader {}",
            u8::from(m.leader)
        );
        let _ = writeln!(s, "# HELP pano_eks_services Labelled Services by cluster and state.\n# TYPE pano_eks_services gauge");
        for (cluster, counts) in &m.services {
            for (state, v) in
                ["discovered", "protected", "conflicting", "pending", "invalid", "refused", "over-capacity", "exposed"].iter().zip(counts)
            {
                let _ = writeln!(s, "pano_eks_services{{cluster=\"{}\",state=\"{state}\"}} {v}", escape(cluster));
            }
        }
        let _ =
            writeln!(s, "# HELP pano_eks_cluster_ready 1 when the cluster's Service watch is synced.\n# TYPE pano_eks_cluster_ready gauge");
        for (cluster, ready) in &m.clusters_ready {
            let _ = writeln!(s, "pano_eks_cluster_ready{{cluster=\"{}\"}} {}", escape(cluster), u8::from(*ready));
        }
        let _ = writeln!(
            s,
            "# HELP pano_eks_verify_checks Rows of the last verification pass (after each converge), by firewall, check and result.\n# TYPE pano_eks_verify_checks gauge"
        );
        for ((fw, check), (ok, fail)) in &m.verify {
            for (result, v) in [("ok", ok), ("fail", fail)] {
                let _ = writeln!(s, "pano_eks_verify_checks{{firewall=\"{}\",check=\"{check}\",result=\"{result}\"}} {v}", escape(fw));
            }
        }
        let _ = writeln!(
            s,
            "# HELP pano_eks_push_results_total Per-firewall results of pushes to a device group or template stack.\n# TYPE pano_eks_push_results_total counter"
        );
        for ((target, fw, result), v) in &m.push_results {
            let _ = writeln!(
                s,
                "pano_eks_push_results_total{{target=\"{}\",firewall=\"{}\",result=\"{}\"}} {v}",
                escape(target),
                escape(fw),
                escape(result)
            );
        }
        let _ = writeln!(
            s,
            "# HELP pano_eks_vm_auth_key_expiry_timestamp_seconds Unix time the bootstrap package's vm-auth-key expires (by Panorama's clock).\n# TYPE pano_eks_vm_auth_key_expiry_timestamp_seconds gauge"
        );
        if let Some(t) = m.vm_auth_key_expiry_unix {
            let _ = writeln!(s, "pano_eks_vm_auth_key_expiry_timestamp_seconds {t}");
        }
        let _ = writeln!(
            s,
            "# HELP pano_eks_verify_last_timestamp_seconds Unix time of the last verification.\n# TYPE pano_eks_verify_last_timestamp_seconds gauge\npano_eks_verify_last_timestamp_seconds {}",
            m.last_verify_unix
        );
        s
    }
}

/// Clears `converge_in_progress` when the converge ends (also when it fails or panics).
pub struct ConvergingGuard(Metrics);

impl Drop for ConvergingGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.0.0.lock() {
            m.converging = false;
        }
    }
}

pub struct VerifyingGuard(Metrics);

impl Drop for VerifyingGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.0.0.lock() {
            m.verifying = m.verifying.saturating_sub(1);
        }
    }
}

fn count_push(m: &mut Inner, target: &str, devices: &[(String, String, String)]) {
    for (serial, _, result) in devices {
        *m.push_results.entry((target.to_string(), serial.clone(), result.clone())).or_default() += 1;
    }
}

fn set_services(m: &mut Inner, plan: &Plan) {
    m.services.clear();
    for sv in &plan.services {
        let c = m.services.entry(sv.cluster.clone()).or_default();
        c[0] += 1;
        match sv.state {
            ServiceState::Protected | ServiceState::Planned => c[1] += 1,
            ServiceState::Conflict => c[2] += 1,
            ServiceState::Pending => c[3] += 1,
            ServiceState::Invalid => c[4] += 1,
            ServiceState::Refused => c[5] += 1,
            ServiceState::OverCapacity => c[6] += 1,
            ServiceState::Exposed => c[7] += 1,
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Reads a request's head, however many segments it arrives in (a client may send the request
/// line and each header in writes of their own), up to the blank line; `None` for a connection
/// closed first or a head over 8 KiB.
async fn read_head(sock: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = sock.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Some(head);
        }
        if head.len() > 8192 {
            return None;
        }
    }
}

/// Serves /metrics, /healthz and /readyz until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Metrics) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { continue };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let Ok(Some(head)) = tokio::time::timeout(std::time::Duration::from_secs(5), read_head(&mut sock)).await else {
                    return;
                };
                let req = String::from_utf8_lossy(&head);
                let path = req.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match path {
                    "/metrics" => ("200 OK", metrics.render()),
                    "/healthz" => ("200 OK", "ok\n".to_string()),
                    "/readyz" if metrics.ready() => ("200 OK", "ready\n".to_string()),
                    "/readyz" => ("503 Service Unavailable", "not ready: a cluster watch has not synced\n".to_string()),
                    _ => ("404 Not Found", "not found\n".to_string()),
                };
                let resp = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_verification_replaces_the_one_before() {
        use pano_eks_core::verify::{Check, Row};
        let row = |fw: &str, check, ok| Row { serial: fw.into(), check, subject: "x".into(), service: None, ok, detail: String::new() };
        let m = Metrics::default();
        m.verified(&[row("S1", Check::InboundNat, true), row("S1", Check::InboundNat, false), row("S2", Check::InSync, false)]);
        let text = m.render();
        for want in [
            "pano_eks_verify_checks{firewall=\"S1\",check=\"inbound-nat\",result=\"ok\"} 1",
            "pano_eks_verify_checks{firewall=\"S1\",check=\"inbound-nat\",result=\"fail\"} 1",
            "pano_eks_verify_checks{firewall=\"S2\",check=\"in-sync\",result=\"fail\"} 1",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        m.verified(&[row("S1", Check::InSync, true)]);
        assert!(!m.render().contains("firewall=\"S2\""), "a firewall gone from the device group leaves the metrics");
    }

    #[test]
    fn push_results_per_firewall_and_the_vm_auth_key_expiry() {
        let m = Metrics::default();
        let text = m.render();
        assert!(text.contains("# TYPE pano_eks_push_results_total counter") && !text.contains("pano_eks_push_results_total{"));
        assert!(text.contains("# TYPE pano_eks_vm_auth_key_expiry_timestamp_seconds gauge"));
        assert!(!text.contains("pano_eks_vm_auth_key_expiry_timestamp_seconds 1"), "no sample while unknown");
        let ok = |s: &str| (s.to_string(), format!("fw-{s}"), "OK".to_string());
        m.pushed("device-group/eks-dg", &[ok("S1"), ("S2".into(), "fw-S2".into(), "FAIL".into())]);
        m.pushed("device-group/eks-dg", &[ok("S1")]);
        m.vm_auth_key_expiry(Some(1_800_000_000));
        let text = m.render();
        for want in [
            "pano_eks_push_results_total{target=\"device-group/eks-dg\",firewall=\"S1\",result=\"OK\"} 2",
            "pano_eks_push_results_total{target=\"device-group/eks-dg\",firewall=\"S2\",result=\"FAIL\"} 1",
            "pano_eks_vm_auth_key_expiry_timestamp_seconds 1800000000",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }

    #[test]
    fn renders_prometheus_text_with_escaped_labels() {
        let m = Metrics::default();
        m.cluster_ready("shop", true);
        m.reconciled(0.25, None);
        let text = m.render();
        assert!(text.contains("pano_eks_reconcile_failures_total 1"));
        assert!(text.contains("pano_eks_cluster_ready{cluster=\"shop\"} 1"));
        assert!(text.contains("pano_eks_converge_in_progress 0"));
        let guard = m.converging();
        assert!(m.render().contains("pano_eks_converge_in_progress 1"));
        drop(guard);
        assert!(m.render().contains("pano_eks_converge_in_progress 0"));
        let guard = m.verifying();
        assert!(m.render().contains("pano_eks_verify_in_progress 1"));
        drop(guard);
        assert!(m.render().contains("pano_eks_verify_in_progress 0"));
        assert!(m.ready());
        m.cluster_ready("blog", false);
        assert!(!m.ready());
        assert_eq!(escape("a\"b"), "a\\\"b");
    }

    #[test]
    fn an_exposed_service_is_counted_as_exposed_not_protected() {
        use pano_eks_core::{ClusterFacts, Facts, Observed, PlanSettings, PortFacts, ServiceFacts, Timestamp};
        let svc = |name: &str, label: &str, scheme: &str| ServiceFacts {
            namespace: "default".into(),
            name: name.into(),
            labels: [("panw-tg-port".to_owned(), label.to_owned())].into(),
            annotations: [
                ("service.beta.kubernetes.io/aws-load-balancer-type".to_owned(), "external".to_owned()),
                ("service.beta.kubernetes.io/aws-load-balancer-scheme".to_owned(), scheme.to_owned()),
            ]
            .into(),
            service_type: "LoadBalancer".into(),
            load_balancer_class: None,
            lb_hostname: Some(format!("{name}-1.elb.us-west-2.amazonaws.com")),
            ports: vec![PortFacts { port: 80, protocol: "TCP".into() }],
            created: Timestamp::parse("2026-11-26T10:00:00Z").unwrap(),
        };
        let facts = Facts {
            clusters: vec![ClusterFacts {
                name: "shop".into(),
                subnets: vec![],
                services: vec![svc("open", "82", "internet-facing"), svc("closed", "83", "internal")],
            }],
            ..Default::default()
        };
        let plan = pano_eks_core::plan(&PlanSettings::new("prod", "dg", "tpl"), &facts, &Observed::default()).unwrap();
        let m = Metrics::default();
        set_services(&mut m.0.lock().unwrap(), &plan);
        let text = m.render();
        for line in [
            "pano_eks_services{cluster=\"shop\",state=\"discovered\"} 2",
            "pano_eks_services{cluster=\"shop\",state=\"protected\"} 1",
            "pano_eks_services{cluster=\"shop\",state=\"exposed\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    /// A reader that hands out one piece per read, as a socket does when a client writes the
    /// request line and each header separately.
    struct Pieces(std::collections::VecDeque<&'static [u8]>);
    impl tokio::io::AsyncRead for Pieces {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if let Some(p) = self.0.pop_front() {
                buf.put_slice(p);
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn the_head_is_read_to_its_blank_line_across_pieces() {
        let mut r = Pieces(["GET /hea", "lthz HTTP/1.1\r\n", "Host: x\r\n", "\r\n"].map(str::as_bytes).into());
        let head = read_head(&mut r).await.expect("a whole head");
        assert_eq!(head, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut cut = Pieces(["GET /metrics HTTP/1.1\r\n"].map(str::as_bytes).into());
        assert_eq!(read_head(&mut cut).await, None, "closed before the blank line");
    }

    #[tokio::test]
    async fn a_request_sent_in_pieces_is_answered() {
        let addr = serve("127.0.0.1:0".parse().unwrap(), Metrics::default()).await.unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        for part in ["GET /hea", "lthz HTTP/1.1\r\n", "Host: x\r\n", "\r\n"] {
            s.write_all(part.as_bytes()).await.unwrap();
            s.flush().await.unwrap();
        }
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.0 200") && out.ends_with("ok\n"), "{out}");
    }

    #[tokio::test]
    async fn serves_the_three_endpoints() {
        let m = Metrics::default();
        let addr = serve("127.0.0.1:0".parse().unwrap(), m.clone()).await.unwrap();
        let get = |p: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.0 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.0 503"));
        m.cluster_ready("shop", true);
        assert!(get("/readyz").await.starts_with("HTTP/1.0 200"));
        assert!(get("/metrics").await.contains("pano_eks_reconciles_total 0"));
        assert!(get("/nope").await.starts_with("HTTP/1.0 404"));
    }
}
