//! The PAN-OS XML API transport: POST form bodies to `/api/`, the key in the `X-PAN-KEY`
//! header (never in a URL or a log), TLS verified against the system roots or a pinned CA,
//! at most `max_in_flight` calls at once (PAN-OS asks for ≤ 5), timeouts, and retries with
//! capped exponential backoff and full jitter on transport errors and HTTP 5xx.
//! It observes and applies; it decides nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::xml::{self, Element};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://host[:port]`; `/api/` is appended.
    pub url: String,
    pub ca_cert: Option<PathBuf>,
    /// Skip certificate verification: only by an explicit flag, and loudly.
    pub insecure: bool,
    pub timeout: Duration,
    pub max_in_flight: usize,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            ca_cert: None,
            insecure: false,
            timeout: Duration::from_secs(60),
            max_in_flight: 5,
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, base: Duration::from_millis(200), cap: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// Full jitter: a random wait in [0, min(cap, base·2^attempt)].
    fn backoff(&self, attempt: u32, rng: &mut u64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.cap);
        // xorshift64: jitter only needs to decorrelate clients, not to be unpredictable.
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        exp.mul_f64((*rng % 10_000) as f64 / 10_000.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PanosError {
    #[error("cannot reach Panorama at {url}: {msg}")]
    Transport { url: String, msg: String },
    #[error("Panorama refused the credentials (HTTP 403): {0}")]
    Auth(String),
    #[error("Panorama answered HTTP {status}: {msg}")]
    Http { status: u16, msg: String },
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    CommitInProgress(String),
    #[error("Panorama error{}: {msg}", code.map(|c| format!(" {c}")).unwrap_or_default())]
    Api { code: Option<u32>, msg: String },
    /// A multi-config batch refused by one of its sub-operations (`op`: its 0-based index when
    /// Panorama's inner responses name it). All-or-nothing: nothing of the batch was applied.
    #[error("Panorama refused a multi-config batch{}: {msg}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    MultiConfigRefused { op: Option<usize>, code: Option<u32>, msg: String },
    /// Panorama refused multi-config itself (PAN-OS 9.x: unknown action; 10.0: not enabled).
    #[error("Panorama does not accept multi-config: {0}")]
    MultiConfigUnavailable(String),
    #[error("unreadable answer from Panorama: {0}")]
    Parse(String),
    #[error("{0}")]
    Setup(String),
}

impl PanosError {
    fn retryable(&self) -> bool {
        matches!(self, PanosError::Transport { .. } | PanosError::Http { status: 500..=599, .. })
    }
}

/// Counters for benchmarks and `status`: what this client sent.
#[derive(Debug, Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub write_calls: AtomicU64,
    pub retries: AtomicU64,
}

/// The API key in use and, with password credentials, how to make a new one. A keygen ends the
/// admin's other keys (facts §11.3), so a 403 on a key we generated gets exactly one new keygen
/// per 403 event (concurrent calls that saw the same key share it) and one retry.
#[derive(Default)]
struct Auth {
    /// (key, generation): the generation grows with every keygen of ours.
    key: std::sync::RwLock<(Option<Secret>, u64)>,
    /// Password credentials: `None` for a configured API key (a 403 is then final).
    login: Option<(String, Secret)>,
    /// Serializes re-keygens.
    rekey: tokio::sync::Mutex<()>,
    keygens: AtomicU64,
}

impl Auth {
    fn current(&self) -> (Option<Secret>, u64) {
        self.key.read().expect("not poisoned").clone()
    }
}

#[derive(Clone)]
pub struct PanoramaClient {
    http: reqwest::Client,
    endpoint: String,
    auth: Arc<Auth>,
    limiter: Arc<Semaphore>,
    retry: RetryPolicy,
    pub stats: Arc<CallStats>,
}

impl std::fmt::Debug for PanoramaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanoramaClient").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// Installs ring as the process's one rustls provider (idempotent). kube, reqwest and the AWS
/// SDK all use rustls; with more than one provider compiled in, rustls panics unless one is chosen.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl PanoramaClient {
    pub fn new(cfg: &ClientConfig) -> Result<PanoramaClient, PanosError> {
        install_crypto_provider();
        let base = cfg.url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(PanosError::Setup(format!("Panorama URL {base} must start with https://")));
        }
        let mut b = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(cfg.max_in_flight);
        if let Some(ca) = &cfg.ca_cert {
            let pem = std::fs::read(ca).map_err(|e| PanosError::Setup(format!("cannot read CA file {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| PanosError::Setup(format!("{} is not a PEM certificate: {e}", ca.display())))?;
            // A pinned CA replaces the system roots: Panorama's certificate must chain to it.
            b = b.tls_certs_only([cert]);
        }
        if cfg.insecure {
            tracing::warn!("TLS certificate verification of Panorama is DISABLED (--insecure)");
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b.build().map_err(|e| PanosError::Setup(format!("HTTP client: {e}")))?;
        Ok(PanoramaClient {
            http,
            endpoint: format!("{base}/api/"),
            auth: Arc::new(Auth::default()),
            limiter: Arc::new(Semaphore::new(cfg.max_in_flight.max(1))),
            retry: cfg.retry,
            stats: Arc::new(CallStats::default()),
        })
    }

    /// Uses a configured API key. A 403 is final: pano-eks cannot make another one.
    pub fn with_key(mut self, key: Secret) -> PanoramaClient {
        self.auth = Arc::new(Auth { key: std::sync::RwLock::new((Some(key), 0)), ..Auth::default() });
        self
    }

    /// Generates a key for `user` once per process and Panorama: every client logging in to the
    /// same endpoint as the same user (with the same password) shares it, since each keygen ends
    /// the other keys. A 403 on it later gets one new keygen and a retry (see [`Auth`]).
    pub async fn login(mut self, user: &str, password: Secret) -> Result<PanoramaClient, PanosError> {
        static LOGINS: tokio::sync::Mutex<Vec<(String, Arc<Auth>)>> = tokio::sync::Mutex::const_new(Vec::new());
        let mut logins = LOGINS.lock().await;
        let same = |a: &Auth| a.login.as_ref().is_some_and(|(u, p)| u == user && p.expose() == password.expose());
        if let Some((_, auth)) = logins.iter().find(|(e, a)| *e == self.endpoint && same(a)) {
            self.auth = auth.clone();
            return Ok(self);
        }
        let key = self.keygen(user, &password).await?;
        self.auth = Arc::new(Auth {
            key: std::sync::RwLock::new((Some(key), 1)),
            login: Some((user.to_owned(), password)),
            keygens: AtomicU64::new(1),
            ..Auth::default()
        });
        logins.push((self.endpoint.clone(), self.auth.clone()));
        Ok(self)
    }

    /// Keygens made for this client's login in this process (the first included).
    pub fn keygens(&self) -> u64 {
        self.auth.keygens.load(Ordering::Relaxed)
    }

    /// After a 403 on the key of generation `seen`: a new key, unless a concurrent call already
    /// made one since (then that one is used). `Err` when there is no password to make one with.
    async fn rekey(&self, seen: u64, msg: &str) -> Result<(), PanosError> {
        let Some((user, password)) = &self.auth.login else {
            return Err(PanosError::Auth(format!(
                "{msg}: Panorama refused the configured API key (panorama.api_key_env). It was revoked or replaced: a keygen for \
                 the same administrator by anyone ends its other keys. Generate a new key for pano-eks's dedicated administrator"
            )));
        };
        let _one = self.auth.rekey.lock().await;
        if self.auth.current().1 != seen {
            return Ok(());
        }
        tracing::warn!(admin = %user, "Panorama refused our API key (HTTP 403): generating a new one, once");
        let key = self.keygen(user, password).await?;
        self.auth.keygens.fetch_add(1, Ordering::Relaxed);
        *self.auth.key.write().expect("not poisoned") = (Some(key), seen + 1);
        Ok(())
    }

    /// `type=keygen`: trades a username and password for an API key.
    pub async fn keygen(&self, user: &str, password: &Secret) -> Result<Secret, PanosError> {
        // Straight to the transport: a keygen's own 403 is a bad password, never a reason to re-key.
        let r =
            self.call_retrying(&[("type", "keygen"), ("user", user), ("password", password.expose())], false, &mut 0, &mut None).await?;
        r.text_at("result/key")
            .filter(|k| !k.is_empty())
            .map(Secret::new)
            .ok_or_else(|| PanosError::Parse("keygen answer holds no result/key".into()))
    }

    /// `action=get` (candidate config). `None` when the node does not exist (code 7).
    pub async fn get(&self, xpath: &str) -> Result<Option<Element>, PanosError> {
        let mut r = self.call(&[("type", "config"), ("action", "get"), ("xpath", xpath)], false).await?;
        if r.get_attr("code") == Some("7") {
            return Ok(None);
        }
        Ok(r.take("result"))
    }

    /// `get` (candidate) or `show` (running) of `xpath`, each `<entry>` at `depth` of the answer
    /// (`response` is 1) handed to `each` as it is parsed, never the whole answer as one tree.
    /// False when the node does not exist.
    pub async fn read_entries(
        &self,
        running: bool,
        xpath: &str,
        depth: usize,
        each: &mut (dyn FnMut(Element) + Send),
    ) -> Result<bool, PanosError> {
        let action = if running { "show" } else { "get" };
        match self.call_with(&[("type", "config"), ("action", action), ("xpath", xpath)], false, Some((depth, each))).await {
            Ok(r) => Ok(r.get_attr("code") != Some("7")),
            Err(PanosError::Api { msg, .. }) if running && msg.contains("No such node") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `action=show` (running config). `None` when the node does not exist.
    pub async fn show(&self, xpath: &str) -> Result<Option<Element>, PanosError> {
        match self.call(&[("type", "config"), ("action", "show"), ("xpath", xpath)], false).await {
            Ok(r) if r.get_attr("code") == Some("7") => Ok(None),
            Ok(mut r) => Ok(r.take("result")),
            Err(PanosError::Api { msg, .. }) if msg.contains("No such node") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `action=edit`: replaces the node at `xpath` with `element` (idempotent, so safe to retry).
    pub async fn edit(&self, xpath: &str, element: &Element) -> Result<(), PanosError> {
        let el = element.to_xml();
        self.call(&[("type", "config"), ("action", "edit"), ("xpath", xpath), ("element", &el)], true).await.map(drop)
    }

    /// `action=set`: merges `element` (may hold several siblings) under `xpath`.
    pub async fn set(&self, xpath: &str, element_xml: &str) -> Result<(), PanosError> {
        self.call(&[("type", "config"), ("action", "set"), ("xpath", xpath), ("element", element_xml)], true).await.map(drop)
    }

    /// `action=delete`; a node that is already gone is success (code 7).
    pub async fn delete(&self, xpath: &str) -> Result<(), PanosError> {
        self.call(&[("type", "config"), ("action", "delete"), ("xpath", xpath)], true).await.map(drop)
    }

    /// `action=move`: puts the rule at `xpath` at `where_` (top, bottom, before/after `dst`).
    pub async fn move_entry(&self, xpath: &str, where_: &str, dst: Option<&str>) -> Result<(), PanosError> {
        let mut params = vec![("type", "config"), ("action", "move"), ("xpath", xpath), ("where", where_)];
        if let Some(d) = dst {
            params.push(("dst", d));
        }
        self.call(&params, true).await.map(drop)
    }

    /// `action=multi-config`: all sub-operations or none. On failure the error names the
    /// failing sub-operation's index.
    pub async fn multi_config(&self, ops: &[MultiOp]) -> Result<(), PanosError> {
        let mut root = Element::new("multi-configure-request");
        for (i, op) in ops.iter().enumerate() {
            let mut e = Element::new(op.action.as_str()).attr("id", (i + 1).to_string()).attr("xpath", op.xpath.clone());
            // A move's sub-operation carries `where` and `dst` as attributes (facts §7).
            if let MultiAction::Move { where_, dst } = &op.action {
                e = e.attr("where", *where_);
                if let Some(d) = dst {
                    e = e.attr("dst", d.clone());
                }
            }
            if let Some(el) = &op.element {
                e = e.child(el.clone());
            }
            root = root.child(e);
        }
        let body = root.to_xml();
        match self.call(&[("type", "config"), ("action", "multi-config"), ("element", &body)], true).await {
            Ok(_) => Ok(()),
            // An error with no inner response: the request as a whole was refused, not one of
            // its sub-operations (a 10.0 Panorama without `request multi-config enabled`). 9.x
            // rejects the action parameter itself with HTTP 400.
            Err(PanosError::Api { msg, .. }) => Err(PanosError::MultiConfigUnavailable(msg)),
            Err(PanosError::Http { status: 400, msg }) => Err(PanosError::MultiConfigUnavailable(format!("HTTP 400: {msg}"))),
            Err(e) => Err(e),
        }
    }

    /// `type=op` with an XML command; the `result` element.
    pub async fn op(&self, cmd: &Element) -> Result<Element, PanosError> {
        let c = cmd.to_xml();
        let r = self.call(&[("type", "op"), ("cmd", &c)], false).await?;
        Ok(r.find("result").cloned().unwrap_or_default())
    }

    /// `type=op&target=SERIAL`: Panorama proxies the command to that managed firewall, which
    /// answers from its own running config (PAN-OS XML API "Target a managed firewall": pango
    /// `xmlapi` sets `target` on any op; pan-os-python does for a `Firewall(serial=..)` attached
    /// to a `Panorama`). Same `result` element as [`Self::op`].
    pub async fn op_on(&self, serial: &str, cmd: &Element) -> Result<Element, PanosError> {
        let c = cmd.to_xml();
        let r = self.call(&[("type", "op"), ("target", serial), ("cmd", &c)], false).await?;
        Ok(r.find("result").cloned().unwrap_or_default())
    }

    /// `type=commit` (`action` = `all` for a push). `None` when there was nothing to commit.
    pub async fn commit(&self, cmd: &Element, action: Option<&str>) -> Result<Option<u64>, PanosError> {
        let c = cmd.to_xml();
        let mut params = vec![("type", "commit"), ("cmd", c.as_str())];
        if let Some(a) = action {
            params.push(("action", a));
        }
        // Retried like any call: if a lost answer hid an enqueued job, the repeat is a partial
        // commit with nothing left ("no changes") or a second push of the same config: harmless.
        let r = self.call(&params, true).await?;
        if let Some(job) = r.text_at("result/job") {
            return job.parse().map(Some).map_err(|_| PanosError::Parse(format!("job id `{job}`")));
        }
        let msg = message(&r);
        if msg.contains("no changes to commit") || msg.contains("no changes") || msg.contains("nothing to") {
            return Ok(None);
        }
        Err(PanosError::Parse(format!("commit answer holds no job id: {msg}")))
    }

    async fn call(&self, params: &[(&str, &str)], write: bool) -> Result<Element, PanosError> {
        self.call_with(params, write, None).await
    }

    /// With `stream`, the answer's `<entry>` elements at that depth go to the callback (only a
    /// complete, successful HTTP answer is parsed, so a retried call never hands any twice).
    async fn call_with(&self, params: &[(&str, &str)], write: bool, mut stream: Stream<'_>) -> Result<Element, PanosError> {
        // The generation of the key the refused request actually carried (read at send time,
        // after waiting for an in-flight slot), so a 403 on a newer key is a new 403 event.
        let mut seen = 0;
        match self.call_retrying(params, write, &mut seen, &mut stream).await {
            // A 403 on a key: one new keygen (shared with concurrent calls that saw the same key)
            // and one retry; a second 403 is final.
            Err(PanosError::Auth(msg)) => {
                self.rekey(seen, &msg).await?;
                match self.call_retrying(params, write, &mut seen, &mut stream).await {
                    Err(PanosError::Auth(msg)) => Err(PanosError::Auth(format!(
                        "{msg}: Panorama refused a freshly generated API key for administrator {}. Another process generating keys \
                         for the same administrator is the usual cause (each keygen ends the administrator's other keys). Give \
                         pano-eks a dedicated administrator, or configure an API key (panorama.api_key_env)",
                        self.auth.login.as_ref().map(|(u, _)| u.as_str()).unwrap_or("?")
                    ))),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// `used` is set to the generation of the key the last attempt carried.
    async fn call_retrying(
        &self,
        params: &[(&str, &str)],
        write: bool,
        used: &mut u64,
        stream: &mut Stream<'_>,
    ) -> Result<Element, PanosError> {
        let mut rng = seed();
        let mut attempt = 0;
        loop {
            match self.call_once(params, write, used, stream).await {
                Err(e) if e.retryable() && attempt + 1 < self.retry.attempts => {
                    let wait = self.retry.backoff(attempt, &mut rng);
                    tracing::debug!(error = %e, ?wait, attempt, "retrying Panorama call");
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &self,
        params: &[(&str, &str)],
        write: bool,
        used: &mut u64,
        stream: &mut Stream<'_>,
    ) -> Result<Element, PanosError> {
        let _permit = self.limiter.acquire().await.expect("semaphore never closed");
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        if write {
            self.stats.write_calls.fetch_add(1, Ordering::Relaxed);
        }
        let mut req = self.http.post(&self.endpoint).form(params);
        let kind = params.iter().find(|(k, _)| *k == "type").map(|(_, v)| *v).unwrap_or("?");
        // A keygen authenticates with user and password alone: never with the (refused) old key.
        let (key, generation) = self.auth.current();
        *used = generation;
        if kind != "keygen"
            && let Some(k) = key
        {
            req = req.header("X-PAN-KEY", k.expose());
        }
        let action = params.iter().find(|(k, _)| *k == "action").map(|(_, v)| *v).unwrap_or("");
        tracing::trace!(kind, action, "Panorama call");
        let resp = req.send().await.map_err(|e| PanosError::Transport { url: self.endpoint.clone(), msg: error_chain(&e) })?;
        let status = resp.status().as_u16();
        let body = body_text(resp).await.map_err(|e| PanosError::Transport { url: self.endpoint.clone(), msg: error_chain(&e) })?;
        let parsed = match stream {
            Some((depth, each)) if status < 400 => xml::parse_entries(&body, Some(*depth), &mut **each),
            _ => xml::parse(&body),
        };
        if status == 403 {
            let msg = parsed.as_ref().map(message).unwrap_or_default();
            return Err(PanosError::Auth(if msg.is_empty() { "Invalid Credential".into() } else { msg }));
        }
        if status >= 400 {
            let msg = parsed.as_ref().map(message).unwrap_or_else(|_| format!("{} bytes of non-XML", body.len()));
            return Err(PanosError::Http { status, msg });
        }
        let mut r = parsed.map_err(|e| PanosError::Parse(e.to_string()))?;
        xml::strip_whitespace(&mut r);
        if r.name != "response" {
            return Err(PanosError::Parse(format!("expected <response>, got <{}>", r.name)));
        }
        match r.get_attr("status") {
            Some("success") => Ok(r),
            Some("error") => Err(classify(&r)),
            other => Err(PanosError::Parse(format!("response status {other:?}"))),
        }
    }
}

/// The answer's body as text, gathered chunk by chunk into one buffer: a large read (16,000 NAT
/// rules are ~14 MB) is held once, not as its chunks plus a contiguous copy plus a decoded copy
/// (`Response::text`). PAN-OS answers UTF-8; anything else is decoded lossily, as `text` would.
async fn body_text(mut resp: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut buf = Vec::with_capacity(resp.content_length().unwrap_or(0).min(64 << 20) as usize);
    while let Some(chunk) = resp.chunk().await? {
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Where a read hands its entries as they are parsed: (depth in the answer, callback).
type Stream<'a> = Option<(usize, &'a mut (dyn FnMut(Element) + Send))>;

/// One sub-operation of a multi-config request.
#[derive(Debug, Clone)]
pub struct MultiOp {
    pub action: MultiAction,
    pub xpath: String,
    pub element: Option<Element>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiAction {
    /// Merge `element` (a container holding many entries) into the node at `xpath`.
    Set,
    Edit,
    Delete,
    /// Reorder the rule at `xpath`: `where` top | bottom | before | after, `dst` the other rule.
    Move {
        where_: &'static str,
        dst: Option<String>,
    },
}

impl MultiAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            MultiAction::Set => "set",
            MultiAction::Edit => "edit",
            MultiAction::Delete => "delete",
            MultiAction::Move { .. } => "move",
        }
    }
}

/// The error text of a response, joined from whichever shape it came in
/// (`msg`, `msg/line*`, `result/msg`, and for multi-config the last inner response).
pub fn message(r: &Element) -> String {
    if let Some(inner) = r.elements().filter(|e| e.name == "response").last() {
        let m = message(inner);
        if !m.is_empty() {
            let id = inner.get_attr("id").map(|i| format!("operation {i}: ")).unwrap_or_default();
            return format!("{id}{m}");
        }
    }
    let msg = r.find("msg").or_else(|| r.path("result/msg"));
    match msg {
        Some(m) => {
            let lines: Vec<String> =
                m.elements().filter(|l| l.name == "line").map(Element::text_content).filter(|s| !s.is_empty()).collect();
            if lines.is_empty() { m.text_content() } else { lines.join("; ") }
        }
        None => String::new(),
    }
}

fn classify(r: &Element) -> PanosError {
    let msg = message(r);
    let lower = msg.to_lowercase();
    let code = r.get_attr("code").and_then(|c| c.parse().ok());
    if lower.contains("is currently locked")
        || lower.contains("configuration is locked by")
        || lower.contains("commit lock is already held")
    {
        PanosError::Locked(msg)
    } else if lower.contains("commit is in progress") || lower.contains("another commit/validate is in progress") {
        PanosError::CommitInProgress(msg)
    } else if r.elements().any(|e| e.name == "response") {
        // multi-config: inner responses up to and including the failing one (facts §2).
        let failing = r.elements().filter(|e| e.name == "response").find(|e| e.get_attr("status") == Some("error"));
        let op = failing.and_then(|e| e.get_attr("id")).and_then(|id| id.parse::<usize>().ok()).and_then(|id| id.checked_sub(1));
        let code = failing.and_then(|e| e.get_attr("code")).and_then(|c| c.parse().ok()).or(code);
        let msg = failing.map(message).filter(|m| !m.is_empty()).unwrap_or(msg);
        PanosError::MultiConfigRefused { op, code, msg }
    } else {
        PanosError::Api { code, msg }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    (t ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_every_envelope_shape() {
        let cases = [
            ("<response status='error' code='403'><result><msg>Invalid Credential</msg></result></response>", "Invalid Credential"),
            (
                "<response status='error' code='12'><msg><line>a -> b is invalid</line><line>b is invalid</line></msg></response>",
                "a -> b is invalid; b is invalid",
            ),
            (
                "<response status='error' code='13'><response status='success' code='20' id='1'><msg>command succeeded</msg></response><response status='error' code='12' id='2'><msg><line><![CDATA[ x unexpected here]]></line></msg></response></response>",
                "operation 2: x unexpected here",
            ),
        ];
        for (xml_text, want) in cases {
            let r = xml::parse(xml_text).unwrap();
            assert_eq!(message(&r), want);
        }
    }

    #[test]
    fn a_refused_multi_config_names_its_failing_sub_operation() {
        let r = xml::parse(
            "<response status='error' code='13'><response status='success' code='20' id='1'><msg>command succeeded</msg></response><response status='error' code='12' id='2'><msg><line><![CDATA[ x unexpected here]]></line></msg></response></response>",
        )
        .unwrap();
        match classify(&r) {
            PanosError::MultiConfigRefused { op, code, msg } => {
                assert_eq!((op, code, msg.as_str()), (Some(1), Some(12), "x unexpected here"))
            }
            other => panic!("{other:?}"),
        }
        // Without inner responses it is an ordinary error (multi_config() reads it as "refused
        // multi-config itself").
        let r = xml::parse("<response status='error' code='12'><msg><line>multi-config is not enabled</line></msg></response>").unwrap();
        assert!(matches!(classify(&r), PanosError::Api { .. }));
    }

    #[test]
    fn lock_and_commit_texts_are_classified() {
        let r = xml::parse("<response status='error'><msg><line>Configuration is locked by admin2</line></msg></response>").unwrap();
        assert!(matches!(classify(&r), PanosError::Locked(_)));
        let r = xml::parse("<response status='error'><msg>A commit is in progress. Please try again later</msg></response>").unwrap();
        assert!(matches!(classify(&r), PanosError::CommitInProgress(_)));
        let r = xml::parse("<response status='error' code='12'><msg>bad</msg></response>").unwrap();
        assert!(matches!(classify(&r), PanosError::Api { code: Some(12), .. }));
    }

    /// A Panorama stand-in on plain HTTP whose keys never work: keygen succeeds (counted), every
    /// other call answers 403. Returns the URL and the keygen counter.
    async fn always_403() -> (String, Arc<AtomicU64>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keygens = Arc::new(AtomicU64::new(0));
        let count = keygens.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Headers, then Content-Length bytes of form body.
                    let body = loop {
                        let Ok(n) = sock.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                break body.to_string();
                            }
                        }
                    };
                    let (status, xml) = if body.contains("type=keygen") {
                        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                        ("200 OK", format!("<response status = 'success'><result><key>KEY{n}</key></result></response>"))
                    } else {
                        (
                            "403 Forbidden",
                            "<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>".into(),
                        )
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                        xml.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        (url, keygens)
    }

    #[tokio::test]
    async fn a_403_gets_one_new_keygen_and_one_retry_then_a_clear_error_never_a_loop() {
        let (url, keygens) = always_403().await;
        let client = PanoramaClient::new(&ClientConfig::new(&url)).unwrap().login("pano-eks", Secret::new("pw-secret")).await.unwrap();
        assert_eq!(keygens.load(Ordering::SeqCst), 1);
        // Five concurrent calls all see the same refused key: one keygen between them.
        let clock = Element::new("show").child(Element::new("clock"));
        let calls = (0..5).map(|_| client.op(&clock));
        let results = futures::future::join_all(calls).await;
        assert_eq!(keygens.load(Ordering::SeqCst), 2, "one keygen per 403 event, however many calls saw it");
        assert_eq!(client.keygens(), 2);
        for r in results {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("Another process generating keys for the same administrator"), "{e}");
            assert!(e.contains("dedicated administrator") && !e.contains("pw-secret") && !e.contains("KEY"), "{e}");
        }
        // A later call is a new 403 event: one more keygen, still no loop.
        assert!(client.get("/config/shared").await.is_err());
        assert_eq!(keygens.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_403_on_a_configured_api_key_is_final_and_says_why() {
        let (url, keygens) = always_403().await;
        let client = PanoramaClient::new(&ClientConfig::new(&url)).unwrap().with_key(Secret::new("LUFRPT-configured"));
        let e = client.get("/config/shared").await.unwrap_err().to_string();
        assert_eq!(keygens.load(Ordering::SeqCst), 0, "no password: no keygen");
        assert!(e.contains("configured API key") && e.contains("dedicated administrator"), "{e}");
        assert!(!e.contains("LUFRPT-configured"), "{e}");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy { attempts: 10, base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        let mut rng = 42;
        let waits: Vec<Duration> = (0..10).map(|a| p.backoff(a, &mut rng)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(1)));
        assert!(waits.windows(2).any(|w| w[0] != w[1]), "jittered: {waits:?}");
    }
}
