//! kube-sim's HTTP contract below the clients: authentication (admin, issued and EKS tokens),
//! TokenRequest, discovery, pagination, watch semantics (resourceVersion replay, bookmarks,
//! timeoutSeconds, 410 after compaction), validation errors and the control endpoints.
//! Plain HTTP so the raw requests stay readable; TLS is covered by the kubectl and kube-rs tests.

mod kube_support;

use base64::Engine;
use kube_support::{ADMIN, KubeSim};
use serde_json::{Value, json};

fn sim() -> KubeSim {
    KubeSim::start(&["--plain-http", "--accept-eks-tokens", "test-cluster"])
}

fn events(body: &str) -> Vec<Value> {
    body.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("one JSON event per line")).collect()
}

fn svc(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels}, "spec": {"ports": [{"port": 80}]}})
}

fn amz_date(unix: i64) -> String {
    // Reuse the server's own formatting via RFC 3339 → SigV4 basic format.
    let s = pano_eks_sim::kube::clock::rfc3339(unix);
    s.replace(['-', ':'], "")
}

fn eks_token(date: &str, expires: u32, signed_headers: &str) -> String {
    let url = format!(
        "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F{}%2Feu-west-1%2Fsts%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}\
         &X-Amz-SignedHeaders={signed_headers}&X-Amz-Signature={}",
        &date[..8],
        "ab".repeat(32)
    );
    format!("k8s-aws-v1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
}

#[test]
fn authentication_and_token_request() {
    let sim = sim();
    let (s, v) = sim.call("GET", "/api/v1/namespaces", None, "application/json", "");
    assert_eq!((s, v["reason"].as_str()), (401, Some("Unauthorized")));
    assert_eq!(sim.call("GET", "/api/v1/namespaces", Some("wrong"), "application/json", "").0, 401);
    assert_eq!(sim.call("GET", "/version", None, "application/json", "").0, 200, "/version is public");

    // EKS tokens: a fresh well-formed one is admin; expired, over-long or unsigned-header ones are not.
    let now = pano_eks_sim::kube::clock::unix_now();
    let good = eks_token(&amz_date(now - 10), 60, "host%3Bx-k8s-aws-id");
    assert_eq!(sim.call("GET", "/api/v1/secrets", Some(&good), "application/json", "").0, 200);
    for bad in [
        eks_token(&amz_date(now - 120), 60, "host%3Bx-k8s-aws-id"),
        eks_token(&amz_date(now), 3600, "host%3Bx-k8s-aws-id"),
        eks_token(&amz_date(now), 60, "host"),
    ] {
        assert_eq!(sim.call("GET", "/api/v1/secrets", Some(&bad), "application/json", "").0, 401);
    }
    let plain = KubeSim::start(&["--plain-http"]);
    assert_eq!(
        plain.call("GET", "/api/v1/secrets", Some(&good), "application/json", "").0,
        401,
        "EKS tokens only with --accept-eks-tokens"
    );

    // TokenRequest for a service account with a RoleBinding to list configmaps in its namespace.
    sim.post("/api/v1/namespaces", &json!({"metadata": {"name": "app"}}));
    sim.post("/api/v1/namespaces/app/serviceaccounts", &json!({"metadata": {"name": "bot"}}));
    sim.post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/app/roles",
        &json!({"metadata": {"name": "cm"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]}),
    );
    sim.post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/app/rolebindings",
        &json!({"metadata": {"name": "cm"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm"}, "subjects": [{"kind": "ServiceAccount", "name": "bot"}]}),
    );
    let (s, tr) = sim.post(
        "/api/v1/namespaces/app/serviceaccounts/bot/token",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}),
    );
    assert_eq!(s, 201, "{tr}");
    let token = tr["status"]["token"].as_str().unwrap();
    assert!(tr["status"]["expirationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(sim.call("GET", "/api/v1/namespaces/app/configmaps", Some(token), "application/json", "").0, 200);
    let (s, v) = sim.call("GET", "/api/v1/namespaces/default/configmaps", Some(token), "application/json", "");
    assert_eq!(s, 403);
    assert_eq!(
        v["message"],
        r#"configmaps is forbidden: User "system:serviceaccount:app:bot" cannot list resource "configmaps" in API group "" in the namespace "default""#
    );
    assert_eq!(sim.call("GET", "/api", Some(token), "application/json", "").0, 200, "discovery is open to every authenticated user");
    let (s, _) = sim.post("/api/v1/namespaces/app/serviceaccounts/bot/token", &json!({"spec": {"expirationSeconds": 60}}));
    assert_eq!(s, 422, "under 10 minutes is refused");
    // Deleting the account revokes its tokens.
    assert_eq!(sim.call("DELETE", "/api/v1/namespaces/app/serviceaccounts/bot", Some(ADMIN), "application/json", "").0, 200);
    assert_eq!(sim.call("GET", "/api/v1/namespaces/app/configmaps", Some(token), "application/json", "").0, 401);
    let stats = sim.control("stats");
    assert!(stats["unauthorized"].as_u64().unwrap() >= 5 && stats["forbidden"].as_u64().unwrap() >= 1, "{stats}");
}

#[test]
fn discovery_documents() {
    let sim = sim();
    let (_, core) = sim.get("/api/v1");
    let by_name = |n: &str| core["resources"].as_array().unwrap().iter().find(|r| r["name"] == n).cloned().unwrap_or(Value::Null);
    assert_eq!(by_name("services")["shortNames"], json!(["svc"]));
    assert_eq!(by_name("services")["namespaced"], true);
    assert_eq!(by_name("namespaces")["namespaced"], false);
    assert_eq!(by_name("services/status")["verbs"], json!(["get", "patch", "update"]));
    assert_eq!(by_name("serviceaccounts/token")["kind"], "TokenRequest");
    for short in ["ns", "sa", "cm", "ev", "ep"] {
        assert!(
            core["resources"].as_array().unwrap().iter().any(|r| r["shortNames"].as_array().is_some_and(|s| s.contains(&json!(short)))),
            "{short}"
        );
    }
    let (_, groups) = sim.get("/apis");
    let names: Vec<&str> = groups["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    for g in ["rbac.authorization.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io"] {
        assert!(names.contains(&g), "{g}");
        let (s, v) = sim.get(&format!("/apis/{g}/v1"));
        assert_eq!((s, v["kind"].as_str()), (200, Some("APIResourceList")));
    }
    // Stored kinds of the in-cluster base (apps, policy, networking) are served; a group kube-sim
    // does not simulate is not.
    assert_eq!(sim.get("/apis/apps/v1").0, 200);
    assert_eq!(sim.get("/apis/batch/v1").0, 404);
    let (s, v) = sim.get("/openapi/v2");
    assert_eq!((s, &v["definitions"]), (200, &json!({})), "schema-less OpenAPI v2");
}

#[test]
fn crud_selectors_pagination_and_leases() {
    let sim = sim();
    for i in 0..5 {
        let labels = if i % 2 == 0 { json!({"panw-tg-port": format!("80{i}")}) } else { json!({}) };
        assert_eq!(sim.post("/api/v1/namespaces/default/services", &svc(&format!("s{i}"), labels)).0, 201);
    }
    let (s, v) = sim.post("/api/v1/namespaces/default/services", &svc("s0", json!({})));
    assert_eq!((s, v["reason"].as_str()), (409, Some("AlreadyExists")));
    assert_eq!(sim.post("/api/v1/namespaces/nowhere/services", &svc("x", json!({}))).0, 404);
    assert_eq!(sim.post("/api/v1/namespaces/default/services", &svc("Bad_Name", json!({}))).0, 422);

    let (_, l) = sim.get("/api/v1/namespaces/default/services?labelSelector=panw-tg-port");
    assert_eq!(l["kind"], "ServiceList");
    assert_eq!(l["items"].as_array().unwrap().len(), 3);
    let (_, l) = sim.get("/api/v1/services?labelSelector=panw-tg-port%20notin%20(800)&fieldSelector=metadata.namespace%3Ddefault");
    assert_eq!(l["items"].as_array().unwrap().len(), 5, "4 of ours without 800 + kubernetes");
    assert_eq!(sim.get("/api/v1/services?fieldSelector=spec.nope%3D1").0, 400);

    // limit/continue walks every item exactly once.
    let mut names = Vec::new();
    let mut cont = String::new();
    loop {
        let (s, page) = sim.get(&format!("/api/v1/namespaces/default/services?limit=2&continue={cont}"));
        assert_eq!(s, 200, "{page}");
        names.extend(page["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()));
        match page["metadata"]["continue"].as_str() {
            Some(c) => cont = c.to_string(),
            None => break,
        }
    }
    assert_eq!(names, ["kubernetes", "s0", "s1", "s2", "s3", "s4"]);
    let (_, page) = sim.get("/api/v1/namespaces/default/services?limit=2");
    sim.control("compact");
    let (s, v) =
        sim.get(&format!("/api/v1/namespaces/default/services?limit=2&continue={}", page["metadata"]["continue"].as_str().unwrap()));
    assert_eq!((s, v["reason"].as_str()), (410, Some("Expired")));

    // JSON patch, and a no-op update keeps the resourceVersion.
    let (_, before) = sim.get("/api/v1/namespaces/default/services/s1");
    let (s, after) = sim.call("PUT", "/api/v1/namespaces/default/services/s1", Some(ADMIN), "application/json", &before.to_string());
    assert_eq!((s, &after["metadata"]["resourceVersion"]), (200, &before["metadata"]["resourceVersion"]));
    let (s, p) = sim.call(
        "PATCH",
        "/api/v1/namespaces/default/services/s1",
        Some(ADMIN),
        "application/json-patch+json",
        r#"[{"op":"add","path":"/metadata/labels","value":{"k":"v"}}]"#,
    );
    assert_eq!((s, &p["metadata"]["labels"]["k"]), (200, &json!("v")));
    assert_eq!(sim.call("PATCH", "/api/v1/namespaces/default/services/s1", Some(ADMIN), "text/plain", "{}").0, 415);

    // Leases (leader election) round-trip with optimistic concurrency.
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "pano-eks"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
    let (s, l) = sim.post("/apis/coordination.k8s.io/v1/namespaces/default/leases", &lease);
    assert_eq!(s, 201);
    let mut renewed = l.clone();
    renewed["spec"]["holderIdentity"] = json!("b");
    assert_eq!(
        sim.call(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/default/leases/pano-eks",
            Some(ADMIN),
            "application/json",
            &renewed.to_string()
        )
        .0,
        200
    );
    let (s, v) = sim.call(
        "PUT",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/pano-eks",
        Some(ADMIN),
        "application/json",
        &renewed.to_string(),
    );
    assert_eq!((s, v["reason"].as_str()), (409, Some("Conflict")), "same resourceVersion twice");

    // deletecollection by label; reset restores the initial state.
    let (s, gone) =
        sim.call("DELETE", "/api/v1/namespaces/default/services?labelSelector=panw-tg-port", Some(ADMIN), "application/json", "");
    assert_eq!((s, gone["items"].as_array().unwrap().len()), (200, 3));
    sim.control("reset");
    let (_, l) = sim.get("/api/v1/services");
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
}

#[test]
fn watch_semantics() {
    let sim = sim();
    let (_, a) = sim.post("/api/v1/namespaces/default/services", &svc("a", json!({"panw-tg-port": "1"})));
    let rv_a: u64 = a["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    sim.post("/api/v1/namespaces/default/services", &svc("b", json!({})));
    sim.call(
        "PATCH",
        "/api/v1/namespaces/default/services/a",
        Some(ADMIN),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"panw-tg-port":null}}}"#,
    );

    // From a version: replay of what followed it, with selector transitions; ends at timeoutSeconds.
    let (s, body) = sim.raw(
        "GET",
        &format!("/api/v1/namespaces/default/services?watch=true&resourceVersion={rv_a}&timeoutSeconds=1"),
        Some(ADMIN),
        "application/json",
        "",
    );
    assert_eq!(s, 200);
    let evs = events(&body);
    let kinds: Vec<(&str, &str)> =
        evs.iter().map(|e| (e["type"].as_str().unwrap(), e["object"]["metadata"]["name"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("ADDED", "b"), ("MODIFIED", "a")]);
    let (_, body) = sim.raw(
        "GET",
        &format!("/api/v1/services?watch=1&resourceVersion={rv_a}&labelSelector=panw-tg-port&timeoutSeconds=1"),
        Some(ADMIN),
        "application/json",
        "",
    );
    let evs = events(&body);
    assert_eq!(evs.len(), 1);
    assert_eq!(
        (evs[0]["type"].as_str(), evs[0]["object"]["metadata"]["name"].as_str()),
        (Some("DELETED"), Some("a")),
        "leaving the selection"
    );

    // Without a version: the current state as ADDED; bookmarks (every 200 ms here) carry versions.
    let (_, body) = sim.raw(
        "GET",
        "/api/v1/namespaces/default/services?watch=true&allowWatchBookmarks=true&timeoutSeconds=1",
        Some(ADMIN),
        "application/json",
        "",
    );
    let evs = events(&body);
    assert_eq!(evs.iter().filter(|e| e["type"] == "ADDED").count(), 3);
    let bm: Vec<&Value> = evs.iter().filter(|e| e["type"] == "BOOKMARK").collect();
    assert!(!bm.is_empty(), "{evs:?}");
    assert_eq!(bm[0]["object"]["kind"], "Service");
    assert!(bm[0]["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse::<u64>().unwrap() >= rv_a);

    // After compaction the old version is gone: a 200 stream with one ERROR 410 event.
    sim.control("compact");
    let (s, body) = sim.raw("GET", &format!("/api/v1/services?watch=true&resourceVersion={rv_a}"), Some(ADMIN), "application/json", "");
    assert_eq!(s, 200);
    let evs = events(&body);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["type"], "ERROR");
    assert_eq!(evs[0]["object"]["code"], 410);
    assert_eq!(evs[0]["object"]["reason"], "Expired");
}

#[test]
fn control_endpoints() {
    let sim = sim();
    let stats = sim.control("stats");
    for k in ["requests", "watches_open", "resource_version", "history_floor", "objects", "gone_410"] {
        assert!(stats.get(k).is_some(), "{k} in {stats}");
    }
    let c = sim.control("compact");
    assert_eq!(c["history_floor"], c["resource_version"]);
    assert_eq!(sim.control("drop-watches")["dropped"], 0);
    let (s, _) = sim.call("POST", "/_sim/nope", None, "application/json", "");
    assert_eq!(s, 404);
}

/// Node ports come from the API server's range (30000-32767) and are unique; when it is full a
/// LoadBalancer Service is refused as kubernetes refuses it (500 InternalError, "failed to
/// allocate a nodePort: range is full"), unless it opts out with
/// `allocateLoadBalancerNodePorts: false`; a delete frees its port. Allocation is a lookup,
/// so filling the whole range stays quick (it was a scan of every Service per create).
#[test]
fn node_ports_are_unique_in_their_range_and_a_full_range_refuses_as_kubernetes_does() {
    let sim = sim();
    let lb = |name: &str, allocate: bool| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
               "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": allocate, "ports": [{"port": 80}]}})
        .to_string()
    };
    let mut ports = std::collections::BTreeSet::new();
    let range = 32767 - 30000 + 1;
    for i in 0..range {
        let (s, v) = sim.call("POST", "/api/v1/namespaces/default/services", Some(ADMIN), "application/json", &lb(&format!("s{i}"), true));
        assert_eq!(s, 201, "{v}");
        let np = v.pointer("/spec/ports/0/nodePort").and_then(Value::as_u64).expect("a node port");
        assert!((30000..=32767).contains(&np) && ports.insert(np), "{np} twice or out of range");
    }
    let (s, v) = sim.call("POST", "/api/v1/namespaces/default/services", Some(ADMIN), "application/json", &lb("full", true));
    assert_eq!((s, v["reason"].as_str()), (500, Some("InternalError")), "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("failed to allocate a nodePort: range is full"), "{v}");
    let (s, v) = sim.call("POST", "/api/v1/namespaces/default/services", Some(ADMIN), "application/json", &lb("no-ports", false));
    assert_eq!(s, 201, "{v}");
    assert!(v.pointer("/spec/ports/0/nodePort").is_none(), "opted out: {v}");
    let (s, _) = sim.call("DELETE", "/api/v1/namespaces/default/services/s7", Some(ADMIN), "application/json", "");
    assert_eq!(s, 200);
    let (s, v) = sim.call("POST", "/api/v1/namespaces/default/services", Some(ADMIN), "application/json", &lb("again", true));
    assert_eq!(s, 201, "a delete frees its port: {v}");
    let ips: std::collections::BTreeSet<String> = (0..3)
        .map(|i| sim.call("GET", &format!("/api/v1/namespaces/default/services/s{i}"), Some(ADMIN), "application/json", "").1)
        .map(|v| v.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ips.len(), 3, "ClusterIPs are unique: {ips:?}");
}
