//! Authentication (bearer tokens: the admin token, service-account tokens kube-sim issued, and
//! optionally EKS tokens) and RBAC authorization of service accounts from ClusterRoleBindings,
//! RoleBindings, ClusterRoles and Roles, evaluated against the stored objects on every request
//! (so a test that edits a binding sees the effect at once, as with the real authorizer).

use super::store::Store;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Who is calling. Never holds the token itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    pub admin: bool,
}

impl Identity {
    pub fn admin(user: &str) -> Self {
        Self { user: user.into(), groups: vec!["system:masters".into(), "system:authenticated".into()], admin: true }
    }
    pub fn service_account(ns: &str, name: &str) -> Self {
        Self {
            user: format!("system:serviceaccount:{ns}:{name}"),
            groups: vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{ns}"), "system:authenticated".into()],
            admin: false,
        }
    }
}

/// A token kube-sim issued for a service account.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub ns: String,
    pub sa: String,
    pub sa_uid: String,
    /// Legacy token: valid while this Secret exists and still holds the token.
    pub secret: Option<String>,
    /// TokenRequest token: Unix expiry.
    pub expires: Option<i64>,
}

#[derive(Default)]
pub struct Tokens {
    issued: HashMap<String, IssuedToken>,
}

/// Unpredictable bytes for tokens (the kernel's CSPRNG; tokens must not be guessable even in a sim).
pub fn random_bytes(n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_err() {
        // Fallback: std's randomly keyed SipHash, one fresh key per 8 bytes.
        use std::hash::{BuildHasher, Hasher};
        for chunk in buf.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(chunk.as_ptr() as usize);
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    buf
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Tokens {
    pub fn clear(&mut self) {
        self.issued.clear();
    }

    /// Issues a JWT-shaped token (header.claims.random) for a service account. The signature part
    /// is random, not a signature: kube-sim looks tokens up, it never verifies them.
    pub fn issue(&mut self, t: IssuedToken, issued_at: i64, audiences: &[String]) -> String {
        let header = json!({"alg": "RS256", "kid": "kube-sim"});
        let mut claims = json!({
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": format!("system:serviceaccount:{}:{}", t.ns, t.sa),
            "aud": audiences,
            "iat": issued_at,
            "nbf": issued_at,
            "kubernetes.io": {"namespace": t.ns, "serviceaccount": {"name": t.sa, "uid": t.sa_uid}},
        });
        if let Some(exp) = t.expires {
            claims["exp"] = json!(exp);
        }
        if let Some(s) = &t.secret {
            claims["kubernetes.io"]["secret"] = json!({"name": s});
        }
        let token =
            format!("{}.{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()), b64url(&random_bytes(32)));
        self.issued.insert(token.clone(), t);
        token
    }

    /// The service account a token stands for, if the token is still valid: its account exists
    /// with the same uid, a legacy token's Secret still holds it, a requested token is unexpired.
    pub fn authenticate(&self, token: &str, store: &Store, now: i64) -> Option<Identity> {
        let t = self.issued.get(token)?;
        let sa = store.get("/serviceaccounts", &t.ns, &t.sa)?;
        if sa.pointer("/metadata/uid").and_then(Value::as_str) != Some(t.sa_uid.as_str()) {
            return None;
        }
        if let Some(secret) = &t.secret {
            let held = store.get("/secrets", &t.ns, secret)?.pointer("/data/token").and_then(Value::as_str)?;
            if held != base64::engine::general_purpose::STANDARD.encode(token) {
                return None;
            }
        }
        if t.expires.is_some_and(|e| e < now) {
            return None;
        }
        Some(Identity::service_account(&t.ns, &t.sa))
    }
}

/// What a request wants to do, in RBAC terms.
#[derive(Debug)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    let verbs = strs(rule.get("verbs"));
    let groups = strs(rule.get("apiGroups"));
    let resources = strs(rule.get("resources"));
    let names = strs(rule.get("resourceNames"));
    let full = match a.subresource {
        Some(s) => format!("{}/{s}", a.resource),
        None => a.resource.to_string(),
    };
    let res_ok = resources.iter().any(|r| *r == "*" || *r == full || a.subresource.is_some_and(|s| r.strip_prefix("*/") == Some(s)));
    (verbs.contains(&"*") || verbs.contains(&a.verb))
        && (groups.contains(&"*") || groups.contains(&a.group))
        && res_ok
        && (names.is_empty() || a.name.is_some_and(|n| names.contains(&n)))
}

fn subject_matches(s: &Value, who: &Identity, binding_ns: Option<&str>) -> bool {
    let name = s.get("name").and_then(Value::as_str).unwrap_or("");
    match s.get("kind").and_then(Value::as_str) {
        Some("ServiceAccount") => {
            // A RoleBinding's ServiceAccount subject without a namespace means the binding's.
            let ns = s.get("namespace").and_then(Value::as_str).or(binding_ns).unwrap_or("");
            who.user == format!("system:serviceaccount:{ns}:{name}")
        }
        Some("User") => who.user == name,
        Some("Group") => who.groups.iter().any(|g| g == name),
        _ => false,
    }
}

fn role_rules<'a>(store: &'a Store, role_ref: &Value, binding_ns: Option<&str>) -> Vec<&'a Value> {
    let name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
    let role = match (role_ref.get("kind").and_then(Value::as_str), binding_ns) {
        (Some("ClusterRole"), _) => store.get("rbac.authorization.k8s.io/clusterroles", "", name),
        (Some("Role"), Some(ns)) => store.get("rbac.authorization.k8s.io/roles", ns, name),
        _ => None,
    };
    role.and_then(|r| r.get("rules")).and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default()
}

/// RBAC: allowed if any ClusterRoleBinding (anywhere) or RoleBinding (in the request's
/// namespace) binding this identity grants a matching rule. Admins may do everything.
pub fn authorize(store: &Store, who: &Identity, a: &Attributes) -> bool {
    if who.admin {
        return true;
    }
    let grants = |binding: &Value, ns: Option<&str>| {
        binding.get("subjects").and_then(Value::as_array).is_some_and(|subs| subs.iter().any(|s| subject_matches(s, who, ns)))
            && binding.get("roleRef").is_some_and(|r| role_rules(store, r, ns).iter().any(|rule| rule_allows(rule, a)))
    };
    store.list("rbac.authorization.k8s.io/clusterrolebindings", None).any(|(_, b)| grants(b, None))
        || a.namespace.is_some_and(|ns| store.list("rbac.authorization.k8s.io/rolebindings", Some(ns)).any(|(_, b)| grants(b, Some(ns))))
}

/// The API server's wording of a refusal.
pub fn forbidden_message(who: &Identity, a: &Attributes) -> String {
    let full = match a.subresource {
        Some(s) => format!("{}/{s}", a.resource),
        None => a.resource.to_string(),
    };
    let subject = match a.name {
        Some(n) => format!("{} \"{n}\"", a.resource),
        None => a.resource.to_string(),
    };
    let scope = match a.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".into(),
    };
    format!("{subject} is forbidden: User \"{}\" cannot {} resource \"{full}\" in API group \"{}\" {scope}", who.user, a.verb, a.group)
}
