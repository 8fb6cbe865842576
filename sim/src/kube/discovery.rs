//! Discovery documents: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`. Legacy
//! (unaggregated) discovery only: kubectl asks for the aggregated `apidiscovery.k8s.io/v2` form
//! first, but accepts plain `application/json` and then walks the group-version lists.

use super::resources::{GROUPS, RESOURCES, ResourceDef, VERBS};
use serde_json::{Value, json};

/// The Kubernetes minor version kube-sim claims (kubectl warns beyond ±1 minor of skew only).
pub const MINOR: &str = "32";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": MINOR,
        "gitVersion": format!("v1.{MINOR}.0-kube-sim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_entry(name: &str) -> Value {
    let gv = format!("{name}/v1");
    json!({
        "name": name,
        "versions": [{"groupVersion": gv, "version": "v1"}],
        "preferredVersion": {"groupVersion": gv, "version": "v1"}
    })
}

pub fn api_group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": GROUPS.iter().map(|g| group_entry(g)).collect::<Vec<_>>()})
}

pub fn api_group(name: &str) -> Option<Value> {
    GROUPS.contains(&name).then(|| {
        let mut v = group_entry(name);
        v["kind"] = json!("APIGroup");
        v["apiVersion"] = json!("v1");
        v
    })
}

fn resource_entry(r: &ResourceDef) -> Value {
    let mut v = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": VERBS,
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    v
}

/// APIResourceList of one group version (`""`/`v1` for core), or None if not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || !(group.is_empty() || GROUPS.contains(&group)) {
        return None;
    }
    let mut out = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        out.push(resource_entry(r));
        if r.status {
            out.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"]
            }));
        }
        if r.group.is_empty() && r.plural == "serviceaccounts" {
            out.push(json!({
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": true,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"]
            }));
        }
    }
    if group == super::resources::AUTHZ_GROUP {
        out.push(json!({"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview", "namespaced": false,
                        "kind": "SelfSubjectAccessReview", "verbs": ["create"]}));
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}))
}

/// `/openapi/v3`: one entry per served group version. kube-sim publishes no schemas; the
/// documents exist so kubectl (≥1.27) finds that the server accepts `fieldValidation` and
/// validates server-side instead of downloading `/openapi/v2` (which answers 404).
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    for gv in std::iter::once("api/v1".to_string()).chain(GROUPS.iter().map(|g| format!("apis/{g}/v1"))) {
        paths.insert(gv.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash=kube-sim")}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<g>/v1`: per resource, a PATCH operation tagged
/// with its group-version-kind and the `fieldValidation` query parameter; no schemas.
pub fn openapi_v3_group_version(gv: &str) -> Option<Value> {
    let group = match gv {
        "api/v1" => "",
        _ => gv.strip_prefix("apis/")?.strip_suffix("/v1")?,
    };
    if !(group.is_empty() || GROUPS.contains(&group)) {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        let base = if group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{group}/v1") };
        let path = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", r.kind),
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
                "parameters": [
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
                ],
                "responses": {"200": {"description": "OK"}}
            })
        };
        paths.insert(path, json!({"put": op("put"), "patch": op("patch")}));
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": format!("v1.{MINOR}.0")}, "paths": paths, "components": {"schemas": {}}}),
    )
}
