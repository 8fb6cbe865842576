//! The whole simulated Panorama behind one lock: candidate and running trees, per-admin change
//! tracking, API keys, jobs, locks, faults and counters.

use super::config::{self, Txn, WriteOp};
use super::faults::{Faults, Rng};
use super::jobs::{Effect, Job, JobDevice, JobKind, Phase, Shells, civil, fmt_time};
use super::locks::Locks;
use super::response::ApiError;
use super::schema::LD;
use super::xml_tree::{Key, Node};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

/// A managed firewall as `show devices` reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Device {
    pub serial: String,
    pub hostname: String,
    #[serde(rename = "ip", alias = "ip-address")]
    pub ip: String,
    #[serde(default = "default_model")]
    pub model: String,
    #[serde(default = "default_fw_version")]
    pub sw_version: String,
    #[serde(default = "yes")]
    pub connected: bool,
    /// Data-plane interfaces; empty = the generated defaults (see `dataplane::default_interfaces`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<super::dataplane::Interface>,
    /// What `show system info` reports as memory (default 8192).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

fn default_model() -> String {
    "PA-VM".into()
}
fn default_fw_version() -> String {
    "10.2.9".into()
}
fn yes() -> bool {
    true
}

impl Device {
    /// The Nth generated device (1-based): serial 0079000000NN, host fw-NN, IP 10.0.0.(10+N).
    pub fn generated(i: usize) -> Device {
        Device {
            serial: format!("00790{:07}", i),
            hostname: format!("fw-{i:02}"),
            ip: format!("10.{}.{}.{}", (10 + i) / 65536 % 256, (10 + i) / 256 % 256, (10 + i) % 256),
            model: default_model(),
            sw_version: default_fw_version(),
            connected: true,
            interfaces: super::dataplane::default_interfaces(i),
            memory_mb: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub admins: Vec<(String, String)>,
    pub devices: Vec<Device>,
    /// Make every device a member of this DG / template stack at start (and after reset).
    pub devices_in_dg: Option<String>,
    pub devices_in_stack: Option<String>,
    pub sw_version: String,
    pub job_step: Duration,
    pub act_steps: u32,
    pub seed: u64,
    pub faults: Faults,
    pub dirty_attrs: bool,
    pub hostname: String,
    /// Panorama's configured timezone as an offset from UTC in minutes (`show clock`,
    /// `show system info` time, vm-auth-key expiry are printed in it).
    pub tz_offset_min: i32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            admins: vec![("admin".into(), "admin".into())],
            devices: vec![],
            devices_in_dg: None,
            devices_in_stack: None,
            sw_version: "10.2.9".into(),
            job_step: Duration::from_millis(100),
            act_steps: 3,
            seed: 1,
            faults: Faults::default(),
            dirty_attrs: true,
            hostname: "panorama-sim".into(),
            tz_offset_min: 0,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Keyed `type` or `type.action` (`config.set`, `commit.all`, `op.show.jobs`, `keygen`).
    pub requests: BTreeMap<String, u64>,
    /// Each set/edit/delete/rename/move, counting every sub-op of a multi-config.
    pub write_ops: u64,
    /// HTTP requests that write config (a multi-config counts once).
    pub write_calls: u64,
    /// Panorama commit jobs created.
    pub commits: u64,
    /// Commit-all (push) jobs created.
    pub pushes: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// All `/api` HTTP requests, including ones answered by an injected fault.
    pub http_requests: u64,
    pub auth_failures: u64,
    /// Responses with `status="error"`.
    pub error_responses: u64,
    pub injected_latency: u64,
    pub injected_http_errors: u64,
    pub injected_drops: u64,
}

/// What to do with an `/api` request before it reaches the API.
pub enum PreFault {
    Pass,
    Drop,
    HttpError(u16),
}

pub struct State {
    pub opts: Options,
    pub candidate: Node,
    pub running: Node,
    /// admin -> written node -> (dirtyId, written with a partial xpath). Cleared per path
    /// (and below) when a commit takes it.
    pub dirty: BTreeMap<String, HashMap<Vec<Key>, (u64, bool)>>,
    dirty_seq: u64,
    keys: HashMap<String, String>,
    admin_keys: HashMap<String, String>,
    pub jobs: Vec<Job>,
    next_job: u64,
    pub locks: Locks,
    pub faults: Faults,
    rng: Rng,
    /// Separate stream for API keys: never re-seeded by reset, so keys issued before and after
    /// a reset cannot collide.
    key_rng: Rng,
    pub stats: Stats,
    vm_auth_keys: Vec<(String, String)>,
    /// Wire-level record of writes (`GET /_sim/writes`).
    pub writes: Vec<serde_json::Value>,
    /// The reference index of the candidate, kept between successful writes.
    refs_cache: Option<super::refs::RefIndex>,
    write_call_seq: u64,
    /// Per-serial running config and sync status of the managed devices.
    pub runs: BTreeMap<String, super::dataplane::DeviceRun>,
    /// The last `shared-policy-version` a device-group push gave (one per push job that landed
    /// on at least one device; see sim/README, `show devices`).
    pub policy_version: u64,
    /// FQDN -> addresses the devices resolve FQDN address objects to (`/_sim/dns`).
    pub dns: BTreeMap<String, Vec<String>>,
}

/// `major.minor` of a `--sw-version` like `10.2.9-h1` (unparsable parts count as 0).
pub fn version_of(v: &str) -> (u32, u32) {
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    let major = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Fault defaults that follow the version profile: multi-config is on from 10.1 (10.0 needs
/// `request multi-config enabled`); partial-xpath writes are left behind by admin-scoped partial
/// commits on 11.0+ (pan-os-python#570) and sweep the written node before (pan-os-ansible#628).
pub fn profile_faults(mut f: Faults, sw_version: &str) -> Faults {
    let v = version_of(sw_version);
    if v >= (10, 1) {
        f.multi_config_enabled = true;
    }
    if f.partial_xpath_commit.is_empty() {
        f.partial_xpath_commit = if v >= (11, 0) { "left-behind".into() } else { "sweep".into() };
    }
    f
}

/// Names a set/edit writes: the deepest `entry[@name]` of the xpath and every entry (at any
/// depth) of the element.
fn written_names(xpath: &str, element: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(xp) = super::xpath::parse(xpath)
        && let Some(st) = xp.steps.iter().rev().find(|s| s.tag == "entry")
        && let super::xpath::Pred::Names(n) = &st.pred
    {
        out.extend(n.iter().cloned());
    }
    fn walk(n: &Node, out: &mut Vec<String>) {
        if n.tag == "entry"
            && let Some(nm) = n.name()
        {
            out.push(nm.to_string());
        }
        for c in n.children.values() {
            walk(c, out);
        }
    }
    if let Ok(nodes) = super::xml_tree::parse_fragment(element) {
        for n in &nodes {
            walk(n, &mut out);
        }
    }
    out
}

/// `element_root` and `element_names` of the writes record: the first top-level element's tag;
/// the names of top-level entries (or texts of top-level members), else of the entries (or
/// members) directly inside the top-level elements.
fn element_summary(element: &str) -> (Option<String>, Vec<String>) {
    let Ok(nodes) = super::xml_tree::parse_fragment(element) else { return (None, vec![]) };
    let root = nodes.first().map(|n| n.tag.clone());
    let label = |n: &Node| match n.tag.as_str() {
        "entry" => n.name().map(String::from),
        "member" => Some(n.text.clone()),
        _ => None,
    };
    let mut names = Vec::new();
    for n in &nodes {
        match label(n) {
            Some(l) => names.push(l),
            None => names.extend(n.children.values().filter_map(label)),
        }
    }
    (root, names)
}

/// Request parameters (query string and form body, in that order; the first value wins).
#[derive(Default, Debug)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
}

/// Credentials that came in HTTP headers.
#[derive(Default, Debug)]
pub struct HeaderAuth {
    pub pan_key: Option<String>,
    pub basic: Option<(String, String)>,
}

fn initial_tree(o: &Options) -> Node {
    let mut root = Node::new("config");
    root.set_attr("version", &o.sw_version);
    root.set_attr("urldb", "paloaltonetworks");
    root.ensure("mgt-config");
    root.ensure("shared");
    let mut ld = Node::entry(LD);
    ld.ensure("deviceconfig").ensure("system").put(Node::leaf("hostname", &o.hostname));
    ld.ensure("device-group");
    ld.ensure("template");
    ld.ensure("template-stack");
    root.ensure("devices").put(ld);
    root.ensure("readonly").ensure("devices").put(Node::entry(LD));
    let serials: Vec<String> = o.devices.iter().map(|d| d.serial.clone()).collect();
    add_membership(&mut root, o.devices_in_dg.as_deref(), o.devices_in_stack.as_deref(), &serials);
    root
}

/// Creates the DG / stack if needed and makes `serials` members of them.
pub fn add_membership(root: &mut Node, dg: Option<&str>, stack: Option<&str>, serials: &[String]) {
    let ld = root.ensure("devices").children.entry(Key::Entry(LD.into())).or_insert_with(|| Node::entry(LD));
    for (container, name) in [("device-group", dg), ("template-stack", stack)] {
        let Some(name) = name.filter(|n| !n.is_empty()) else { continue };
        let c = ld.ensure(container);
        let e = c.children.entry(Key::Entry(name.into())).or_insert_with(|| Node::entry(name));
        let devs = e.ensure("devices");
        for s in serials {
            devs.children.entry(Key::Entry(s.clone())).or_insert_with(|| Node::entry(s));
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for ch in bytes.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= ch.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Device-group scope of an xpath (for config locks).
fn dg_scope(xpath: &str) -> Option<String> {
    let xp = super::xpath::parse(xpath).ok()?;
    let s = &xp.steps;
    if s.len() >= 5
        && s[1].tag == "devices"
        && s[3].tag == "device-group"
        && let super::xpath::Pred::Names(n) = &s[4].pred
    {
        return n.first().cloned();
    }
    None
}

fn err_reply(e: &ApiError) -> String {
    e.to_xml()
}

impl State {
    pub fn new(opts: Options) -> State {
        let tree = initial_tree(&opts);
        let mut rng = Rng::new(opts.seed);
        let mut st = State {
            candidate: tree.clone(),
            running: tree,
            dirty: BTreeMap::new(),
            dirty_seq: 0,
            keys: HashMap::new(),
            admin_keys: HashMap::new(),
            jobs: Vec::new(),
            next_job: 1,
            locks: Locks::default(),
            faults: opts.faults.clone(),
            rng: Rng::new(opts.seed),
            key_rng: Rng::new(rng.next_u64() ^ 0x6b65_7973),
            stats: Stats::default(),
            vm_auth_keys: Vec::new(),
            writes: Vec::new(),
            write_call_seq: 0,
            refs_cache: None,
            runs: BTreeMap::new(),
            policy_version: 0,
            dns: BTreeMap::new(),
            opts,
        };
        st.set_devices(st.opts.devices.clone());
        st.faults = profile_faults(st.faults.clone(), &st.opts.sw_version);
        st.apply_lock_faults();
        st
    }

    /// Back to the startup state: trees, jobs, locks, change tracking, counters and faults.
    /// API keys stay valid so clients need not log in again.
    pub fn reset(&mut self) {
        let tree = initial_tree(&self.opts);
        self.candidate = tree.clone();
        self.running = tree;
        self.refs_cache = None;
        self.dirty.clear();
        self.jobs.clear();
        self.next_job = 1;
        self.locks = Locks::default();
        self.faults = profile_faults(self.opts.faults.clone(), &self.opts.sw_version);
        self.rng = Rng::new(self.opts.seed);
        self.stats = Stats::default();
        self.vm_auth_keys.clear();
        self.runs.clear();
        self.policy_version = 0;
        self.dns.clear();
        self.reset_writes();
        self.apply_lock_faults();
    }

    pub fn reset_writes(&mut self) {
        self.writes.clear();
        self.write_call_seq = 0;
    }

    /// One item of the writes record (see README "Control endpoints").
    fn record_write(&mut self, admin: &str, call: u64, op: &WriteOp, multi: bool, refused: bool) {
        let (root, names) = match op {
            WriteOp::Set { element, .. } | WriteOp::Edit { element, .. } => element_summary(element),
            _ => (None, vec![]),
        };
        self.writes.push(serde_json::json!({
            "admin": admin, "call": call, "action": op.action(), "xpath": op.xpath(),
            "element_root": root, "element_names": names, "multi_config": multi, "refused": refused,
        }));
    }

    /// The `refuse_writes` fault: a set/edit naming a matching entry is refused (code 12).
    fn refused_by_fault(&self, op: &WriteOp) -> Option<ApiError> {
        let rules = self.faults.refuse_writes.as_ref().filter(|r| !r.is_empty())?;
        let (WriteOp::Set { xpath, element } | WriteOp::Edit { xpath, element }) = op else { return None };
        for name in written_names(xpath, element) {
            if let Some(r) = rules.iter().find(|r| super::faults::glob_match(&r.name_glob, &name)) {
                return Some(ApiError::new(12, r.text(&name)));
            }
        }
        None
    }

    /// Panorama's clock (host clock + `clock_skew_secs`).
    pub fn panorama_now(&self) -> SystemTime {
        let s = self.faults.clock_skew_secs;
        if s >= 0 { SystemTime::now() + Duration::from_secs(s as u64) } else { SystemTime::now() - Duration::from_secs(s.unsigned_abs()) }
    }

    /// `t` shifted into Panorama's timezone (for printing with the UTC formatters).
    fn local(&self, t: SystemTime) -> SystemTime {
        let m = self.opts.tz_offset_min as i64 * 60;
        if m >= 0 { t + Duration::from_secs(m as u64) } else { t - Duration::from_secs(m.unsigned_abs()) }
    }

    pub fn rotate_keys(&mut self) {
        self.keys.clear();
        self.admin_keys.clear();
    }

    pub fn set_faults(&mut self, f: Faults) {
        self.faults = f;
        self.apply_lock_faults();
    }

    fn apply_lock_faults(&mut self) {
        if let Some(who) = self.faults.config_lock_by.clone() {
            self.locks.config.retain(|_, (o, _)| o == &who && !who.is_empty());
            if !who.is_empty() {
                self.locks.config.insert("shared".into(), (who, "injected by panorama-sim".into()));
            }
        }
        if let Some(who) = self.faults.commit_lock_by.clone() {
            self.locks.commit.clear();
            if !who.is_empty() {
                self.locks.commit.insert(who, "injected by panorama-sim".into());
            }
        }
    }

    pub fn add_membership(&mut self, dg: Option<&str>, stack: Option<&str>, serials: Option<Vec<String>>) {
        let serials = serials.unwrap_or_else(|| self.opts.devices.iter().map(|d| d.serial.clone()).collect());
        self.refs_cache = None;
        add_membership(&mut self.candidate, dg, stack, &serials);
        add_membership(&mut self.running, dg, stack, &serials);
    }

    /// Decides injected faults for one `/api` request (seeded, in arrival order).
    pub fn pre_fault(&mut self) -> (Duration, PreFault) {
        self.stats.http_requests += 1;
        let lat = Duration::from_millis(self.faults.latency_ms);
        if !lat.is_zero() {
            self.stats.injected_latency += 1;
        }
        if self.rng.hit(self.faults.drop_rate) {
            self.stats.injected_drops += 1;
            return (lat, PreFault::Drop);
        }
        if self.rng.hit(self.faults.http_error_rate) {
            self.stats.injected_http_errors += 1;
            return (lat, PreFault::HttpError(self.faults.status()));
        }
        (lat, PreFault::Pass)
    }

    /// Finishes jobs whose time has come, applying their effects in queue order.
    pub fn tick(&mut self, now: Instant) {
        for i in 0..self.jobs.len() {
            if self.jobs[i].applied || self.jobs[i].phase(now) != Phase::Fin {
                continue;
            }
            self.jobs[i].applied = true;
            if self.jobs[i].kind == JobKind::CommitAll {
                self.refuse_over_limits(i);
                self.land_push(i);
            }
            let effect = std::mem::replace(&mut self.jobs[i].effect, Effect::None);
            match effect {
                Effect::Full(tree) => {
                    let mut t = *tree;
                    t.strip_volatile();
                    self.running = t;
                }
                Effect::Partial(items) => {
                    for (path, node, shells, prev) in items {
                        apply_partial(&mut self.running, &path, node, &shells);
                        if let Some(prev) = prev {
                            place_after(&mut self.running, &path, &prev);
                        }
                    }
                }
                Effect::None => {}
            }
        }
    }

    fn active_job(&self, now: Instant) -> bool {
        self.jobs.iter().any(|j| j.phase(now) != Phase::Fin)
    }

    fn count(&mut self, key: String) {
        *self.stats.requests.entry(key).or_default() += 1;
    }

    /// Answers one `/api` request. Never logs or echoes secrets.
    pub fn handle(&mut self, p: &Params, h: &HeaderAuth, now: Instant) -> super::response::Reply {
        use super::response::Reply;
        self.tick(now);
        let ty = p.get("type").unwrap_or("");
        if ty == "keygen" {
            self.count("keygen".into());
            let (u, pw) = match (p.get("user"), p.get("password")) {
                (Some(u), Some(pw)) => (u.to_string(), pw.to_string()),
                _ => match &h.basic {
                    Some(b) => b.clone(),
                    None => return Reply::bad_request("Missing parameter: user"),
                },
            };
            if !self.opts.admins.iter().any(|(a, b)| *a == u && *b == pw) {
                self.stats.auth_failures += 1;
                return Reply::forbidden();
            }
            let key = self.key_for(&u);
            return Reply::ok(format!("<response status = 'success'><result><key>{key}</key></result></response>"));
        }
        // Authenticate: X-PAN-KEY header, then key=, then HTTP Basic.
        let admin = match h.pan_key.as_deref().or(p.get("key")) {
            // pan-python sends the key unescaped, so a `+` of the base64 key arrives as a space
            // once the form is decoded; PAN-OS keys contain `+` and pan-python works against
            // them, so accept that spelling too.
            Some(k) => self.keys.get(k).or_else(|| self.keys.get(&k.replace(' ', "+"))).cloned(),
            None => h.basic.as_ref().and_then(|(u, pw)| self.opts.admins.iter().any(|(a, b)| a == u && b == pw).then(|| u.clone())),
        };
        let Some(admin) = admin else {
            self.stats.auth_failures += 1;
            self.count(if ty.is_empty() { "unknown".into() } else { ty.to_string() });
            return Reply::forbidden();
        };
        let action = p.get("action").unwrap_or("");
        if ty == "config" && action == "multi-config" && version_of(&self.opts.sw_version) < (10, 0) {
            // multi-config arrived in PAN-OS 10.0 (API guide 10.0 "Multi-config Request"); an
            // older Panorama does not know the action: HTTP 400, as for any illegal parameter.
            self.count("config.multi-config".into());
            self.stats.write_calls += 1;
            self.write_call_seq += 1;
            let call = self.write_call_seq;
            let subs = p.get("element").and_then(|e| multi_ops(e).ok()).unwrap_or_default();
            self.stats.write_ops += subs.len() as u64;
            for (_, op) in subs {
                if let Ok(op) = op {
                    self.record_write(&admin, call, &op, true, true);
                }
            }
            self.stats.error_responses += 1;
            return Reply::bad_request("Illegal value for parameter \"action\" [multi-config].");
        }
        let body = match ty {
            "config" => {
                self.count(format!("config.{action}"));
                self.config(p, action, &admin, now)
            }
            "op" => {
                let cmd = p.get("cmd").unwrap_or("");
                match super::xml_tree::parse_one(cmd) {
                    Ok(c) => {
                        let mut key = String::from("op");
                        let mut n = &c;
                        key.push('.');
                        key.push_str(&n.tag);
                        if let Some(ch) = n.children.values().next() {
                            n = ch;
                            key.push('.');
                            key.push_str(&n.tag);
                        }
                        self.count(key);
                        self.op(&c, p, &admin, now)
                    }
                    Err(e) => {
                        self.count("op".into());
                        err_reply(&ApiError::new(18, format!("Malformed command: {e}")))
                    }
                }
            }
            "commit" => {
                self.count(if action == "all" { "commit.all".into() } else { "commit".into() });
                if action == "all" { self.push(p, &admin, now) } else { self.commit(p, &admin, now) }
            }
            "version" => {
                self.count("version".into());
                format!(
                    "<response status=\"success\"><result><sw-version>{}</sw-version><multi-vsys>off</multi-vsys><model>Panorama</model><serial>000702000001</serial></result></response>",
                    self.opts.sw_version
                )
            }
            other => {
                self.count(if other.is_empty() { "unknown".into() } else { other.to_string() });
                return Reply::bad_request(&format!("Illegal value for parameter \"type\" [{}].", other));
            }
        };
        if body.starts_with("<response status=\"error\"") {
            self.stats.error_responses += 1;
        }
        Reply::ok(body)
    }

    /// A new key for `admin`; the admin's previous key stops working (9.1 API guide "Get Your
    /// API Key": generating another key ends the user's existing sessions; pango's
    /// GenerateApiKey comment; facts §11.3).
    fn key_for(&mut self, admin: &str) -> String {
        if !self.faults.keygen_rotates
            && let Some(k) = self.admin_keys.get(admin)
        {
            return k.clone();
        }
        if let Some(old) = self.admin_keys.remove(admin) {
            self.keys.remove(&old);
        }
        let key = loop {
            let mut raw = Vec::new();
            for _ in 0..6 {
                raw.extend_from_slice(&self.key_rng.next_u64().to_le_bytes());
            }
            let k = format!("LUFRPT{}", base64(&raw));
            if !self.keys.contains_key(&k) {
                break k;
            }
        };
        self.keys.insert(key.clone(), admin.to_string());
        self.admin_keys.insert(admin.to_string(), key.clone());
        key
    }

    fn write_guard(&self, admin: &str, xpaths: &[&str], now: Instant, strict: bool) -> Result<(), ApiError> {
        if (self.faults.commit_in_progress || strict) && self.active_job(now) {
            return Err(ApiError::nocode("A commit is in progress."));
        }
        for x in xpaths {
            if let Some(m) = self.locks.write_blocked(admin, dg_scope(x).as_deref()) {
                return Err(ApiError::nocode(m));
            }
        }
        Ok(())
    }

    fn mark_dirty(&mut self, admin: &str, written: Vec<(Vec<Key>, bool)>) {
        let map = self.dirty.entry(admin.to_string()).or_default();
        for (w, partial) in written {
            self.dirty_seq += 1;
            map.insert(w, (self.dirty_seq, partial));
        }
    }

    fn config(&mut self, p: &Params, action: &str, admin: &str, now: Instant) -> String {
        let xpath = p.get("xpath").unwrap_or("");
        let single = |op: WriteOp| Some(vec![op]);
        let ops = match action {
            "get" | "show" => {
                let r = if action == "get" { self.read_candidate(xpath, admin) } else { config::read(&self.running, xpath, true) };
                return r.unwrap_or_else(|e| err_reply(&e));
            }
            "set" | "edit" => {
                let Some(el) = p.get("element") else {
                    return err_reply(&ApiError::new(400, "Missing parameter: element"));
                };
                let el = el.to_string();
                if action == "set" {
                    single(WriteOp::Set { xpath: xpath.into(), element: el })
                } else {
                    single(WriteOp::Edit { xpath: xpath.into(), element: el })
                }
            }
            "delete" => single(WriteOp::Delete { xpath: xpath.into() }),
            "rename" => single(WriteOp::Rename { xpath: xpath.into(), newname: p.get("newname").unwrap_or("").into() }),
            "move" => single(WriteOp::Move {
                xpath: xpath.into(),
                where_: p.get("where").unwrap_or("").into(),
                dst: p.get("dst").map(String::from),
            }),
            "multi-config" => None,
            other => return err_reply(&ApiError::new(400, format!("Illegal value for parameter \"action\" [{other}]."))),
        };
        self.stats.write_calls += 1;
        self.write_call_seq += 1;
        let call = self.write_call_seq;
        match ops {
            Some(ops) => {
                self.stats.write_ops += 1;
                let op = &ops[0];
                let res = match self.write_guard(admin, &[xpath], now, false) {
                    Err(e) => Err(e),
                    Ok(()) => match self.refused_by_fault(op) {
                        Some(e) => Err(e),
                        None => {
                            let mut txn = Txn::new(&mut self.candidate);
                            txn.refs = self.refs_cache.take().filter(|r| !r.worn());
                            match txn.apply(op) {
                                Ok(done) => {
                                    self.refs_cache = txn.refs.take();
                                    let w = txn.commit();
                                    self.mark_dirty(admin, w);
                                    Ok(done)
                                }
                                Err(e) => {
                                    txn.rollback();
                                    Err(e)
                                }
                            }
                        }
                    },
                };
                self.record_write(admin, call, op, false, res.is_err());
                match res {
                    Ok(done) => super::response::success_msg(done.code, done.msg),
                    Err(e) => err_reply(&e),
                }
            }
            None => self.multi_config(p, admin, now, call),
        }
    }

    /// `get` with PAN-OS's candidate markers (`admin`, `dirtyId`, `time`) on uncommitted nodes.
    fn read_candidate(&self, xpath: &str, _admin: &str) -> Result<String, ApiError> {
        if !self.opts.dirty_attrs || self.dirty.values().all(|m| m.is_empty()) {
            return config::read(&self.candidate, xpath, false);
        }
        let xp = if xpath.is_empty() { super::xpath::parse("/config").unwrap() } else { config::parse_xpath(xpath)? };
        let found = super::xpath::select(&self.candidate, &xp);
        if found.is_empty() || xp.attr.is_some() {
            return config::read(&self.candidate, xpath, false);
        }
        let t = fmt_time(SystemTime::now());
        let mut inner = String::new();
        for sel in &found {
            let mut n = self.candidate.get_path(sel).expect("selected").clone();
            // Walk the (usually small) answer and look each node up, rather than scanning
            // every dirty path: keeps `get` O(answer) with 20k uncommitted objects.
            let mut path = sel.clone();
            self.mark(&mut n, &mut path, &t);
            n.write_xml(&mut inner, true);
        }
        let c = found.len();
        Ok(format!("<response status=\"success\" code=\"19\"><result total-count=\"{c}\" count=\"{c}\">{inner}</result></response>"))
    }

    fn mark(&self, n: &mut Node, path: &mut Vec<Key>, t: &str) {
        for (adm, m) in &self.dirty {
            if let Some((id, _)) = m.get(path.as_slice()) {
                n.set_attr("admin", adm);
                n.set_attr("dirtyId", &id.to_string());
                n.set_attr("time", t);
            }
        }
        for (k, c) in n.children.iter_mut() {
            path.push(k.clone());
            self.mark(c, path, t);
            path.pop();
        }
    }

    fn multi_config(&mut self, p: &Params, admin: &str, now: Instant, call: u64) -> String {
        let Some(el) = p.get("element") else {
            return err_reply(&ApiError::new(400, "Missing parameter: element"));
        };
        let root = match super::xml_tree::parse_fragment(el) {
            Ok(mut v) if v.len() == 1 => v.remove(0),
            Ok(_) => return err_reply(&ApiError::new(18, "Malformed Request: multi-config needs one root element")),
            Err(e) => return err_reply(&ApiError::new(18, format!("Malformed Request: {e}"))),
        };
        let strict = p.get("strict-transactional") == Some("yes");
        // Sub-ops in document order. The tree keys children by tag, so re-read the raw order
        // from the element text instead of the (de-duplicating) tree.
        let subs = match multi_ops(el) {
            Ok(s) => s,
            Err(e) => return err_reply(&ApiError::new(18, format!("Malformed Request: {e}"))),
        };
        let _ = root;
        self.stats.write_ops += subs.len() as u64;
        let record_all = |st: &mut State, upto_ok: usize| {
            for (i, (_, op)) in subs.iter().enumerate() {
                if let Ok(op) = op {
                    st.record_write(admin, call, op, true, i >= upto_ok);
                }
            }
        };
        if !self.faults.multi_config_enabled {
            // PAN-OS 10.0: off until `request multi-config enabled` (10.0 API guide; facts §11.2).
            // The refusal text is not public: the sim answers an outer error with no inner
            // responses (nothing was attempted).
            record_all(self, 0);
            return err_reply(&ApiError::nocode(
                "Multi-config is not enabled. Enable it with 'request multi-config enabled' (op <request><multi-config><enabled/></multi-config></request>)",
            ));
        }
        let xps: Vec<&str> = subs.iter().map(|(_, op)| op.as_ref().map(|o| o.xpath()).unwrap_or("")).collect();
        if let Err(e) = self.write_guard(admin, &xps, now, strict) {
            record_all(self, 0);
            return err_reply(&e);
        }
        if strict {
            // Docs: the caller's own uncommitted changes are rolled back first. We model it by
            // refusing when the caller has pending changes would be wrong; instead we revert them.
            self.revert_admin(admin);
        }
        let refusals: Vec<Option<ApiError>> = subs.iter().map(|(_, op)| op.as_ref().ok().and_then(|o| self.refused_by_fault(o))).collect();
        let mut txn = Txn::new(&mut self.candidate);
        txn.refs = self.refs_cache.take().filter(|r| !r.worn());
        let mut inner = String::new();
        for (i, (id, op)) in subs.iter().enumerate() {
            let idattr = id.as_ref().map(|i| format!(" id=\"{}\"", super::xml_tree::escape(i))).unwrap_or_default();
            let res = match (op, &refusals[i]) {
                (_, Some(e)) => Err(e.clone()),
                (Ok(op), None) => txn.apply(op),
                (Err(e), None) => Err(e.clone()),
            };
            match res {
                Ok(d) => {
                    inner.push_str(&format!("<response status=\"success\" code=\"{}\"{idattr}><msg>{}</msg></response>", d.code, d.msg))
                }
                Err(e) => {
                    let code = e.code.map(|c| format!(" code=\"{c}\"")).unwrap_or_default();
                    inner.push_str(&format!("<response status=\"error\"{code}{idattr}>{}</response>", e.msg_xml()));
                    txn.rollback();
                    record_all(self, 0);
                    return format!("<response status=\"error\" code=\"13\">{inner}</response>");
                }
            }
        }
        self.refs_cache = txn.refs.take();
        let w = txn.commit();
        self.mark_dirty(admin, w);
        record_all(self, usize::MAX);
        format!("<response status=\"success\" code=\"20\">{inner}</response>")
    }

    /// Reverts `admin`'s uncommitted changes (candidate takes running's value at each path).
    fn revert_admin(&mut self, admin: &str) {
        let Some(m) = self.dirty.remove(admin) else { return };
        self.refs_cache = None;
        let mut paths: Vec<Vec<Key>> = m.into_keys().collect();
        paths.sort_by_key(|p| p.len());
        for p in paths {
            let node = self.running.get_path(&p).cloned();
            let shells = shells_of(&self.running, &p);
            apply_partial(&mut self.candidate, &p, node, &shells);
        }
    }

    /// Changed paths (from `admins`, or everyone) that still differ from running. With
    /// `admins` and the `left-behind` model, nodes those admins wrote with a partial xpath are
    /// not taken (pan-os-python#570: the admin's partial commit does not carry them).
    fn pending(&self, admins: Option<&[String]>, filter: &dyn Fn(&[Key]) -> bool) -> Vec<Vec<Key>> {
        let mut out: Vec<Vec<Key>> = Vec::new();
        let left_behind = admins.is_some() && self.faults.partial_xpath_commit == "left-behind";
        for (a, m) in &self.dirty {
            if admins.is_some_and(|v| !v.contains(a)) {
                continue;
            }
            for (p, (_, partial)) in m {
                if !filter(p) || (left_behind && *partial) {
                    continue;
                }
                let c = self.candidate.get_path(p);
                let r = self.running.get_path(p);
                let differs = match (c, r) {
                    // An entry that moved differs by position (a `move` changes only that).
                    (Some(c), Some(r)) => !c.same(r) || moved(&self.candidate, &self.running, p),
                    (None, None) => false,
                    _ => true,
                };
                if differs {
                    out.push(p.clone());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn has_pending(&self, now: Instant) -> bool {
        !self.pending(None, &|_| true).is_empty() || (!self.active_job(now) && !self.candidate.same(&self.running))
    }

    fn enqueue(&mut self, mut job: Job, now: Instant) -> u64 {
        let prev_end = self.jobs.iter().map(|j| j.end()).max().unwrap_or(now);
        job.start = prev_end.max(now);
        job.id = self.next_job;
        self.next_job += 1;
        let id = job.id;
        self.jobs.push(job);
        self.tick(now);
        id
    }

    fn new_job(&self, kind: JobKind, admin: &str, description: String) -> Job {
        Job {
            id: 0,
            kind,
            user: admin.to_string(),
            description,
            enqueued_wall: SystemTime::now(),
            start: Instant::now(),
            step: self.opts.job_step,
            act_steps: self.opts.act_steps,
            fail: None,
            devices: vec![],
            push_type: None,
            dgname: None,
            effect: Effect::None,
            applied: false,
            scope: String::new(),
        }
    }

    /// What commits and pushes check first: the command parses with the expected root, no job
    /// blocks it (when that fault is on), and no other admin holds the commit lock.
    fn commit_command(&self, cmd: &str, root: &str, admin: &str, now: Instant) -> Result<Node, String> {
        let c = match super::xml_tree::parse_one(cmd) {
            Ok(c) if c.tag == root => c,
            Ok(c) => return Err(err_reply(&ApiError::new(17, format!("{} is unexpected", c.tag)))),
            Err(e) => return Err(err_reply(&ApiError::new(18, format!("Malformed command: {e}")))),
        };
        if self.faults.commit_in_progress && self.active_job(now) {
            return Err(err_reply(&ApiError::nocode("Another commit/validate is in progress. Please try again later")));
        }
        if let Some(m) = self.locks.commit_blocked(admin) {
            return Err(err_reply(&ApiError::nocode(m)));
        }
        Ok(c)
    }

    fn commit(&mut self, p: &Params, admin: &str, now: Instant) -> String {
        let c = match self.commit_command(p.get("cmd").unwrap_or("<commit></commit>"), "commit", admin, now) {
            Ok(c) => c,
            Err(reply) => return reply,
        };
        let description = c.child("description").map(|d| d.text.clone()).unwrap_or_default();
        let partial = c.child("partial").or_else(|| (p.get("action") == Some("partial")).then_some(&c));
        let mut job = self.new_job(JobKind::Commit, admin, description);
        match partial {
            None => {
                if !self.has_pending(now) {
                    return super::response::success_msg(19, "There are no changes to commit.");
                }
                job.effect = Effect::Full(Box::new(self.candidate.clone()));
                job.scope = "full".into();
            }
            Some(part) => {
                let list =
                    |tag: &str| -> Option<Vec<String>> { part.child(tag).map(|n| n.members().into_iter().map(String::from).collect()) };
                let admins = list("admin");
                let dgs = list("device-group");
                let tpls = list("template");
                let stacks = list("template-stack");
                let excl = |tag: &str| part.child(tag).is_some_and(|n| n.text == "excluded" || n.text.is_empty());
                let (excl_dn, excl_shared) = (excl("device-and-network"), excl("shared-object"));
                let filter = move |path: &[Key]| -> bool {
                    let (loc, _) = super::schema::locate(path);
                    let in_list = |v: &Option<Vec<String>>, n: &str| v.as_ref().is_none_or(|v| v.iter().any(|x| x == n));
                    let any_scope = dgs.is_some() || tpls.is_some() || stacks.is_some();
                    match loc {
                        super::schema::Loc::Shared => !excl_shared,
                        super::schema::Loc::Dg(n) => !any_scope || (dgs.is_some() && in_list(&dgs, &n)),
                        super::schema::Loc::Template(n) => {
                            !excl_dn && (!any_scope || in_list(&tpls, &n) && tpls.is_some() || in_list(&stacks, &n) && stacks.is_some())
                        }
                        super::schema::Loc::Other => !any_scope,
                    }
                };
                let paths = self.pending(admins.as_deref(), &filter);
                if paths.is_empty() {
                    return super::response::success_msg(19, "There are no changes to commit.");
                }
                let mut items = Vec::new();
                for path in &paths {
                    items.push((
                        path.clone(),
                        self.candidate.get_path(path).cloned(),
                        shells_of(&self.candidate, path),
                        preceding(&self.candidate, path),
                    ));
                }
                job.scope = format!("partial admins={:?}", admins.unwrap_or_default());
                job.effect = Effect::Partial(items);
                if self.faults.fail_commit.is_none() {
                    // What a committed node holds is committed, whoever changed it (the sweep
                    // of pan-os-ansible#628): drop every admin's marks at or below it.
                    let taken: std::collections::HashSet<&[Key]> = paths.iter().map(|p| p.as_slice()).collect();
                    for m in self.dirty.values_mut() {
                        m.retain(|p, _| !(0..=p.len()).any(|l| taken.contains(&p[..l])));
                    }
                }
            }
        }
        if let Some(f) = self.faults.fail_commit.clone() {
            job.fail = Some(f);
            job.effect = Effect::None;
        } else if matches!(job.effect, Effect::Full(_)) {
            self.dirty.clear();
        }
        self.stats.commits += 1;
        let id = self.enqueue(job, now);
        format!(
            "<response status=\"success\" code=\"19\"><result><msg><line>Commit job enqueued with jobid {id}</line></msg><job>{id}</job></result></response>"
        )
    }

    fn members_of(&self, container: &str, name: &str) -> Option<Vec<String>> {
        let e = self.running.child("devices")?.entry_child(LD)?.child(container)?.entry_child(name)?;
        Some(e.child("devices").map(|d| d.entries().filter_map(|x| x.name().map(String::from)).collect()).unwrap_or_default())
    }

    fn push(&mut self, p: &Params, admin: &str, now: Instant) -> String {
        let c = match self.commit_command(p.get("cmd").unwrap_or(""), "commit-all", admin, now) {
            Ok(c) => c,
            Err(reply) => return reply,
        };
        // (push type, container, names, device filter, description)
        let (push_type, container, names, filter, desc): (&str, &str, Vec<String>, Option<Vec<String>>, String) =
            if let Some(sp) = c.child("shared-policy") {
                let desc = sp.child("description").map(|d| d.text.clone()).unwrap_or_default();
                let dgn = sp.child("device-group");
                let mut names = Vec::new();
                let mut filter: Option<Vec<String>> = None;
                if let Some(dgn) = dgn {
                    if dgn.children.is_empty() && !dgn.text.is_empty() {
                        names.push(dgn.text.clone()); // legacy text form
                    }
                    for e in dgn.entries() {
                        names.push(e.name().unwrap_or_default().to_string());
                        if let Some(ds) = e.child("devices") {
                            filter.get_or_insert_with(Vec::new).extend(ds.entries().filter_map(|d| d.name().map(String::from)));
                        }
                    }
                }
                ("shared-policy", "device-group", names, filter, desc)
            } else if let Some(ts) = c.child("template-stack").or_else(|| c.child("template")) {
                let desc = ts.child("description").map(|d| d.text.clone()).unwrap_or_default();
                let name = ts.child("name").map(|n| n.text.clone()).unwrap_or_default();
                let filter = ts.child("device").map(|d| d.members().into_iter().map(String::from).collect());
                let (pt, cont) = if ts.tag == "template-stack" { ("template-stack", "template-stack") } else { ("template", "template") };
                (pt, cont, vec![name], filter, desc)
            } else {
                return err_reply(&ApiError::new(17, "commit-all: expected shared-policy, template-stack or template"));
            };
        if names.is_empty() || names.iter().any(|n| n.is_empty()) {
            return err_reply(&ApiError::new(18, "commit-all: no device-group/template name given"));
        }
        let mut serials: Vec<String> = Vec::new();
        for n in &names {
            // [inferred] Panorama pushes its running config; an uncommitted DG cannot be pushed.
            match self.members_of(container, n) {
                Some(m) => serials.extend(m),
                None => {
                    return err_reply(&ApiError::new(
                        13,
                        format!("{container} {n} does not exist in the running configuration (commit to Panorama first)"),
                    ));
                }
            }
        }
        let mut job = self.new_job(JobKind::CommitAll, admin, desc);
        job.push_type = Some(push_type.into());
        job.dgname = Some(names[0].clone());
        job.scope = format!("{container}:{}", names.join(","));
        for s in serials {
            if filter.as_ref().is_some_and(|f| !f.contains(&s)) {
                continue;
            }
            let Some(d) = self.opts.devices.iter().find(|d| d.serial == s && d.connected) else { continue };
            if job.devices.iter().any(|x| x.serial == s) {
                continue;
            }
            let fail = match self.faults.fail_push_serial.as_deref() {
                Some("*") => true,
                Some(x) => x == s,
                None => false,
            };
            let fail = if self.faults.disconnected.contains(&s) {
                Some("device is not connected".to_string())
            } else {
                fail.then(|| self.faults.fail_push_message.clone().unwrap_or_else(|| "Commit failed: injected by panorama-sim".into()))
            };
            job.devices.push(JobDevice { serial: s.clone(), name: d.hostname.clone(), fail });
        }
        self.stats.pushes += 1;
        let id = self.enqueue(job, now);
        format!(
            "<response status=\"success\" code=\"19\"><result><msg><line>Push job enqueued with jobid {id}</line></msg><job>{id}</job></result></response>"
        )
    }

    fn op(&mut self, c: &Node, p: &Params, admin: &str, now: Instant) -> String {
        let path: Vec<&str> = {
            let mut v = vec![c.tag.as_str()];
            let mut n = c;
            while let Some(ch) = n.children.values().next() {
                v.push(ch.tag.as_str());
                n = ch;
                if v.len() >= 4 {
                    break;
                }
            }
            v
        };
        let ok = super::response::success_result;
        if let Some(serial) = p.get("target") {
            return self.device_op(serial, c, &path);
        }
        match path.as_slice() {
            ["show", "system", "info", ..] => ok(&self.system_info()),
            // `show clock`: ctime-style with the zone, as PAN-OS's CLI and API print it.
            ["show", "clock", ..] => ok(&format!("{}\n", fmt_clock(self.local(self.panorama_now()), &tz_abbrev(self.opts.tz_offset_min)))),
            ["request", "multi-config", verb, ..] if *verb == "enabled" || *verb == "enable" => {
                if version_of(&self.opts.sw_version) < (10, 0) {
                    return err_reply(&ApiError::new(17, "multi-config is unexpected"));
                }
                self.faults.multi_config_enabled = true;
                ok("multi-config enabled")
            }
            ["show", "devices", which, ..] if *which == "connected" || *which == "all" => {
                let mut s = String::from("<devices>");
                for d in &self.opts.devices {
                    let up = d.connected && !self.faults.disconnected.contains(&d.serial);
                    if *which == "connected" && !up {
                        continue;
                    }
                    s += &device_xml(&Device { connected: up, ..d.clone() }, self.runs.get(&d.serial));
                }
                s += "</devices>";
                ok(&s)
            }
            ["show", "devicegroups", ..] => {
                let mut s = String::from("<devicegroups>");
                if let Some(dgs) = self.running.child("devices").and_then(|d| d.entry_child(LD)).and_then(|d| d.child("device-group")) {
                    for dg in dgs.entries() {
                        s += &format!("<entry name=\"{}\"><devices>", super::xml_tree::escape(dg.name().unwrap_or_default()));
                        for m in dg.child("devices").map(|d| d.entries().collect::<Vec<_>>()).unwrap_or_default() {
                            if let Some(d) = self.opts.devices.iter().find(|d| Some(d.serial.as_str()) == m.name()) {
                                s += &device_xml(d, self.runs.get(&d.serial));
                            }
                        }
                        s += "</devices></entry>";
                    }
                }
                s += "</devicegroups>";
                ok(&s)
            }
            ["show", "jobs", ..] => {
                let jobs = c.child("jobs").expect("matched");
                if let Some(id) = jobs.child("id") {
                    let id = id.text.trim().trim_matches('"');
                    match self.jobs.iter().find(|j| j.id.to_string() == id) {
                        Some(j) => ok(&j.to_xml(now)),
                        None => err_reply(&ApiError::new(7, format!("job {id} not found"))),
                    }
                } else {
                    let want_pending = jobs.child("pending").is_some();
                    let want_processed = jobs.child("processed").is_some();
                    let mut s = String::new();
                    for j in self.jobs.iter().rev() {
                        let fin = j.phase(now) == Phase::Fin;
                        if (want_pending && fin) || (want_processed && !fin) {
                            continue;
                        }
                        s += &j.to_xml(now);
                    }
                    ok(&s)
                }
            }
            ["check", "pending-changes", ..] => ok(if self.has_pending(now) { "yes" } else { "no" }),
            ["request", "bootstrap", "vm-auth-key", "generate", ..] => {
                let lifetime =
                    c.descend(&["bootstrap", "vm-auth-key", "generate", "lifetime"]).map(|l| l.text.trim().trim_matches('"').to_string());
                let hours = match lifetime.as_deref().map(str::parse::<u64>) {
                    Some(Ok(h)) if (1..=8760).contains(&h) => h,
                    _ => return err_reply(&ApiError::new(17, "lifetime is invalid: expected 1-8760 hours")),
                };
                let key: String = (0..15).map(|_| char::from(b'0' + (self.rng.next_u64() % 10) as u8)).collect();
                // Printed without a zone, in Panorama's local time (facts §11.5).
                let exp = fmt_time(self.local(self.panorama_now()) + Duration::from_secs(hours * 3600));
                self.vm_auth_keys.push((key.clone(), exp.clone()));
                ok(&format!("VM auth key {key} generated. Expires at: {exp}"))
            }
            ["request", "bootstrap", "vm-auth-key", "show", ..] => {
                let mut s = String::from("<bootstrap-vm-auth-keys>");
                for (k, e) in &self.vm_auth_keys {
                    s += &format!("<entry><vm-auth-key>{k}</vm-auth-key><expiry-time>{e}</expiry-time></entry>");
                }
                s += "</bootstrap-vm-auth-keys>";
                ok(&s)
            }
            ["request", kind @ ("config-lock" | "commit-lock"), verb, ..] => {
                let node = c.descend(&[kind, verb]).expect("matched");
                let comment = node.child("comment").map(|c| c.text.clone()).unwrap_or_default();
                let scope = p.get("vsys").unwrap_or("shared");
                let r = match (*kind, *verb) {
                    ("config-lock", "add") => self.locks.add_config(scope, admin, &comment),
                    ("config-lock", "remove") => self.locks.remove_config(scope, admin),
                    ("commit-lock", "add") => self.locks.add_commit(admin, &comment),
                    ("commit-lock", "remove") => {
                        let who = node.child("admin").map(|a| a.text.clone()).unwrap_or_else(|| admin.to_string());
                        self.locks.remove_commit(&who)
                    }
                    _ => Err(format!("{verb} is unexpected")),
                };
                match r {
                    Ok(m) => ok(&super::xml_tree::escape(&m)),
                    Err(m) => err_reply(&ApiError::nocode(m)),
                }
            }
            ["show", "config-locks", ..] => {
                let mut s = String::from("<config-locks>");
                for (scope, (o, cm)) in &self.locks.config {
                    s += &format!(
                        "<entry name=\"{}\"><name>{}</name><type>config</type><loggedin>yes</loggedin><comment>{}</comment></entry>",
                        super::xml_tree::escape(o),
                        super::xml_tree::escape(scope),
                        super::xml_tree::escape(cm)
                    );
                }
                s += "</config-locks>";
                ok(&s)
            }
            ["show", "commit-locks", ..] => {
                let mut s = String::from("<commit-locks>");
                for (o, cm) in &self.locks.commit {
                    s += &format!(
                        "<entry name=\"{}\"><name>shared</name><type>commit</type><loggedin>yes</loggedin><comment>{}</comment></entry>",
                        super::xml_tree::escape(o),
                        super::xml_tree::escape(cm)
                    );
                }
                s += "</commit-locks>";
                ok(&s)
            }
            // [inferred] exact text for unknown op commands is not captured (facts §6).
            _ => err_reply(&ApiError::new(17, format!("{} is unexpected", path.last().unwrap_or(&"")))),
        }
    }

    /// Replaces the managed devices (startup or `POST /_sim/devices`); devices without
    /// interfaces get the generated ones for their 1-based position.
    pub fn set_devices(&mut self, mut devices: Vec<Device>) {
        for (i, d) in devices.iter_mut().enumerate() {
            if d.interfaces.is_empty() {
                d.interfaces = super::dataplane::default_interfaces(i + 1);
            }
        }
        self.runs.retain(|s, _| devices.iter().any(|d| &d.serial == s));
        self.opts.devices = devices;
    }

    /// A device refuses a policy push that would exceed its memory tier's limits (sim/README.md,
    /// "Device limits"); only devices with a `memory_mb` of their own. Judged when the push
    /// finishes, on what it lands (earlier commits in the queue applied by then).
    fn refuse_over_limits(&mut self, i: usize) {
        let Some((container, names)) = self.jobs[i].scope.split_once(':') else { return };
        if container != "device-group" {
            return;
        }
        let names: Vec<String> = names.split(',').map(String::from).collect();
        for k in 0..self.jobs[i].devices.len() {
            let serial = self.jobs[i].devices[k].serial.clone();
            if self.jobs[i].devices[k].fail.is_some() {
                continue;
            }
            let Some(mb) = self.opts.devices.iter().find(|d| d.serial == serial).and_then(|d| d.memory_mb) else { continue };
            let Some(limits) = super::limits::for_memory_mb(mb) else { continue };
            let dg = names.iter().find(|n| self.members_of("device-group", n).is_some_and(|m| m.contains(&serial))).unwrap_or(&names[0]);
            let refusal = super::limits::refusal(limits, super::limits::counts(&super::dataplane::chain(&self.running, dg)));
            self.jobs[i].devices[k].fail = refusal;
        }
    }

    /// A finished push lands on each device that did not fail, unless it silently ignores it.
    fn land_push(&mut self, i: usize) {
        use super::dataplane::{policy_snapshot, template_snapshot};
        let job = &self.jobs[i];
        let Some((container, names)) = job.scope.split_once(':') else { return };
        let (container, names): (String, Vec<String>) = (container.into(), names.split(',').map(String::from).collect());
        let devices: Vec<(String, bool)> = job.devices.iter().map(|d| (d.serial.clone(), d.fail.is_some())).collect();
        let is_policy = container == "device-group";
        let lands = devices.iter().any(|(s, failed)| !failed && !self.faults.push_silently_ignored_by.contains(s));
        if is_policy && lands {
            self.policy_version += 1;
        }
        let version = self.policy_version;
        for (serial, failed) in devices {
            let ignored = self.faults.push_silently_ignored_by.contains(&serial);
            let snap = if failed || ignored {
                None
            } else if is_policy {
                // The device's own DG among the pushed ones (the first when it is in none).
                let dg =
                    names.iter().find(|n| self.members_of("device-group", n).is_some_and(|m| m.contains(&serial))).unwrap_or(&names[0]);
                Some(policy_snapshot(&self.running, dg))
            } else {
                template_snapshot(&self.running, &container, &names[0])
            };
            let run = self.runs.entry(serial).or_default();
            let status = if failed { "out of sync" } else { "in sync" };
            if is_policy {
                run.policy_status = status;
            } else {
                run.template_status = status;
            }
            if let Some(n) = snap {
                if is_policy {
                    run.policy = Some(n);
                    run.policy_version = version;
                } else {
                    run.template = Some(n)
                }
            }
        }
    }

    /// An op command Panorama proxies to a managed device (`target=SERIAL`), answered from that
    /// device's own running config.
    fn device_op(&self, serial: &str, c: &Node, path: &[&str]) -> String {
        use super::dataplane::{Matcher, Packet, fib_lookup, security_answer};
        use super::xml_tree::escape;
        let ok = super::response::success_result;
        let Some(d) = self.opts.devices.iter().find(|d| d.serial == serial) else {
            return err_reply(&ApiError::nocode(format!("Device {} is not managed by this Panorama", escape(serial))));
        };
        if !d.connected || self.faults.disconnected.iter().any(|s| s == serial) {
            return err_reply(&ApiError::nocode(format!("Device {} is not connected", escape(serial))));
        }
        let none = super::dataplane::DeviceRun::default();
        let run = self.runs.get(serial).unwrap_or(&none);
        let empty = Node::entry("vsys1");
        let objs = run.policy.as_ref().unwrap_or(&empty);
        let m = Matcher::new(objs, &self.dns);
        match path {
            ["show", "system", "info", ..] => {
                let mem_kb = d.memory_mb.unwrap_or(8192) * 1024 - 30_000;
                let cores = if d.memory_mb.unwrap_or(8192) > 16384 { 8 } else { 4 };
                ok(&format!(
                    "<system><hostname>{h}</hostname><ip-address>{ip}</ip-address><devicename>{h}</devicename><family>vm</family>\
<model>PA-VM</model><serial>{s}</serial><vm-license>VM-100</vm-license><vm-mode>Amazon AWS</vm-mode><vm-cores>{cores}</vm-cores>\
<vm-mem>{mem_kb}</vm-mem><sw-version>{v}</sw-version><operational-mode>normal</operational-mode><multi-vsys>off</multi-vsys></system>",
                    h = escape(&d.hostname),
                    ip = escape(&d.ip),
                    s = escape(&d.serial),
                    v = escape(&d.sw_version)
                ))
            }
            // `show interface all`: `ifnet/entry{name, zone, fwd, vsys, ip}` and `hw/entry{name,
            // state}`, the shape public op-command helpers record (see sim/README); from the
            // devices file's interfaces, all in vsys1 and the template's first virtual router.
            ["show", "interface", ..] if c.child("interface").is_some_and(|i| i.text.trim() == "all") => {
                let (mut ifnet, mut hw) = (String::from("<ifnet>"), String::from("<hw>"));
                for i in &d.interfaces {
                    ifnet += &format!(
                        "<entry><name>{n}</name><zone>{z}</zone><fwd>vr:default</fwd><vsys>1</vsys><ip>{a}</ip></entry>",
                        n = escape(&i.name),
                        z = escape(&i.zone),
                        a = escape(&i.address)
                    );
                    hw += &format!("<entry><name>{}</name><state>up</state></entry>", escape(&i.name));
                }
                ok(&format!("{ifnet}</ifnet>{hw}</hw>"))
            }
            ["test", "security-policy-match", ..] => {
                let pm = c.child("security-policy-match").expect("matched");
                let pkt = match Packet::parse(pm) {
                    Ok(p) => p,
                    Err(e) => return err_reply(&ApiError::new(17, e)),
                };
                let rules = objs.descend(&["rulebase", "security", "rules"]).unwrap_or(&empty);
                ok(&security_answer(m.security(rules, &pkt), &pkt))
            }
            ["test", "nat-policy-match", ..] => {
                let pm = c.child("nat-policy-match").expect("matched");
                let mut pkt = match Packet::parse(pm) {
                    Ok(p) => p,
                    Err(e) => return err_reply(&ApiError::new(17, e)),
                };
                if pkt.to.is_none() {
                    pkt.to = super::dataplane::zone_of(&d.interfaces, run.template.as_ref(), pkt.destination);
                }
                let ifc = pm.child("to-interface").map(|t| t.text.trim().to_string());
                let rules = objs.descend(&["rulebase", "nat", "rules"]).unwrap_or(&empty);
                ok(&super::dataplane::nat_answer(super::dataplane::nat(&m, rules, &pkt, ifc.as_deref())))
            }
            ["test", "routing", "fib-lookup", ..] => {
                let ip = c.descend(&["routing", "fib-lookup", "ip"]).map(|i| i.text.trim().to_string()).unwrap_or_default();
                let Ok(ip) = ip.parse() else { return err_reply(&ApiError::new(17, format!("ip {} is invalid", escape(&ip)))) };
                match fib_lookup(&d.interfaces, run.template.as_ref(), ip) {
                    Some(f) => ok(&format!(
                        "<nh>{nh}</nh><src>{src}</src><ip>{ip}</ip><metric>{m}</metric><interface>{i}</interface><dp>dp0</dp>",
                        nh = if f.next_hop.is_some() { "ip-address" } else { "none" },
                        src = f.src,
                        ip = f.next_hop.map(|n| n.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                        m = f.metric,
                        i = escape(&f.interface)
                    )),
                    None => err_reply(&ApiError::nocode(format!("no route to {ip}"))),
                }
            }
            ["request", "system", "fqdn", "show", ..] => {
                let mut s = String::from("<fqdn-info>");
                for (name, ips) in m.fqdns() {
                    s += &format!(
                        "<entry name=\"{}\"><state>{}</state>",
                        escape(&name),
                        if ips.is_empty() { "unresolved" } else { "resolved" }
                    );
                    for ip in ips {
                        s += &format!("<member>{}</member>", escape(&ip));
                    }
                    s += "</entry>";
                }
                ok(&(s + "</fqdn-info>"))
            }
            _ => err_reply(&ApiError::new(17, format!("{} is unexpected", path.last().unwrap_or(&"")))),
        }
    }

    fn system_info(&self) -> String {
        let t = fmt_ctime(self.local(self.panorama_now()));
        format!(
            "<system><hostname>{h}</hostname><ip-address>127.0.0.1</ip-address><netmask>255.0.0.0</netmask><default-gateway>127.0.0.1</default-gateway>\
<mac-address>00:50:56:00:00:01</mac-address><time>{t}</time><uptime>0 days, 0:00:01</uptime><devicename>{h}</devicename>\
<family>pc</family><model>Panorama</model><serial>000702000001</serial><sw-version>{v}</sw-version><app-version>8800-8000</app-version>\
<av-version>0</av-version><wildfire-version>0</wildfire-version><threat-version>8800-8000</threat-version><system-mode>panorama</system-mode>\
<operational-mode>normal</operational-mode><multi-vsys>off</multi-vsys></system>",
            h = super::xml_tree::escape(&self.opts.hostname),
            v = super::xml_tree::escape(&self.opts.sw_version)
        )
    }

    /// JSON view of jobs for tests (`GET /_sim/jobs`).
    pub fn jobs_json(&self, now: Instant) -> serde_json::Value {
        serde_json::Value::Array(
            self.jobs
                .iter()
                .map(|j| {
                    let ph = j.phase(now);
                    serde_json::json!({
                        "id": j.id, "type": j.kind.name(), "user": j.user, "scope": j.scope,
                        "status": match ph { Phase::Pend => "PEND", Phase::Act(_) => "ACT", Phase::Fin => "FIN" },
                        "result": if ph != Phase::Fin { "PEND" } else if j.ok() { "OK" } else { "FAIL" },
                        "devices": j.devices.iter().map(|d| serde_json::json!({"serial": d.serial, "ok": d.fail.is_none()})).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }

    /// Serialised state for `--state` (candidate and running trees).
    pub fn to_state_xml(&self) -> String {
        let mut s = String::from("<panorama-sim-state><candidate>");
        let mut c = self.candidate.clone();
        c.strip_volatile();
        c.write_xml(&mut s, false);
        s += "</candidate><running>";
        self.running.write_xml(&mut s, false);
        s += "</running></panorama-sim-state>";
        s
    }

    pub fn load_state_xml(&mut self, xml: &str) -> Result<(), String> {
        let root = super::xml_tree::parse_one(xml)?;
        let pick = |t: &str| -> Result<Node, String> {
            root.child(t).and_then(|c| c.child("config")).cloned().ok_or_else(|| format!("state file has no {t}/config"))
        };
        self.candidate = pick("candidate")?;
        self.running = pick("running")?;
        self.refs_cache = None;
        self.dirty.clear();
        Ok(())
    }
}

const WDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `Tue Dec  1 11:22:33 2026` (C `ctime`, day space-padded): `show system info` `<time>`.
pub fn fmt_ctime(t: SystemTime) -> String {
    let (y, mo, d, wd, h, mi, s) = civil(t);
    format!("{} {} {d:>2} {h:02}:{mi:02}:{s:02} {y}", WDAYS[wd], MONTHS[mo - 1])
}

/// `Tue Dec  1 11:22:33 PST 2026` (`date` style): `show clock`.
pub fn fmt_clock(t: SystemTime, zone: &str) -> String {
    let (y, mo, d, wd, h, mi, s) = civil(t);
    format!("{} {} {d:>2} {h:02}:{mi:02}:{s:02} {zone} {y}", WDAYS[wd], MONTHS[mo - 1])
}

/// Zone abbreviation for an offset: `UTC` for 0, else the numeric form tzdata gives its fixed
/// offset zones (`Etc/GMT+8` prints `-08`, `Asia/Kolkata`-like offsets `+0530`).
pub fn tz_abbrev(min: i32) -> String {
    if min == 0 {
        return "UTC".into();
    }
    let sign = if min < 0 { '-' } else { '+' };
    let a = min.unsigned_abs();
    if a.is_multiple_of(60) { format!("{sign}{:02}", a / 60) } else { format!("{sign}{:02}{:02}", a / 60, a % 60) }
}

fn device_xml(d: &Device, run: Option<&super::dataplane::DeviceRun>) -> String {
    use super::xml_tree::escape;
    let (ps, ts, md5) = run.map(|r| (r.policy_status, r.template_status, r.policy_digest())).unwrap_or_default();
    let version = run.map(|r| r.policy_version).filter(|v| *v > 0).map(|v| v.to_string()).unwrap_or_default();
    format!(
        "<entry name=\"{s}\"><serial>{s}</serial><connected>{c}</connected><unsupported-version>no</unsupported-version>\
<hostname>{h}</hostname><ip-address>{ip}</ip-address><ipv6-address>unknown</ipv6-address><model>{m}</model><family>vm</family>\
<sw-version>{v}</sw-version><multi-vsys>no</multi-vsys><vsys><entry name=\"vsys1\"><display-name>vsys1</display-name>\
<shared-policy-status>{ps}</shared-policy-status><shared-policy-md5sum>{md5}</shared-policy-md5sum>\
<shared-policy-version>{version}</shared-policy-version></entry></vsys>\
<template-status>{ts}</template-status><connected-at>2024/01/01 00:00:00</connected-at><uptime>1 days, 0:00:00</uptime>\
<app-version>8800-8000</app-version><threat-version>8800-8000</threat-version></entry>",
        s = escape(&d.serial),
        c = if d.connected { "yes" } else { "no" },
        h = escape(&d.hostname),
        ip = escape(&d.ip),
        m = escape(&d.model),
        v = escape(&d.sw_version)
    )
}

/// (tag, attrs) of each ancestor of `path` in `tree`, used to recreate missing parents.
fn shells_of(tree: &Node, path: &[Key]) -> Shells {
    let mut out = Vec::new();
    let mut n = tree;
    for k in &path[..path.len().saturating_sub(1)] {
        match n.children.get(k) {
            Some(c) => {
                out.push((c.tag.clone(), c.attrs.clone()));
                n = c;
            }
            None => break,
        }
    }
    out
}

/// For an entry path: up to 16 preceding entry keys in `tree`, nearest first (empty = first).
fn preceding(tree: &Node, path: &[Key]) -> Option<Vec<Key>> {
    let (last, parent) = path.split_last()?;
    if !matches!(last, Key::Entry(_)) {
        return None;
    }
    let p = tree.get_path(parent)?;
    let i = p.children.get_index_of(last)?;
    Some((0..i).rev().take(16).filter_map(|j| p.children.get_index(j).map(|(k, _)| k.clone())).collect())
}

/// The nearest entry before `path` in `a` that also exists in `b`'s parent (None = none).
fn anchor(a: &Node, b: &Node, path: &[Key]) -> Option<Key> {
    let (last, parent) = path.split_last()?;
    let (pa, pb) = (a.get_path(parent)?, b.get_path(parent)?);
    let i = pa.children.get_index_of(last)?;
    (0..i).rev().map(|j| pa.children.get_index(j).expect("in range").0).find(|k| pb.children.contains_key(*k)).cloned()
}

/// An entry present in both trees sits after a different common neighbour (it was moved).
fn moved(cand: &Node, run: &Node, path: &[Key]) -> bool {
    matches!(path.last(), Some(Key::Entry(_))) && anchor(cand, run, path) != anchor(run, cand, path)
}

/// Moves the entry at `path` right after the first of `prev` present (or to the front when
/// `prev` is empty); leaves it where it is when none of them is there.
fn place_after(tree: &mut Node, path: &[Key], prev: &[Key]) {
    let Some((last, parent)) = path.split_last() else { return };
    let Some(p) = tree.get_path_mut(parent) else { return };
    let Some(cur) = p.children.get_index_of(last) else { return };
    let want = if prev.is_empty() {
        0
    } else {
        match prev.iter().find_map(|k| p.children.get_index_of(k)) {
            Some(i) if i < cur => i + 1,
            Some(i) => i,
            None => return,
        }
    };
    if want != cur {
        p.children.move_index(cur, want);
    }
}

/// Sets `path` in `tree` to `node` (None = remove), creating parents from `shells`.
fn apply_partial(tree: &mut Node, path: &[Key], node: Option<Node>, shells: &Shells) {
    if path.is_empty() {
        return;
    }
    let (parent, last) = path.split_at(path.len() - 1);
    match node {
        None => {
            if let Some(p) = tree.get_path_mut(parent) {
                p.children.shift_remove(&last[0]);
            }
        }
        Some(mut n) => {
            n.strip_volatile();
            let mut cur = tree;
            for (i, k) in parent.iter().enumerate() {
                if !cur.children.contains_key(k) {
                    let Some((tag, attrs)) = shells.get(i) else { return };
                    let mut s = Node::new(tag);
                    s.attrs = attrs.clone();
                    s.strip_volatile();
                    if let Key::Member(t) = k {
                        s.text = t.clone();
                    }
                    cur.children.insert(k.clone(), s);
                }
                cur = cur.children.get_mut(k).expect("just ensured");
            }
            cur.children.insert(last[0].clone(), n);
        }
    }
}

/// Multi-config sub-requests in document order: (id, op or the error it parses to).
pub fn multi_ops(element: &str) -> Result<Vec<(Option<String>, Result<WriteOp, ApiError>)>, String> {
    // Parse children without the key-indexing of Node (several children share a tag).
    let mut reader = quick_xml::Reader::from_str(element);
    use quick_xml::events::Event;
    let mut depth = 0usize;
    let mut out = Vec::new();
    // For each top-level child: record its tag, attrs, and byte span of its content.
    let mut cur: Option<(String, Vec<(String, String)>, usize)> = None;
    loop {
        let pos_before = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| e.to_string())?;
        let pos_after = reader.buffer_position() as usize;
        match ev {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 {
                    let (tag, attrs) = tag_attrs(&e)?;
                    cur = Some((tag, attrs, pos_after));
                }
            }
            Event::Empty(e) => {
                if depth == 1 {
                    let (tag, attrs) = tag_attrs(&e)?;
                    out.push(build_sub(&tag, &attrs, ""));
                } else if depth == 0 {
                    return Ok(out);
                }
            }
            Event::End(_) => {
                if depth == 2 {
                    let (tag, attrs, start) = cur.take().ok_or("unbalanced")?;
                    out.push(build_sub(&tag, &attrs, &element[start..pos_before]));
                }
                depth = depth.checked_sub(1).ok_or("unbalanced end tag")?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unclosed element".into());
    }
    Ok(out)
}

fn tag_attrs(e: &quick_xml::events::BytesStart) -> Result<(String, Vec<(String, String)>), String> {
    let tag = e.name().as_ref().to_string();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let v = super::xml_tree::unescape(&a.value)?;
        attrs.push((a.key.as_ref().to_string(), v));
    }
    Ok((tag, attrs))
}

fn build_sub(tag: &str, attrs: &[(String, String)], content: &str) -> (Option<String>, Result<WriteOp, ApiError>) {
    let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let id = get("id");
    let xpath = get("xpath").unwrap_or_default();
    let op = match tag {
        "set" => Ok(WriteOp::Set { xpath, element: content.to_string() }),
        "edit" => Ok(WriteOp::Edit { xpath, element: content.to_string() }),
        "delete" => Ok(WriteOp::Delete { xpath }),
        "rename" => Ok(WriteOp::Rename { xpath, newname: get("newname").unwrap_or_default() }),
        "move" => Ok(WriteOp::Move { xpath, where_: get("where").unwrap_or_default(), dst: get("dst") }),
        other => Err(ApiError::new(12, format!("{other} unexpected here"))),
    };
    (id, op)
}
