//! The simulated cluster: the store plus what the control plane's controllers would do
//! synchronously (namespace bootstrap, the service-account token controller), issued tokens,
//! options and counters. One `Mutex<Sim>` guards it; handlers never await while holding it.

use super::auth::{IssuedToken, Tokens};
use super::clock;
use super::store::Store;
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

pub const SA_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
pub const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

#[derive(Clone, Debug)]
pub struct Options {
    /// Cluster name whose EKS tokens are accepted as admin (None: EKS tokens are refused).
    pub eks_cluster: Option<String>,
    pub bookmark_interval: Duration,
    pub history: usize,
    /// PEM of the CA clients trust (empty with plain HTTP); goes into token Secrets' `ca.crt`.
    pub ca_pem: String,
    /// Address put in `/api`'s serverAddressByClientCIDRs.
    pub server_address: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Per `verb resource` (e.g. `list services`, `watch services`, `create secrets`).
    pub requests: BTreeMap<String, u64>,
    pub http_requests: u64,
    pub unauthorized: u64,
    pub forbidden: u64,
    pub watches_started: u64,
    pub watches_dropped: u64,
    pub gone_410: u64,
    pub compactions: u64,
}

pub struct Sim {
    pub opts: Options,
    pub store: Store,
    pub tokens: Tokens,
    pub stats: Stats,
    /// Open watch streams (decremented by the stream task when it ends).
    pub watches_open: Arc<AtomicU64>,
    /// Counter behind deterministic uids, generateName suffixes and cluster IPs.
    seq: u64,
    next_ip: u32,
}

/// Namespaces every cluster starts with.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-node-lease", "kube-public", "kube-system"];

impl Sim {
    pub fn new(opts: Options) -> Self {
        let mut s = Self {
            store: Store::new(opts.history),
            opts,
            tokens: Tokens::default(),
            stats: Stats::default(),
            watches_open: Arc::new(AtomicU64::new(0)),
            seq: 0,
            next_ip: 1,
        };
        s.bootstrap();
        s
    }

    /// Back to the startup state. Issued tokens are revoked; resourceVersions keep rising.
    pub fn reset(&mut self) {
        self.store.clear();
        self.tokens.clear();
        self.stats = Stats::default();
        self.seq = 0;
        self.next_ip = 1;
        self.bootstrap();
    }

    fn bootstrap(&mut self) {
        for ns in SYSTEM_NAMESPACES {
            let obj = self.finish_new(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}), "Namespace");
            self.store.create("/namespaces", "", ns, obj);
            self.namespace_created(ns);
        }
        let ip = self.allocate_ip();
        let svc = self.finish_new(
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                   "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                            "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
                   "status": {"loadBalancer": {}}}),
            "Service",
        );
        self.store.create("/services", "default", "kubernetes", svc);
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Deterministic, unique, UUID-shaped (version 4 layout) identifiers.
    pub fn new_uid(&mut self) -> String {
        let n = self.next_seq();
        format!("6b1d0000-{:04x}-4000-8000-{:012x}", (n >> 48) & 0xffff, n & 0xffff_ffff_ffff)
    }

    /// A generateName suffix from the API server's alphabet (no vowels, no look-alikes).
    pub fn name_suffix(&mut self) -> String {
        const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = self.next_seq().wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (0..5)
            .map(|_| {
                let c = ALPHA[(n % ALPHA.len() as u64) as usize] as char;
                n /= ALPHA.len() as u64;
                c
            })
            .collect()
    }

    /// Next free address of the service range 10.96.0.0/12.
    pub fn allocate_ip(&mut self) -> String {
        loop {
            let n = self.next_ip;
            self.next_ip += 1;
            let ip = format!("10.{}.{}.{}", 96 + (n >> 16), (n >> 8) & 0xff, n & 0xff);
            if !self.store.cluster_ip_in_use(&ip) {
                return ip;
            }
        }
    }

    /// Metadata every new object gets (uid, creationTimestamp); kind defaults come from api.rs.
    pub fn finish_new(&mut self, mut obj: Value, kind: &str) -> Value {
        let uid = self.new_uid();
        let m = obj["metadata"].as_object_mut().expect("metadata object");
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(clock::rfc3339(clock::unix_now())));
        if kind == "Namespace" {
            let name = m.get("name").cloned().unwrap_or(Value::Null);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), name);
            }
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        obj
    }

    /// What the service-account and root-CA controllers create in every new namespace.
    pub fn namespace_created(&mut self, ns: &str) {
        if self.store.get("/serviceaccounts", ns, "default").is_none() {
            let sa = self.finish_new(
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}),
                "ServiceAccount",
            );
            self.store.create("/serviceaccounts", ns, "default", sa);
        }
        if self.store.get("/configmaps", ns, "kube-root-ca.crt").is_none() {
            let cm = self.finish_new(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                       "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                       "data": {"ca.crt": self.opts.ca_pem}}),
                "ConfigMap",
            );
            self.store.create("/configmaps", ns, "kube-root-ca.crt", cm);
        }
    }

    /// The token controller: every `kubernetes.io/service-account-token` Secret in `ns` whose
    /// service account exists gets `token`, `ca.crt` and `namespace` (and the account's uid
    /// annotation). Secrets naming a missing account wait until it is created.
    pub fn reconcile_tokens(&mut self, ns: &str) {
        let pending: Vec<(String, String, String)> = self
            .store
            .list("/secrets", Some(ns))
            .filter(|(_, s)| s.get("type").and_then(Value::as_str) == Some(SA_TOKEN_TYPE))
            .filter(|(_, s)| s.pointer("/data/token").is_none())
            .filter_map(|((_, name), s)| {
                let sa = s.pointer("/metadata/annotations").and_then(|a| a.get(SA_NAME_ANNOTATION)).and_then(Value::as_str)?;
                let uid = self.store.get("/serviceaccounts", ns, sa)?.pointer("/metadata/uid").and_then(Value::as_str)?;
                Some((name.clone(), sa.to_string(), uid.to_string()))
            })
            .collect();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        for (secret, sa, uid) in pending {
            let token = self.tokens.issue(
                IssuedToken { ns: ns.into(), sa: sa.clone(), sa_uid: uid.clone(), secret: Some(secret.clone()), expires: None },
                clock::unix_now(),
                &[],
            );
            let mut obj = self.store.get("/secrets", ns, &secret).cloned().expect("listed above");
            let data = obj.as_object_mut().expect("object").entry("data").or_insert_with(|| json!({}));
            if !data.is_object() {
                *data = json!({});
            }
            data["token"] = json!(b64(&token));
            data["ca.crt"] = json!(b64(&self.opts.ca_pem));
            data["namespace"] = json!(b64(ns));
            obj["metadata"]["annotations"][SA_UID_ANNOTATION] = json!(uid);
            self.store.update("/secrets", ns, &secret, obj);
        }
    }

    /// The token controller's other half: token Secrets of a deleted account are deleted.
    pub fn service_account_deleted(&mut self, ns: &str, sa: &str) {
        let doomed: Vec<String> = self
            .store
            .list("/secrets", Some(ns))
            .filter(|(_, s)| s.get("type").and_then(Value::as_str) == Some(SA_TOKEN_TYPE))
            .filter(|(_, s)| s.pointer("/metadata/annotations").and_then(|a| a.get(SA_NAME_ANNOTATION)).and_then(Value::as_str) == Some(sa))
            .map(|((_, n), _)| n.clone())
            .collect();
        for n in doomed {
            self.store.delete("/secrets", ns, &n);
        }
    }

    pub fn count(&mut self, verb: &str, resource: &str) {
        *self.stats.requests.entry(format!("{verb} {resource}")).or_default() += 1;
    }
}
