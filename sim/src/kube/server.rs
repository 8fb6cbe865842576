//! HTTP(S) front end: authentication, `/api` + `/apis` (see api.rs), chunked watch streams,
//! and the `/_sim/*` control endpoints (JSON, no token, loopback peers only). Logs carry method,
//! path, status and the caller's user name — never a token or a request body.

use super::api::{self, ApiRequest, Outcome, WatchPlan};
use super::auth::Identity;
use super::clock;
use super::eks_token;
use super::state::Sim;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub type Shared = Arc<Mutex<Sim>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;
type Resp = Response<Body>;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct ServeOptions {
    pub listen: SocketAddr,
    pub plain_http: bool,
    pub admin_token: String,
    pub kubeconfig_out: Option<PathBuf>,
    pub tls_cert_out: Option<PathBuf>,
}

/// Everything a connection handler needs.
struct Ctx {
    sim: Shared,
    admin_token: String,
    /// Bumped by `/_sim/drop-watches`; every open watch aborts its connection when it changes.
    drop_watches: watch::Sender<u64>,
}

/// A response body fed by a channel: the watch stream. An `Err` item aborts the connection
/// mid-stream (no terminating chunk), which is what a client sees when an API server dies.
struct ChannelBody(mpsc::Receiver<Result<Frame<Bytes>, BoxError>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0.poll_recv(cx)
    }
}

fn full(status: u16, ctype: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert("content-type", ctype.parse().expect("static header"));
    r
}

fn json_resp(status: u16, v: &Value) -> Resp {
    full(status, "application/json", v.to_string())
}

/// Compares without an early exit, so response timing does not leak how much of a guess matched.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authenticate(ctx: &Ctx, sim: &Sim, header: Option<&str>) -> Option<Identity> {
    let token = header?.strip_prefix("Bearer ")?.trim();
    if token.is_empty() {
        return None;
    }
    if same_secret(token, &ctx.admin_token) {
        return Some(Identity::admin("kube-sim-admin"));
    }
    if token.starts_with(eks_token::PREFIX) {
        let cluster = sim.opts.eks_cluster.as_deref()?;
        return match eks_token::verify(token, clock::unix_now()) {
            Ok(_) => Some(Identity::admin(&format!("eks-admin@{cluster}"))),
            Err(why) => {
                tracing::info!(%why, "EKS token refused");
                None
            }
        };
    }
    sim.tokens.authenticate(token, &sim.store, clock::unix_now())
}

async fn handle(ctx: Arc<Ctx>, peer: SocketAddr, req: Request<Incoming>) -> Result<Resp, BoxError> {
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/_sim/") {
        if !peer.ip().is_loopback() {
            return Ok(json_resp(403, &json!({"error": "control endpoints answer loopback clients only"})));
        }
        return Ok(control(&ctx, rest, req).await);
    }
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let query: Vec<(String, String)> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(String::from);
    let (authz, content_type, accept) =
        (header("authorization"), header("content-type").unwrap_or_default(), header("accept").unwrap_or_default());
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(json_resp(413, &api::status(413, "RequestEntityTooLarge", "request body too large", None))),
    };
    let public = matches!(path.as_str(), "/version" | "/healthz" | "/readyz" | "/livez");
    let outcome = {
        let mut sim = ctx.sim.lock().expect("state lock");
        sim.stats.http_requests += 1;
        match authenticate(&ctx, &sim, authz.as_deref()) {
            None if path == "/healthz" || path == "/readyz" || path == "/livez" => Outcome::Reply(200, Value::String("ok".into())),
            None if !public => {
                sim.stats.unauthorized += 1;
                Outcome::Reply(401, api::status(401, "Unauthorized", "Unauthorized", None))
            }
            who => {
                let who = who.unwrap_or_else(|| Identity {
                    user: "system:anonymous".into(),
                    groups: vec!["system:unauthenticated".into()],
                    admin: false,
                });
                if path == "/healthz" || path == "/readyz" || path == "/livez" {
                    Outcome::Reply(200, Value::String("ok".into()))
                } else {
                    let r = ApiRequest {
                        method: &method,
                        path: &path,
                        query: &query,
                        content_type: &content_type,
                        accept: &accept,
                        body: &body,
                        who: &who,
                    };
                    tracing::debug!(%method, %path, %content_type, %accept, "request");
                    let o = api::handle(&mut sim, &r);
                    if let Outcome::Reply(code, _) | Outcome::Raw(code, _, _) = &o {
                        tracing::info!(%method, %path, user = %who.user, status = code, ms = started.elapsed().as_millis() as u64, "api");
                    } else {
                        tracing::info!(%method, %path, user = %who.user, "watch started");
                    }
                    o
                }
            }
        }
    };
    Ok(match outcome {
        Outcome::Reply(200, Value::String(s)) => full(200, "text/plain; charset=utf-8", s),
        Outcome::Reply(code, v) => json_resp(code, &v),
        Outcome::Raw(code, ctype, body) => full(code, ctype, body),
        Outcome::Watch(plan) => start_watch(&ctx, plan),
    })
}

fn start_watch(ctx: &Ctx, plan: WatchPlan) -> Resp {
    let (tx, rx) = mpsc::channel(64);
    let (drop_rx, interval, open) = {
        let sim = ctx.sim.lock().expect("state lock");
        (ctx.drop_watches.subscribe(), sim.opts.bookmark_interval, sim.watches_open.clone())
    };
    open.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        stream_watch(plan, tx, drop_rx, interval).await;
        open.fetch_sub(1, Ordering::SeqCst);
    });
    let mut r = Response::new(BodyExt::boxed(ChannelBody(rx)));
    r.headers_mut().insert("content-type", "application/json".parse().expect("static header"));
    r.headers_mut().insert("cache-control", "no-cache, private".parse().expect("static header"));
    r
}

fn line(v: &Value) -> Result<Frame<Bytes>, BoxError> {
    let mut s = v.to_string();
    s.push('\n');
    Ok(Frame::data(Bytes::from(s)))
}

/// Streams one watch: initial events, then matching live changes, bookmarks every `interval`
/// when asked for, until `timeoutSeconds`, the client leaves, or `/_sim/drop-watches`.
async fn stream_watch(
    plan: WatchPlan,
    tx: mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
    mut drop_rx: watch::Receiver<u64>,
    interval: std::time::Duration,
) {
    for ev in &plan.initial {
        if tx.send(line(ev)).await.is_err() {
            return;
        }
    }
    let Some(mut rx) = plan.rx else { return };
    let deadline = plan.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut last_rv = plan.start_rv;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => return,
            _ = drop_rx.changed() => {
                let _ = tx.send(Err("watch dropped by /_sim/drop-watches".into())).await;
                return;
            }
            _ = ticks.tick(), if plan.bookmarks => {
                if tx.send(line(&api::bookmark(plan.def, last_rv))).await.is_err() {
                    return;
                }
            }
            r = rx.recv() => match r {
                Ok(c) => {
                    if c.rv <= plan.start_rv {
                        continue;
                    }
                    last_rv = c.rv;
                    if let Some(ev) = plan.filter.deliver(&c)
                        && tx.send(line(&ev)).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow to follow: end abruptly; the client resumes from its last version.
                    let _ = tx.send(Err("watch fell behind".into())).await;
                    return;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tx.closed() => return,
        }
    }
}

async fn control(ctx: &Ctx, rest: &str, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let mut sim = ctx.sim.lock().expect("state lock");
    match (method.as_str(), rest) {
        ("GET", "stats") => {
            let mut v = serde_json::to_value(&sim.stats).expect("stats serialise");
            v["watches_open"] = json!(sim.watches_open.load(Ordering::SeqCst));
            v["resource_version"] = json!(sim.store.rv());
            v["history_floor"] = json!(sim.store.floor());
            v["history_len"] = json!(sim.store.history_len());
            v["objects"] = json!(sim.store.count());
            json_resp(200, &v)
        }
        ("POST", "reset") => {
            sim.reset();
            json_resp(200, &json!({"ok": true, "resource_version": sim.store.rv()}))
        }
        ("POST", "drop-watches") => {
            let n = sim.watches_open.load(Ordering::SeqCst);
            sim.stats.watches_dropped += n;
            ctx.drop_watches.send_modify(|g| *g += 1);
            json_resp(200, &json!({"ok": true, "dropped": n}))
        }
        ("POST", "compact") => {
            sim.store.compact();
            sim.stats.compactions += 1;
            json_resp(200, &json!({"ok": true, "resource_version": sim.store.rv(), "history_floor": sim.store.floor()}))
        }
        _ => json_resp(404, &json!({"error": format!("no control endpoint {method} /_sim/{rest}")})),
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A kubeconfig for the admin: one cluster (`kube-sim`), one user, one current context.
pub fn kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    let ca = if ca_pem.is_empty() { String::new() } else { format!("    certificate-authority-data: {}\n", b64(ca_pem)) };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {server}\n{ca}\
         contexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim-admin\n    namespace: default\n\
         current-context: kube-sim\nusers:\n- name: kube-sim-admin\n  user:\n    token: {token}\npreferences: {{}}\n"
    )
}

/// Writes a file readable by its owner only (it holds a token).
fn write_private(p: &PathBuf, contents: &str) -> Result<(), String> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(p).map_err(|e| format!("writing {}: {e}", p.display()))?;
    f.write_all(contents.as_bytes()).map_err(|e| format!("writing {}: {e}", p.display()))
}

/// TLS material generated before the state exists (the CA goes into token Secrets).
pub struct Tls {
    pub ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

pub fn generate_tls() -> Result<Tls, String> {
    let g = crate::panorama::tls::generate()?;
    Ok(Tls { ca_pem: g.ca_pem, acceptor: tokio_rustls::TlsAcceptor::from(g.config) })
}

/// Binds, writes `--tls-cert-out` / `--kubeconfig-out`, prints the ready line
/// (`kube-sim listening on <scheme>://<addr>`) and serves until the process is stopped.
pub async fn serve(sim: Shared, listener: TcpListener, tls: Option<Tls>, opts: ServeOptions) -> Result<(), String> {
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = format!("{scheme}://{local}");
    if let (Some(p), Some(t)) = (&opts.tls_cert_out, &tls) {
        std::fs::write(p, &t.ca_pem).map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    if let Some(p) = &opts.kubeconfig_out {
        write_private(p, &kubeconfig(&server, tls.as_ref().map_or("", |t| &t.ca_pem), &opts.admin_token))?;
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "kube-sim listening on {server}");
        let _ = out.flush();
    }
    let (drop_watches, _) = watch::channel(0u64);
    let ctx = Arc::new(Ctx { sim, admin_token: opts.admin_token, drop_watches });
    let acceptor = tls.map(|t| t.acceptor);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                continue;
            }
        };
        let ctx = ctx.clone();
        crate::net::spawn_connection(tcp, acceptor.clone(), move |req| handle(ctx.clone(), peer, req));
    }
}
