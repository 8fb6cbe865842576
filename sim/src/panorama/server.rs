//! HTTP(S) front end: `/api` and `/api/` for the XML API, `/_sim/*` for test control (JSON,
//! no API key; the sim binds only where told, loopback in every test). Logs never contain
//! keys, passwords, vm-auth-keys or request bodies.

use super::faults::Faults;
use super::state::{HeaderAuth, Params, PreFault, State};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;

pub type Shared = Arc<Mutex<State>>;

/// Largest request body accepted (bulk multi-configs can be tens of MB).
const MAX_BODY: usize = 256 * 1024 * 1024;

pub struct ServeOptions {
    pub listen: SocketAddr,
    pub plain_http: bool,
    pub tls_cert_out: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
}

/// The connection is closed without an answer (injected drop).
#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

type Resp = Response<Full<Bytes>>;

fn respond(status: u16, ctype: &str, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert("content-type", ctype.parse().expect("static header"));
    r
}

fn json(v: serde_json::Value) -> Resp {
    respond(200, "application/json", v.to_string())
}

fn b64decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for ch in s.chunks(4) {
        let mut n = 0u32;
        for (i, c) in ch.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..ch.len()]);
    }
    Some(out)
}

fn header_auth(req: &Request<Incoming>) -> HeaderAuth {
    let h = req.headers();
    let pan_key = h.get("x-pan-key").and_then(|v| v.to_str().ok()).map(String::from);
    let basic = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| b64decode(b.trim()))
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
    HeaderAuth { pan_key, basic }
}

async fn handle(state: Shared, opts: Arc<ServeOptions>, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let path = req.uri().path().to_string();
    if path == "/api" || path == "/api/" {
        return api(state, req).await;
    }
    if let Some(rest) = path.strip_prefix("/_sim/") {
        return Ok(control(state, &opts, rest.to_string(), req).await);
    }
    Ok(respond(404, "text/plain", "not found\n".into()))
}

async fn api(state: Shared, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let started = Instant::now();
    let method = req.method().clone();
    let auth = header_auth(&req);
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(respond(413, "text/plain", "request body too large\n".into())),
    };
    let (latency, fault) = state.lock().expect("state lock").pre_fault();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        PreFault::Drop => {
            tracing::info!(%method, "injected fault: dropping connection");
            return Err(Dropped);
        }
        PreFault::HttpError(s) => {
            tracing::info!(%method, status = s, "injected fault: HTTP error");
            return Ok(respond(s, "text/html", format!("<html><body><h1>{s} Service Unavailable</h1></body></html>\n")));
        }
        PreFault::Pass => {}
    }
    let mut params = Params::default();
    params.0.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    params.0.extend(form_urlencoded::parse(&body).into_owned());
    let (reply, ty, action) = {
        let mut st = state.lock().expect("state lock");
        st.stats.bytes_in += (body.len() + query.len()) as u64;
        let r = st.handle(&params, &auth, Instant::now());
        st.stats.bytes_out += r.body.len() as u64;
        (r, params.get("type").unwrap_or("").to_string(), params.get("action").unwrap_or("").to_string())
    };
    // Only non-secret fields are logged: never key, password, element, cmd or the body.
    tracing::info!(%method, r#type = %ty, %action, status = reply.status, ms = started.elapsed().as_millis() as u64, "api");
    let mut resp = respond(reply.status, "application/xml; charset=UTF-8", reply.body);
    if let Some(reason) = reply.reason {
        resp.extensions_mut().insert(hyper::ext::ReasonPhrase::from_static(reason.as_bytes()));
    }
    Ok(resp)
}

async fn control(state: Shared, opts: &ServeOptions, rest: String, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return respond(413, "text/plain", "request body too large\n".into()),
    };
    let q: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let qget = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let now = Instant::now();
    let mut st = state.lock().expect("state lock");
    st.tick(now);
    let bad = |m: String| respond(400, "application/json", serde_json::json!({"error": m}).to_string());
    match (method.as_str(), rest.as_str()) {
        ("GET", "stats") => json(serde_json::to_value(&st.stats).expect("stats serialise")),
        ("POST", "stats/reset") => {
            st.stats = Default::default();
            json(serde_json::json!({"ok": true}))
        }
        ("GET", "config") => {
            let which = qget("which").unwrap_or("candidate");
            let tree = match which {
                "candidate" => &st.candidate,
                "running" => &st.running,
                _ => return bad(format!("which must be candidate or running, not {which}")),
            };
            let mut s = String::new();
            tree.write_xml(&mut s, which == "candidate");
            respond(200, "application/xml; charset=UTF-8", s)
        }
        ("POST", "reset") => {
            st.reset();
            json(serde_json::json!({"ok": true}))
        }
        ("GET", "faults") => json(serde_json::to_value(&st.faults).expect("faults serialise")),
        ("POST", "faults") => {
            // Merge: fields present in the body replace the current values.
            let mut cur = serde_json::to_value(&st.faults).expect("faults serialise");
            let patch: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return bad(format!("invalid JSON: {e}")),
            };
            let (Some(c), Some(p)) = (cur.as_object_mut(), patch.as_object()) else {
                return bad("body must be a JSON object".into());
            };
            for (k, v) in p {
                c.insert(k.clone(), v.clone());
            }
            if let Some(v) = c.get("partial_xpath_commit").and_then(|v| v.as_str())
                && !matches!(v, "sweep" | "left-behind")
            {
                return bad(format!("partial_xpath_commit must be \"sweep\" or \"left-behind\", not {v:?}"));
            }
            match serde_json::from_value::<Faults>(cur) {
                Ok(f) => {
                    st.set_faults(f);
                    json(serde_json::to_value(&st.faults).expect("faults serialise"))
                }
                Err(e) => bad(format!("invalid faults: {e}")),
            }
        }
        ("POST", "membership") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct M {
                device_group: Option<String>,
                template_stack: Option<String>,
                serials: Option<Vec<String>>,
            }
            match serde_json::from_slice::<M>(&body) {
                Ok(m) => {
                    st.add_membership(m.device_group.as_deref(), m.template_stack.as_deref(), m.serials);
                    json(serde_json::json!({"ok": true}))
                }
                Err(e) => bad(format!("invalid membership: {e}")),
            }
        }
        ("POST", "devices") => match serde_json::from_slice::<Vec<super::state::Device>>(&body) {
            Ok(d) => {
                st.set_devices(d);
                json(serde_json::to_value(&st.opts.devices).expect("devices serialise"))
            }
            Err(e) => bad(format!("invalid devices: {e}")),
        },
        ("GET", "devices") => json(serde_json::to_value(&st.opts.devices).expect("devices serialise")),
        ("GET", r) if r.starts_with("devices/") && r.ends_with("/running") => {
            let serial = &r["devices/".len()..r.len() - "/running".len()];
            if !st.opts.devices.iter().any(|d| d.serial == serial) {
                return respond(404, "application/json", serde_json::json!({"error": format!("no device {serial}")}).to_string());
            }
            let xml = st.runs.get(serial).map(|r| r.running_xml()).unwrap_or_else(|| "<config/>".into());
            respond(200, "application/xml; charset=UTF-8", xml)
        }
        ("GET", "dns") => json(serde_json::to_value(&st.dns).expect("dns serialise")),
        ("POST", "dns") => match serde_json::from_slice::<std::collections::BTreeMap<String, Vec<String>>>(&body) {
            Ok(m) => {
                st.dns = m;
                json(serde_json::to_value(&st.dns).expect("dns serialise"))
            }
            Err(e) => bad(format!("dns must be an object of name -> [address]: {e}")),
        },
        ("GET", "jobs") => json(st.jobs_json(now)),
        ("GET", "writes") => json(serde_json::Value::Array(st.writes.clone())),
        ("POST", "writes/reset") => {
            st.reset_writes();
            json(serde_json::json!({"ok": true}))
        }
        ("POST", "rotate-keys") => {
            st.rotate_keys();
            json(serde_json::json!({"ok": true}))
        }
        ("POST", "save") => match &opts.state_file {
            Some(p) => match std::fs::write(p, st.to_state_xml()) {
                Ok(()) => json(serde_json::json!({"ok": true, "path": p})),
                Err(e) => respond(500, "application/json", serde_json::json!({"error": e.to_string()}).to_string()),
            },
            None => bad("no --state file configured".into()),
        },
        _ => {
            respond(404, "application/json", serde_json::json!({"error": format!("no control endpoint {method} /_sim/{rest}")}).to_string())
        }
    }
}

/// Binds, prints the ready line (`panorama-sim listening on <scheme>://<addr>`) and serves
/// until the process is stopped.
pub async fn serve(state: Shared, opts: ServeOptions) -> Result<(), String> {
    let tls = if opts.plain_http {
        None
    } else {
        let g = super::tls::generate()?;
        if let Some(p) = &opts.tls_cert_out {
            std::fs::write(p, &g.ca_pem).map_err(|e| format!("writing {}: {e}", p.display()))?;
        }
        Some(tokio_rustls::TlsAcceptor::from(g.config))
    };
    let listener = TcpListener::bind(opts.listen).await.map_err(|e| format!("binding {}: {e}", opts.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "panorama-sim listening on {scheme}://{local}");
        let _ = out.flush();
    }
    let opts = Arc::new(opts);
    loop {
        let (tcp, _peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                continue;
            }
        };
        let (state, opts) = (state.clone(), opts.clone());
        crate::net::spawn_connection(tcp, tls.clone(), move |req| handle(state.clone(), opts.clone(), req));
    }
}
