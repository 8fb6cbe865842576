//! Routing and the REST semantics of `/api` and `/apis`: discovery, get/list/watch,
//! create/update/patch/delete(collection), the `status` and `token` subresources, selectors,
//! pagination, optimistic concurrency, RBAC checks, and API-server-shaped `Status` errors.
//! Everything here runs under the state lock and never awaits; a watch returns a [`WatchPlan`]
//! that the server turns into a chunked stream.

use super::auth::{self, Attributes, Identity, IssuedToken};
use super::clock;
use super::discovery;
use super::patch;
use super::resources::{self, RESOURCES, ResourceDef};
use super::selectors::{FieldSelector, LabelSelector};
use super::state::Sim;
use super::store::{Change, EventType};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

pub struct ApiRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub content_type: &'a str,
    pub accept: &'a str,
    pub body: &'a [u8],
    pub who: &'a Identity,
}

impl ApiRequest<'_> {
    fn q(&self, k: &str) -> Option<&str> {
        self.query.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true" | "1"))
    }
    fn dry_run(&self) -> bool {
        self.q("dryRun").is_some_and(|v| v == "All")
    }
}

pub enum Outcome {
    Reply(u16, Value),
    /// A non-JSON answer: status, content type, body.
    Raw(u16, &'static str, Vec<u8>),
    Watch(WatchPlan),
}

/// Which changes a watch delivers.
pub struct Filter {
    pub res: String,
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The watch event for a change, if this watch sees it. Like the API server's watch cache,
    /// an object that stops matching the selectors arrives as DELETED, one that starts as ADDED.
    pub fn deliver(&self, c: &Change) -> Option<Value> {
        if c.res != self.res || self.ns.as_ref().is_some_and(|n| *n != c.ns) {
            return None;
        }
        let now = self.matches(&c.obj);
        let ty = match c.kind {
            EventType::Added | EventType::Deleted => now.then_some(c.kind),
            EventType::Modified => match (c.old.as_ref().is_some_and(|o| self.matches(o)), now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            },
        }?;
        Some(json!({"type": ty.as_str(), "object": c.obj}))
    }
}

/// A watch, ready to stream: `initial` events first, then live changes after `start_rv`.
pub struct WatchPlan {
    pub def: &'static ResourceDef,
    pub filter: Filter,
    pub initial: Vec<Value>,
    /// None: the stream ends after `initial` (it holds a 410 ERROR event).
    pub rx: Option<broadcast::Receiver<Arc<Change>>>,
    pub start_rv: u64,
    pub timeout: Option<Duration>,
    pub bookmarks: bool,
}

pub struct ApiError(pub u16, pub Value);
type R<T> = Result<T, ApiError>;

/// A `Status` object as the API server returns it for failures.
pub fn status(code: u16, reason: &str, message: impl Into<String>, details: Option<Value>) -> Value {
    let mut v = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message.into(), "reason": reason, "code": code});
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

fn err(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
    ApiError(code, status(code, reason, message, None))
}

fn details(def: &ResourceDef, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": def.plural});
    if !def.group.is_empty() {
        d["group"] = json!(def.group);
    }
    d
}

fn qualified(def: &ResourceDef) -> String {
    if def.group.is_empty() { def.plural.to_string() } else { format!("{}.{}", def.plural, def.group) }
}

fn not_found(def: &ResourceDef, name: &str) -> ApiError {
    ApiError(404, status(404, "NotFound", format!("{} \"{name}\" not found", qualified(def)), Some(details(def, name))))
}

fn already_exists(def: &ResourceDef, name: &str) -> ApiError {
    ApiError(409, status(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(def)), Some(details(def, name))))
}

fn conflict(def: &ResourceDef, name: &str) -> ApiError {
    ApiError(
        409,
        status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(def)
            ),
            Some(details(def, name)),
        ),
    )
}

fn invalid(def: &ResourceDef, name: &str, field: &str, msg: &str) -> ApiError {
    let mut d = details(def, name);
    d["kind"] = json!(def.kind);
    d["causes"] = json!([{"reason": "FieldValueInvalid", "message": msg, "field": field}]);
    ApiError(422, status(422, "Invalid", format!("{} \"{name}\" is invalid: {field}: {msg}", def.kind), Some(d)))
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    err(400, "BadRequest", msg)
}

fn no_route() -> ApiError {
    ApiError(404, status(404, "NotFound", "the server could not find the requested resource", Some(json!({}))))
}

pub fn handle(sim: &mut Sim, req: &ApiRequest) -> Outcome {
    match route(sim, req) {
        Ok(o) => o,
        Err(ApiError(code, body)) => Outcome::Reply(code, body),
    }
}

fn route(sim: &mut Sim, req: &ApiRequest) -> R<Outcome> {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let discovery_get = |v: Option<Value>| -> R<Outcome> {
        if req.method != "GET" {
            return Err(err(
                405,
                "MethodNotAllowed",
                format!("the server does not allow this method on the requested resource ({})", req.method),
            ));
        }
        v.map(|v| Outcome::Reply(200, v)).ok_or_else(no_route)
    };
    match segs.as_slice() {
        ["version"] => discovery_get(Some(discovery::version())),
        ["api"] => discovery_get(Some(discovery::api_versions(&sim.opts.server_address))),
        ["apis"] => discovery_get(Some(discovery::api_group_list())),
        ["api", v] => discovery_get(discovery::resource_list("", v)),
        ["apis", g] => discovery_get(discovery::api_group(g)),
        ["apis", g, v] => discovery_get(discovery::resource_list(g, v)),
        // OpenAPI v2 without definitions: kubectl before 1.27 validates client-side with it and
        // skips kinds it has no schema for. Protobuf (what kubectl asks for) of an empty
        // Document is zero bytes.
        ["openapi", "v2"] if req.method == "GET" && req.accept.contains("protobuf") => {
            Ok(Outcome::Raw(200, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", Vec::new()))
        }
        ["openapi", "v2"] => discovery_get(Some(
            json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": format!("v1.{}.0", discovery::MINOR)}, "paths": {}, "definitions": {}}),
        )),
        ["openapi", "v3"] => discovery_get(Some(discovery::openapi_v3_root())),
        ["openapi", "v3", gv @ ..] => discovery_get(discovery::openapi_v3_group_version(&gv.join("/"))),
        ["api", "v1", rest @ ..] => resource(sim, req, "", "v1", rest),
        ["apis", "authorization.k8s.io", "v1", "selfsubjectaccessreviews"] if req.method == "POST" => self_review(sim, req),
        ["apis", g, v, rest @ ..] => resource(sim, req, g, v, rest),
        _ => Err(no_route()),
    }
}

struct Target<'a> {
    def: &'static ResourceDef,
    ns: Option<&'a str>,
    name: Option<&'a str>,
    sub: Option<&'a str>,
}

fn parse_target<'a>(group: &str, version: &str, rest: &[&'a str]) -> R<Target<'a>> {
    let (ns, plural, name, sub) = match rest {
        ["namespaces", name, s @ ("status" | "finalize")] => (None, "namespaces", Some(*name), Some(*s)),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        [plural] => (None, *plural, None, None),
        [plural, name] => (None, *plural, Some(*name), None),
        [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
        _ => return Err(no_route()),
    };
    let def = resources::find(group, version, plural).ok_or_else(no_route)?;
    if ns.is_some() && !def.namespaced {
        return Err(no_route());
    }
    if def.namespaced && ns.is_none() && name.is_some() {
        return Err(no_route());
    }
    match sub {
        None => {}
        Some("status") if def.status => {}
        Some("token") if def.group.is_empty() && def.plural == "serviceaccounts" => {}
        Some(_) => return Err(no_route()),
    }
    Ok(Target { def, ns, name, sub })
}

fn resource(sim: &mut Sim, req: &ApiRequest, group: &str, version: &str, rest: &[&str]) -> R<Outcome> {
    let (legacy_watch, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let t = parse_target(group, version, rest)?;
    let watch = legacy_watch || req.flag("watch");
    let verb = match (req.method, t.name.is_some(), t.sub) {
        ("GET", _, _) if watch => "watch",
        ("GET", true, _) => "get",
        ("GET", false, None) => "list",
        ("POST", false, None) => "create",
        ("POST", true, Some("token")) => "create",
        ("PUT", true, s) if s != Some("token") => "update",
        ("PATCH", true, s) if s != Some("token") => "patch",
        ("DELETE", true, None) => "delete",
        ("DELETE", false, None) => "deletecollection",
        (m, _, _) => {
            return Err(err(405, "MethodNotAllowed", format!("the server does not allow this method on the requested resource ({m})")));
        }
    };
    // RBAC sees a namespace's own name as its namespace, as the API server's request info does.
    let attr_ns = if t.def.plural == "namespaces" && t.def.group.is_empty() { t.name.or(t.ns) } else { t.ns };
    let attrs = Attributes { verb, group: t.def.group, resource: t.def.plural, subresource: t.sub, namespace: attr_ns, name: t.name };
    let counted = match t.sub {
        Some(s) => format!("{}/{s}", t.def.plural),
        None => t.def.plural.to_string(),
    };
    sim.count(verb, &counted);
    if !auth::authorize(&sim.store, req.who, &attrs) {
        sim.stats.forbidden += 1;
        let d = json!({"name": t.name.unwrap_or(""), "group": t.def.group, "kind": t.def.plural});
        return Err(ApiError(403, status(403, "Forbidden", auth::forbidden_message(req.who, &attrs), Some(d))));
    }
    match verb {
        "watch" => watch_plan(sim, req, &t).map(Outcome::Watch),
        "get" => get(sim, &t),
        "list" => list(sim, req, &t),
        "create" if t.sub == Some("token") => token_request(sim, req, &t),
        "create" => create(sim, req, &t, parse_body(req)?),
        "update" => update(sim, req, &t),
        "patch" => patch_object(sim, req, &t),
        "delete" => delete(sim, req, &t),
        _ => delete_collection(sim, req, &t),
    }
}

fn parse_body(req: &ApiRequest) -> R<Value> {
    let ct = req.content_type.split(';').next().unwrap_or("").trim();
    if ct.contains("protobuf") || ct.contains("cbor") {
        return Err(err(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {ct})"
            ),
        ));
    }
    let v: Value = if ct.ends_with("yaml") {
        serde_saphyr::from_slice(req.body).map_err(|e| bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(req.body).map_err(|e| bad_request(format!("error decoding JSON: {e}")))?
    };
    if !v.is_object() {
        return Err(bad_request("the request body must be a JSON object"));
    }
    Ok(v)
}

fn get(sim: &mut Sim, t: &Target) -> R<Outcome> {
    let name = t.name.expect("get has a name");
    let obj = sim.store.get(&t.def.id(), t.ns.unwrap_or(""), name).ok_or_else(|| not_found(t.def, name))?;
    Ok(Outcome::Reply(200, obj.clone()))
}

fn selectors(req: &ApiRequest, def: &ResourceDef) -> R<(LabelSelector, FieldSelector)> {
    let labels =
        LabelSelector::parse(req.q("labelSelector").unwrap_or("")).map_err(|e| bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(req.q("fieldSelector").unwrap_or(""), |f| def.field_selectable(f)).map_err(bad_request)?;
    Ok((labels, fields))
}

/// Continue tokens: base64 of `{"rv": <list version>, "start": [ns, name]}` (the last key served).
fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({"rv": rv, "start": [ns, name]}).to_string())
}

fn decode_continue(s: &str) -> Option<(u64, String, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    Some((v["rv"].as_u64()?, v["start"][0].as_str()?.to_string(), v["start"][1].as_str()?.to_string()))
}

fn list(sim: &mut Sim, req: &ApiRequest, t: &Target) -> R<Outcome> {
    let (labels, fields) = selectors(req, t.def)?;
    let limit = match req.q("limit") {
        None | Some("") | Some("0") => None,
        Some(l) => Some(l.parse::<usize>().map_err(|_| bad_request(format!("invalid limit {l:?}")))?),
    };
    let (list_rv, after) = match req.q("continue").filter(|c| !c.is_empty()) {
        None => (sim.store.rv(), None),
        Some(c) => {
            let (rv, ns, name) = decode_continue(c).ok_or_else(|| bad_request("continue key is not valid"))?;
            if rv < sim.store.floor() {
                sim.stats.gone_410 += 1;
                return Err(err(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ));
            }
            (rv, Some((ns, name)))
        }
    };
    let id = t.def.id();
    let all: Vec<_> = sim
        .store
        .list(&id, t.ns)
        .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
        .filter(|(_, o)| labels.matches(o) && fields.matches(o))
        .collect();
    let page = limit.map_or(all.len(), |l| l.min(all.len()));
    let items: Vec<Value> = all[..page].iter().map(|(_, o)| (*o).clone()).collect();
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if page < all.len()
        && let Some(((ns, name), _)) = all[..page].last()
    {
        meta["continue"] = json!(encode_continue(list_rv, ns, name));
        meta["remainingItemCount"] = json!(all.len() - page);
    }
    Ok(Outcome::Reply(200, json!({"kind": t.def.list_kind(), "apiVersion": t.def.api_version(), "metadata": meta, "items": items})))
}

fn valid_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn valid_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(valid_dns_label)
}

/// Name rules: namespaces are DNS-1123 labels, services DNS-1035 labels (must start with a
/// letter), RBAC objects any path segment, everything else DNS-1123 subdomains.
fn validate_name(def: &ResourceDef, name: &str) -> Result<(), String> {
    let ok = match (def.group, def.plural) {
        ("", "namespaces") => valid_dns_label(name),
        ("", "services") => valid_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
        ("rbac.authorization.k8s.io", _) => !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%']),
        _ => valid_dns_subdomain(name),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid value: \"{name}\": a lowercase RFC 1123 name must consist of lower case alphanumeric characters or '-'"))
    }
}

/// The API server's node-port range (`--service-node-port-range`, default 30000-32767).
const NODE_PORTS: std::ops::RangeInclusive<u64> = 30000..=32767;

/// Kind-specific defaulting, on create (`old` None) and update (`old` the stored object).
/// Fails as the API server does when an allocation cannot be made (node-port range full).
fn apply_defaults(sim: &mut Sim, def: &ResourceDef, obj: &mut Value, old: Option<&Value>) -> R<()> {
    match (def.group, def.kind) {
        ("", "Service") => {
            let spec = obj.as_object_mut().expect("object").entry("spec").or_insert_with(|| json!({}));
            if !spec.is_object() {
                *spec = json!({});
            }
            let ty = spec.get("type").and_then(Value::as_str).unwrap_or("ClusterIP").to_string();
            spec["type"] = json!(ty);
            if ty != "ExternalName" {
                let cur = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
                let ip = if !cur.is_empty() {
                    cur
                } else if let Some(o) = old.and_then(|o| o.pointer("/spec/clusterIP")).and_then(Value::as_str) {
                    o.to_string()
                } else {
                    sim.allocate_ip()
                };
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
                if ip != "None" {
                    spec["ipFamilies"] = json!(["IPv4"]);
                    spec["ipFamilyPolicy"] = json!("SingleStack");
                }
                spec.as_object_mut().expect("object").entry("sessionAffinity").or_insert(json!("None"));
                spec.as_object_mut().expect("object").entry("internalTrafficPolicy").or_insert(json!("Cluster"));
            }
            let external = ty == "NodePort" || ty == "LoadBalancer";
            if external {
                spec.as_object_mut().expect("object").entry("externalTrafficPolicy").or_insert(json!("Cluster"));
            }
            if ty == "LoadBalancer" {
                spec.as_object_mut().expect("object").entry("allocateLoadBalancerNodePorts").or_insert(json!(true));
            }
            let old_ports = old.and_then(|o| o.pointer("/spec/ports")).and_then(Value::as_array).cloned().unwrap_or_default();
            // A LoadBalancer Service gets node ports unless it opts out
            // (`allocateLoadBalancerNodePorts: false`, as with the AWS Load Balancer Controller's
            // IP targets): kubernetes pkg/registry/core/service/storage (`shouldAllocateNodePorts`).
            let wants_node_ports =
                ty == "NodePort" || (ty == "LoadBalancer" && spec.get("allocateLoadBalancerNodePorts") != Some(&json!(false)));
            // Ports this request already took (the store knows every other Service's).
            let mut taken: Vec<u64> = Vec::new();
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter(|p| p.is_object()) {
                    let m = p.as_object_mut().expect("object");
                    m.entry("protocol").or_insert(json!("TCP"));
                    if let Some(port) = m.get("port").cloned() {
                        m.entry("targetPort").or_insert(port.clone());
                        if wants_node_ports && m.get("nodePort").is_none() {
                            let prev = old_ports
                                .iter()
                                .find(|o| o.get("port") == Some(&port))
                                .and_then(|o| o.get("nodePort"))
                                .and_then(Value::as_u64);
                            let free = || NODE_PORTS.clone().find(|n| !sim.store.node_port_in_use(*n) && !taken.contains(n));
                            // kubernetes: errors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %v", err))
                            // with the allocator's "range is full" (HTTP 500, reason InternalError).
                            let np = prev.or_else(free).ok_or_else(|| {
                                err(500, "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full")
                            })?;
                            taken.push(np);
                            m.insert("nodePort".into(), json!(np));
                        }
                    }
                }
            }
        }
        ("", "Secret") => {
            let m = obj.as_object_mut().expect("object");
            m.entry("type").or_insert(json!("Opaque"));
            if let Some(Value::Object(sd)) = m.remove("stringData") {
                let data = m.entry("data").or_insert_with(|| json!({}));
                for (k, v) in sd {
                    data[&k] = json!(base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default()));
                }
            }
        }
        _ => {}
    };
    Ok(())
}

/// Empty status a new object of a kind with a status subresource starts with.
fn initial_status(def: &ResourceDef) -> Value {
    match def.kind {
        "Service" => json!({"loadBalancer": {}}),
        "Pod" => json!({"phase": "Pending"}),
        _ => json!({}),
    }
}

fn check_type(def: &ResourceDef, obj: &Value) -> R<()> {
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && av != def.api_version()
    {
        return Err(bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != def.kind
    {
        return Err(bad_request(format!("the kind in the data ({k}) does not match the expected kind ({})", def.kind)));
    }
    Ok(())
}

fn create(sim: &mut Sim, req: &ApiRequest, t: &Target, mut obj: Value) -> R<Outcome> {
    let def = t.def;
    check_type(def, &obj)?;
    obj["apiVersion"] = json!(def.api_version());
    obj["kind"] = json!(def.kind);
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    let ns = if def.namespaced {
        let ns = t.ns.ok_or_else(no_route)?;
        if let Some(body_ns) = obj.pointer("/metadata/namespace").and_then(Value::as_str)
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        }
        obj["metadata"]["namespace"] = json!(ns);
        ns.to_string()
    } else {
        obj["metadata"].as_object_mut().expect("object").remove("namespace");
        String::new()
    };
    let mut name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    if name.is_empty() {
        let gen_name = obj.pointer("/metadata/generateName").and_then(Value::as_str).unwrap_or("").to_string();
        if gen_name.is_empty() {
            return Err(invalid(def, "", "metadata.name", "Required value: name or generateName is required"));
        }
        name = format!("{gen_name}{}", sim.name_suffix());
        obj["metadata"]["name"] = json!(name);
    }
    validate_name(def, &name).map_err(|m| invalid(def, &name, "metadata.name", &m))?;
    if def.namespaced && sim.store.get("/namespaces", "", &ns).is_none() {
        return Err(not_found(resources::by_id("/namespaces").expect("namespaces served"), &ns));
    }
    if def.kind != "Namespace"
        && def.namespaced
        && sim.store.get("/namespaces", "", &ns).and_then(|n| n.pointer("/metadata/deletionTimestamp")).is_some()
    {
        return Err(err(403, "Forbidden", format!("unable to create new content in namespace {ns} because it is being terminated")));
    }
    if sim.store.get(&def.id(), &ns, &name).is_some() {
        return Err(already_exists(def, &name));
    }
    for k in ["resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "selfLink"] {
        obj["metadata"].as_object_mut().expect("object").remove(k);
    }
    if def.status {
        obj["status"] = initial_status(def);
    }
    apply_defaults(sim, def, &mut obj, None)?;
    let obj = sim.finish_new(obj, def.kind);
    if req.dry_run() {
        return Ok(Outcome::Reply(201, obj));
    }
    let stored = sim.store.create(&def.id(), &ns, &name, obj);
    after_write(sim, def, &ns);
    Ok(Outcome::Reply(201, stored))
}

/// Controllers that react to writes, run synchronously (their effect is a later version).
fn after_write(sim: &mut Sim, def: &ResourceDef, ns: &str) {
    match (def.group, def.plural) {
        ("", "namespaces") => {}
        ("", "secrets" | "serviceaccounts") => sim.reconcile_tokens(ns),
        _ => {}
    }
}

/// Stores `new` as the next state of `existing` (an update, a patch result, or a status write).
fn commit_update(sim: &mut Sim, req: &ApiRequest, t: &Target, existing: Value, mut new: Value) -> R<Outcome> {
    let def = t.def;
    let ns = t.ns.unwrap_or("").to_string();
    let name = t.name.expect("update has a name").to_string();
    check_type(def, &new)?;
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    let body_name = new.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if !body_name.is_empty() && body_name != name {
        return Err(bad_request(format!("the name of the object ({body_name}) does not match the name on the URL ({name})")));
    }
    if def.namespaced
        && let Some(body_ns) = new.pointer("/metadata/namespace").and_then(Value::as_str)
        && !body_ns.is_empty()
        && body_ns != ns
    {
        return Err(bad_request("the namespace of the provided object does not match the namespace sent on the request"));
    }
    let want_rv = new.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
    if !want_rv.is_empty() && Some(want_rv) != existing.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
        return Err(conflict(def, &name));
    }
    let mut next = if t.sub == Some("status") {
        // The status subresource changes only `.status`.
        let mut n = existing.clone();
        match new.get("status") {
            Some(s) if !s.is_null() => n["status"] = s.clone(),
            _ => {
                n.as_object_mut().expect("object").remove("status");
            }
        }
        n
    } else {
        new["apiVersion"] = json!(def.api_version());
        new["kind"] = json!(def.kind);
        let m = new["metadata"].as_object_mut().expect("object");
        for k in ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"] {
            match existing["metadata"].get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        if def.status {
            // Ordinary writes cannot change status (the status subresource owns it).
            match existing.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    new.as_object_mut().expect("object").remove("status");
                }
            }
        }
        apply_defaults(sim, def, &mut new, Some(&existing))?;
        new
    };
    next["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"].clone();
    if next == existing {
        // A no-op write does not bump the version (and emits no event), like the API server.
        return Ok(Outcome::Reply(200, existing));
    }
    if req.dry_run() {
        return Ok(Outcome::Reply(200, next));
    }
    let stored = sim.store.update(&def.id(), &ns, &name, next);
    after_write(sim, def, &ns);
    Ok(Outcome::Reply(200, stored))
}

fn existing(sim: &Sim, t: &Target) -> R<Value> {
    let name = t.name.expect("named");
    sim.store.get(&t.def.id(), t.ns.unwrap_or(""), name).cloned().ok_or_else(|| not_found(t.def, name))
}

fn update(sim: &mut Sim, req: &ApiRequest, t: &Target) -> R<Outcome> {
    let new = parse_body(req)?;
    let cur = existing(sim, t)?;
    commit_update(sim, req, t, cur, new)
}

fn patch_object(sim: &mut Sim, req: &ApiRequest, t: &Target) -> R<Outcome> {
    let ct = req.content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let name = t.name.expect("patch has a name");
    let is_apply = ct == "application/apply-patch+yaml" || ct == "application/apply-patch+json";
    if is_apply && req.q("fieldManager").is_none_or(str::is_empty) {
        return Err(bad_request("PATCH /apply requires fieldManager"));
    }
    let body: Value = if is_apply || ct.ends_with("yaml") {
        serde_saphyr::from_slice(req.body).map_err(|e| bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(req.body).map_err(|e| bad_request(format!("error decoding patch: {e}")))?
    };
    let cur = match sim.store.get(&t.def.id(), t.ns.unwrap_or(""), name) {
        Some(c) => c.clone(),
        None if is_apply && t.sub.is_none() => {
            // Server-side apply creates what does not exist.
            if !body.is_object() {
                return Err(bad_request("the applied configuration must be an object"));
            }
            let body_name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            if body_name != name {
                return Err(bad_request(format!("the name of the object ({body_name}) does not match the name on the URL ({name})")));
            }
            return create(sim, req, t, body);
        }
        None => return Err(not_found(t.def, name)),
    };
    let mut target = cur.clone();
    let res = match ct.as_str() {
        "application/merge-patch+json" => {
            patch::merge_patch(&mut target, &body);
            Ok(())
        }
        "application/strategic-merge-patch+json" => patch::strategic_merge(&mut target, &body),
        "application/json-patch+json" => patch::json_patch(&mut target, &body),
        _ if is_apply => {
            let b = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            if b != name {
                return Err(bad_request(format!("the name of the object ({b}) does not match the name on the URL ({name})")));
            }
            patch::apply(&mut target, &body)
        }
        other => {
            return Err(err(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
                ),
            ));
        }
    };
    res.map_err(|e| err(422, "Invalid", e))?;
    if !target.is_object() {
        return Err(err(422, "Invalid", "the patch result is not an object"));
    }
    commit_update(sim, req, t, cur, target)
}

fn delete_one(sim: &mut Sim, def: &ResourceDef, ns: &str, name: &str) -> Option<Value> {
    if def.group.is_empty() && def.plural == "namespaces" {
        // Namespace deletion removes everything in it (at once: no Terminating phase here).
        for d in RESOURCES.iter().filter(|d| d.namespaced) {
            let names: Vec<String> = sim.store.list(&d.id(), Some(name)).map(|((_, n), _)| n.clone()).collect();
            for n in names {
                sim.store.delete(&d.id(), name, &n);
            }
        }
    }
    let gone = sim.store.delete(&def.id(), ns, name)?;
    if def.group.is_empty() && def.plural == "serviceaccounts" {
        sim.service_account_deleted(ns, name);
    }
    Some(gone)
}

fn delete(sim: &mut Sim, req: &ApiRequest, t: &Target) -> R<Outcome> {
    let name = t.name.expect("delete has a name");
    let cur = existing(sim, t)?;
    if !req.body.is_empty() {
        let opts: Value = serde_json::from_slice(req.body).map_err(|e| bad_request(format!("error decoding DeleteOptions: {e}")))?;
        if let Some(rv) = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str)
            && Some(rv) != cur.pointer("/metadata/resourceVersion").and_then(Value::as_str)
        {
            return Err(conflict(t.def, name));
        }
        if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
            && Some(uid) != cur.pointer("/metadata/uid").and_then(Value::as_str)
        {
            return Err(conflict(t.def, name));
        }
    }
    if req.dry_run() {
        return Ok(Outcome::Reply(200, cur));
    }
    let gone = delete_one(sim, t.def, t.ns.unwrap_or(""), name).ok_or_else(|| not_found(t.def, name))?;
    Ok(Outcome::Reply(200, gone))
}

fn delete_collection(sim: &mut Sim, req: &ApiRequest, t: &Target) -> R<Outcome> {
    let (labels, fields) = selectors(req, t.def)?;
    let doomed: Vec<(String, String)> =
        sim.store.list(&t.def.id(), t.ns).filter(|(_, o)| labels.matches(o) && fields.matches(o)).map(|(k, _)| k.clone()).collect();
    let mut items = Vec::new();
    for (ns, name) in doomed {
        if req.dry_run() {
            items.extend(sim.store.get(&t.def.id(), &ns, &name).cloned());
        } else {
            items.extend(delete_one(sim, t.def, &ns, &name));
        }
    }
    let rv = sim.store.rv().to_string();
    Ok(Outcome::Reply(
        200,
        json!({"kind": t.def.list_kind(), "apiVersion": t.def.api_version(), "metadata": {"resourceVersion": rv}, "items": items}),
    ))
}

/// `POST …/serviceaccounts/NAME/token`: a TokenRequest answered with a time-bound token.
fn token_request(sim: &mut Sim, req: &ApiRequest, t: &Target) -> R<Outcome> {
    let ns = t.ns.expect("namespaced");
    let name = t.name.expect("named");
    let sa = existing(sim, t)?;
    let body = if req.body.is_empty() { json!({}) } else { parse_body(req)? };
    if let Some(k) = body.get("kind").and_then(Value::as_str)
        && k != "TokenRequest"
    {
        return Err(bad_request(format!("the kind in the data ({k}) does not match the expected kind (TokenRequest)")));
    }
    let secs = body.pointer("/spec/expirationSeconds").and_then(Value::as_i64).unwrap_or(3600);
    if secs < 600 {
        return Err(err(422, "Invalid", "spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes"));
    }
    if secs > 1 << 32 {
        return Err(err(422, "Invalid", "spec.expirationSeconds: Invalid value: may not specify a duration larger than 2^32 seconds"));
    }
    let audiences: Vec<String> = body
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec!["https://kubernetes.default.svc.cluster.local".into()]);
    let now = clock::unix_now();
    let uid = sa.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();
    let token = sim.tokens.issue(
        IssuedToken { ns: ns.into(), sa: name.into(), sa_uid: uid, secret: None, expires: Some(now + secs) },
        now,
        &audiences,
    );
    let mut spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(secs);
    Ok(Outcome::Reply(
        201,
        json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"name": name, "namespace": ns, "creationTimestamp": clock::rfc3339(now)},
               "spec": spec,
               "status": {"token": token, "expirationTimestamp": clock::rfc3339(now + secs)}}),
    ))
}

fn watch_plan(sim: &mut Sim, req: &ApiRequest, t: &Target) -> R<WatchPlan> {
    let (labels, mut fields) = selectors(req, t.def)?;
    if let Some(n) = t.name {
        fields.0.push(("metadata.name".into(), true, n.to_string()));
    }
    let timeout = match req.q("timeoutSeconds") {
        None | Some("") => None,
        Some(s) => Some(Duration::from_secs(s.parse().map_err(|_| bad_request(format!("invalid timeoutSeconds {s:?}")))?)),
    };
    let bookmarks = req.flag("allowWatchBookmarks");
    let filter = Filter { res: t.def.id(), ns: t.ns.map(String::from), labels, fields };
    let rx = sim.store.subscribe();
    let start_rv = sim.store.rv();
    sim.stats.watches_started += 1;
    let mut initial = Vec::new();
    let send_initial = req.flag("sendInitialEvents");
    match req.q("resourceVersion").filter(|v| !v.is_empty() && *v != "0") {
        Some(v) if !send_initial => {
            let from: u64 = v.parse().map_err(|_| invalid(t.def, "", "resourceVersion", &format!("Invalid value: {v:?}")))?;
            match sim.store.changes_since(from) {
                Ok(changes) => initial.extend(changes.iter().filter_map(|c| filter.deliver(c))),
                Err(floor) => {
                    // As the API server does: a 200 stream whose only event is a 410 ERROR.
                    sim.stats.gone_410 += 1;
                    let st = status(410, "Expired", format!("too old resource version: {from} ({floor})"), None);
                    initial.push(json!({"type": "ERROR", "object": st}));
                    return Ok(WatchPlan { def: t.def, filter, initial, rx: None, start_rv, timeout, bookmarks });
                }
            }
        }
        _ => {
            for (_, o) in sim.store.list(&filter.res, t.ns).filter(|(_, o)| filter.matches(o)) {
                initial.push(json!({"type": "ADDED", "object": o}));
            }
            if send_initial && bookmarks {
                initial.push(json!({"type": "BOOKMARK", "object": {"kind": t.def.kind, "apiVersion": t.def.api_version(),
                    "metadata": {"resourceVersion": start_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}}));
            }
        }
    }
    Ok(WatchPlan { def: t.def, filter, initial, rx: Some(rx), start_rv, timeout, bookmarks })
}

/// `kubectl auth can-i`: may the caller do this? Evaluated by the same RBAC code as requests.
fn self_review(sim: &mut Sim, req: &ApiRequest) -> R<Outcome> {
    let mut body = if req.content_type.starts_with("application/vnd.kubernetes.protobuf") {
        super::proto::self_subject_access_review(req.body).ok_or_else(|| bad_request("undecodable protobuf SelfSubjectAccessReview"))?
    } else {
        parse_body(req)?
    };
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let allowed = if let Some(ra) = spec.get("resourceAttributes") {
        let s = |k: &str| ra.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
        let attrs = Attributes {
            verb: s("verb").unwrap_or(""),
            group: s("group").unwrap_or(""),
            resource: s("resource").unwrap_or(""),
            subresource: s("subresource"),
            namespace: s("namespace"),
            name: s("name"),
        };
        auth::authorize(&sim.store, req.who, &attrs)
    } else {
        // Non-resource URLs (discovery, /version, /healthz) are open to every authenticated user.
        req.who.admin || spec.pointer("/nonResourceAttributes/verb").and_then(Value::as_str) == Some("get")
    };
    body["apiVersion"] = json!("authorization.k8s.io/v1");
    body["kind"] = json!("SelfSubjectAccessReview");
    body["status"] = json!({"allowed": allowed});
    Ok(Outcome::Reply(201, body))
}

/// A watch BOOKMARK: only the kind and the version the client may resume from.
pub fn bookmark(def: &ResourceDef, rv: u64) -> Value {
    json!({"type": "BOOKMARK", "object": {"kind": def.kind, "apiVersion": def.api_version(), "metadata": {"resourceVersion": rv.to_string()}}})
}
