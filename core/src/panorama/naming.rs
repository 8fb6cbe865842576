//! Names and ownership marks.
//!
//! Every name is `prefix + tail`. The prefix says who owns the entry (the deployment) and is
//! never shortened; the tail is readable (`cluster.namespace.service`, `192.168.110.0_24`). The
//! parts are joined with `.`, which EKS cluster names, Kubernetes namespaces/Service names and
//! deployments cannot contain, so readable names of distinct things are distinct. A name over
//! the PAN-OS limit keeps a truncated tail plus a hash of the full name; any collision left
//! after that is detected and resolved deterministically by [`assign_unique`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use crate::fxhash::{FxSet, set_with_capacity};
use crate::panorama::model::{MARKER_TAG, Tag};

/// Address, service and NAT rule names.
pub const NAME_MAX: usize = 63;
/// Static route names.
pub const ROUTE_NAME_MAX: usize = 31;
/// Tag names.
pub const TAG_NAME_MAX: usize = 127;
/// Tag comments start with this; a tag object in our namespace without it is not ours.
pub const MANAGED_BY: &str = "managed by pano-eks";

const HASH_LEN: usize = 10;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// PAN-OS-safe: starts alphanumeric, then `[A-Za-z0-9._-]`.
pub fn is_safe_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphanumeric()) && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// `len` lowercase base32 chars of SHA-256(`input`).
pub fn hash32(input: &str, len: usize) -> String {
    let digest = Sha256::digest(input.as_bytes());
    let mut out = String::with_capacity(len);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in digest {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 && out.len() < len {
            bits -= 5;
            out.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
    }
    out
}

/// A CIDR as a name token: `192.168.110.0/24` → `192.168.110.0_24` ("/" is not allowed).
pub fn cidr_token(net: Ipv4Net) -> String {
    format!("{}_{}", net.addr(), net.prefix_len())
}

/// `parts` concatenated in one allocation; `format!` is measurably slower in the per-Service path.
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// `n` in decimal, without the formatting machinery (runs once per Service).
pub(crate) fn decimal(mut n: u16, buf: &mut [u8; 5]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

/// `prefix + tail` if it fits in `limit`, else `prefix + truncated tail + "-" + hash`.
pub fn fit(prefix: &str, tail: &str, limit: usize) -> String {
    if prefix.len() + tail.len() <= limit {
        return concat(&[prefix, tail]);
    }
    shortened(prefix, tail, limit, &format!("{prefix}{tail}"))
}

/// The hashed form; `seed` picks the hash (the full name, or the full name plus a salt).
fn shortened(prefix: &str, tail: &str, limit: usize, seed: &str) -> String {
    let hash = hash32(seed, HASH_LEN);
    let keep = limit.saturating_sub(prefix.len() + 1 + HASH_LEN).min(tail.len());
    // Tails are ASCII (validated names, CIDRs), so byte slicing is safe; `get` guards anyway.
    let kept = tail.get(..keep).unwrap_or("").trim_end_matches(['.', '-', '_']);
    if kept.is_empty() { format!("{prefix}{hash}") } else { format!("{prefix}{kept}-{hash}") }
}

/// One name to assign: `prefix + tail`, built in one allocation that becomes the name when it
/// fits. `key` identifies the thing named and orders collision resolution; `None` when the
/// tail already identifies it (the common case).
#[derive(Clone, Debug)]
pub struct NameRequest {
    pub key: Option<String>,
    full: String,
    prefix_len: usize,
}

impl NameRequest {
    /// `tail` is given in parts, concatenated.
    pub fn new(prefix: &str, tail: &[&str], key: Option<String>) -> Self {
        let mut full = String::with_capacity(prefix.len() + tail.iter().map(|p| p.len()).sum::<usize>());
        full.push_str(prefix);
        for p in tail {
            full.push_str(p);
        }
        Self { key, full, prefix_len: prefix.len() }
    }

    pub fn prefix(&self) -> &str {
        &self.full[..self.prefix_len]
    }

    pub fn tail(&self) -> &str {
        &self.full[self.prefix_len..]
    }

    fn key(&self) -> &str {
        self.key.as_deref().unwrap_or(self.tail())
    }
}

/// Names for all `requests` of one kind, guaranteed distinct and ≤ `limit`.
///
/// Normally this is just [`fit`]. If two requests still land on one name (a hash collision, or
/// a readable name equal to another's shortened one), the request with the smallest key keeps
/// it and each other takes a salted hash, trying salts 1, 2, … until the name is free. The
/// outcome depends only on the set of requests, so the same facts always give the same names.
pub fn assign_unique(mut requests: Vec<NameRequest>, limit: usize) -> Vec<String> {
    let mut names: Vec<String> = requests
        .iter_mut()
        .map(|r| if r.full.len() <= limit { std::mem::take(&mut r.full) } else { shortened(r.prefix(), r.tail(), limit, &r.full) })
        .collect();
    let mut seen = set_with_capacity(names.len());
    let mut clashing: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        if !seen.insert(n.as_str()) {
            clashing.entry(n.clone()).or_default().push(i);
        }
    }
    if clashing.is_empty() {
        return names;
    }
    // Names that fit were moved out of their requests; put them back for the slow path.
    for (r, n) in requests.iter_mut().zip(&names) {
        if r.full.is_empty() {
            r.full.clone_from(n);
        }
    }
    for (name, mut losers) in clashing {
        // Add the first holder back, then let the smallest key keep the name.
        let holder = names.iter().position(|n| *n == name).expect("name present");
        losers.push(holder);
        losers.sort_by(|&a, &b| requests[a].key().cmp(requests[b].key()).then(a.cmp(&b)));
        let mut used: FxSet<String> = names.iter().cloned().collect();
        for &i in &losers[1..] {
            let r = &requests[i];
            let fresh = (1u32..)
                .map(|salt| shortened(r.prefix(), r.tail(), limit, &format!("{}#{}#{salt}", r.full, r.key())))
                .find(|n| !used.contains(n))
                .expect("an unused salt exists");
            used.insert(fresh.clone());
            names[i] = fresh;
        }
    }
    names
}

/// The naming scheme and ownership marks of one deployment.
#[derive(Clone, Debug)]
pub struct Names {
    deployment: String,
    object_prefix: String,
    inbound_prefix: String,
    outbound_prefix: String,
    route_prefix: String,
    cluster_tag_prefix: String,
}

impl Names {
    /// `deployment` must already be valid (see `PlanSettings::validate`).
    pub fn new(deployment: &str) -> Self {
        Self {
            deployment: deployment.to_owned(),
            object_prefix: format!("{deployment}."),
            inbound_prefix: format!("{deployment}.in."),
            outbound_prefix: format!("{deployment}.out."),
            route_prefix: format!("pke-{}-", hash32(deployment, 4)),
            cluster_tag_prefix: format!("{MARKER_TAG}.{deployment}."),
        }
    }

    pub fn deployment(&self) -> &str {
        &self.deployment
    }

    /// `pke-<4 base32 chars of hash(deployment)>-`: routes carry no tags, so this prefix is the
    /// whole ownership mark.
    pub fn route_prefix(&self) -> &str {
        &self.route_prefix
    }

    /// `pano-eks.<deployment>.`: the start of every per-cluster tag of this deployment.
    pub fn cluster_tag_prefix(&self) -> &str {
        &self.cluster_tag_prefix
    }

    /// `pano-eks.<deployment>.<cluster>` (cluster part hash-shortened past 127).
    pub fn cluster_tag(&self, cluster: &str) -> String {
        fit(&self.cluster_tag_prefix, cluster, TAG_NAME_MAX)
    }

    /// Address `<dep>.<cluster>.<ns>.<svc>`.
    pub fn address(&self, cluster: &str, namespace: &str, service: &str) -> NameRequest {
        NameRequest::new(&self.object_prefix, &[cluster, ".", namespace, ".", service], None)
    }

    /// Service object `<dep>.tcp-<port>` (label ports are unique, so one per port).
    pub fn service(&self, port: u16) -> NameRequest {
        let mut digits = [0u8; 5];
        NameRequest::new(&self.object_prefix, &["tcp-", decimal(port, &mut digits)], None)
    }

    /// Inbound NAT rule `<dep>.in.<cluster>.<ns>.<svc>`.
    pub fn inbound_rule(&self, cluster: &str, namespace: &str, service: &str) -> NameRequest {
        NameRequest::new(&self.inbound_prefix, &[cluster, ".", namespace, ".", service], None)
    }

    /// Outbound NAT rule `<dep>.out.<cluster>.<cidr>`.
    pub fn outbound_rule(&self, cluster: &str, subnet: Ipv4Net) -> NameRequest {
        NameRequest::new(&self.outbound_prefix, &[cluster, ".", &cidr_token(subnet)], None)
    }

    /// Static route `pke-<hash4>-<cidr>-<hash4 of next hop>` (≤31).
    pub fn route(&self, subnet: Ipv4Net, nexthop: Ipv4Addr) -> NameRequest {
        let tail = [cidr_token(subnet), "-".to_owned(), hash32(&nexthop.to_string(), 4)];
        // The tail holds only a hash of the next hop, so it does not identify the route.
        NameRequest::new(&self.route_prefix, &tail.each_ref().map(String::as_str), Some(format!("{subnet} via {nexthop}")))
    }

    /// An address, service or NAT rule is ours if it carries the marker tag and a tag of this
    /// deployment. Names alone prove nothing.
    pub fn owns_tagged(&self, tags: &[String]) -> bool {
        tags.iter().any(|t| t == MARKER_TAG) && tags.iter().any(|t| t.starts_with(&self.cluster_tag_prefix))
    }

    /// A tag object is ours if its name is in our namespace and its comments say we made it.
    pub fn owns_tag_object(&self, tag: &Tag) -> bool {
        (tag.name == MARKER_TAG || tag.name.starts_with(&self.cluster_tag_prefix))
            && tag.comments.as_deref().is_some_and(|c| c.starts_with(MANAGED_BY))
    }

    /// A static route is ours if its name has this deployment's reserved prefix.
    pub fn owns_route(&self, name: &str) -> bool {
        name.starts_with(&self.route_prefix)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn req(key: &str, prefix: &str, tail: &str) -> NameRequest {
        NameRequest::new(prefix, &[tail], Some(key.into()))
    }

    #[test]
    fn safe_names() {
        for ok in ["a", "prod.shop.default.web", "pke-abcd-10.0.0.0_16-wxyz", "A_b-9"] {
            assert!(is_safe_name(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "a/b", "a:b", "a b", "é"] {
            assert!(!is_safe_name(bad), "{bad}");
        }
    }

    #[test]
    fn decimal_matches_to_string() {
        for n in [0u16, 7, 10, 82, 999, 1000, 65535] {
            assert_eq!(decimal(n, &mut [0; 5]), n.to_string());
        }
    }

    #[test]
    fn hash_is_stable_base32() {
        assert_eq!(hash32("prod", 4), hash32("prod", 4));
        assert_ne!(hash32("prod", 10), hash32("prod2", 10));
        assert_eq!(hash32("x", 10).len(), 10);
        assert!(hash32("x", 26).bytes().all(|c| BASE32.contains(&c)));
    }

    #[test]
    fn fit_keeps_short_names_and_shortens_long_ones() {
        assert_eq!(fit("p.", "short", 63), "p.short");
        let tail = "x".repeat(100);
        let long = fit("dep.in.", &tail, 63);
        assert_eq!(long.len(), 63);
        assert!(long.starts_with("dep.in.xxxx"));
        assert!(is_safe_name(&long));
        // Exactly at the limit is kept verbatim.
        assert_eq!(fit("ab", &"c".repeat(61), 63).len(), 63);
        assert!(!fit("ab", &"c".repeat(61), 63).contains('-'));
        // Distinct long tails sharing a 63-char head still differ.
        let a = fit("d.", &format!("{}a", "y".repeat(80)), 63);
        let b = fit("d.", &format!("{}b", "y".repeat(80)), 63);
        assert_ne!(a, b);
        // Trailing separators are trimmed before the hash.
        let dotted = fit("p.", &format!("{}.{}", "a".repeat(50), "b".repeat(30)), 63);
        assert!(!dotted.contains(".-"), "{dotted}");
    }

    #[test]
    fn collisions_are_resolved_deterministically() {
        // Forced collision: identical prefix+tail for different things.
        let reqs = vec![req("b-key", "p.", "same"), req("a-key", "p.", "same"), req("c", "p.", "other")];
        let names = assign_unique(reqs.clone(), 63);
        assert_eq!(names[1], "p.same", "smallest key keeps the readable name");
        assert_ne!(names[0], "p.same");
        assert!(names[0].starts_with("p.same-") && names[0].len() <= 63);
        assert_eq!(names[2], "p.other");
        // Input order does not matter.
        let swapped = assign_unique(vec![reqs[1].clone(), reqs[0].clone(), reqs[2].clone()], 63);
        assert_eq!(swapped, vec![names[1].clone(), names[0].clone(), names[2].clone()]);
        // Three-way collision under a tight limit: all distinct, all within it.
        let three: Vec<_> = ["k1", "k2", "k3"].iter().map(|k| req(k, "pke-abcd-", "10.0.0.0_16-aaaa")).collect();
        let n = assign_unique(three, 31);
        let set: HashSet<_> = n.iter().collect();
        assert_eq!(set.len(), 3);
        assert!(n.iter().all(|x| x.len() <= 31 && x.starts_with("pke-abcd-")), "{n:?}");
    }

    #[test]
    fn readable_name_equal_to_a_shortened_one_is_resolved() {
        let long_tail = "z".repeat(70);
        let shortened_name = fit("p.", &long_tail, 63);
        let readable_tail = shortened_name.strip_prefix("p.").unwrap().to_owned();
        let reqs = vec![req("long", "p.", &long_tail), req("readable", "p.", &readable_tail)];
        let names = assign_unique(reqs, 63);
        assert_ne!(names[0], names[1]);
        assert!(names.iter().all(|n| n.len() <= 63));
    }

    #[test]
    fn ownership_marks() {
        let n = Names::new("prod");
        let other = Names::new("prod-2");
        let tags = vec![MARKER_TAG.to_owned(), n.cluster_tag("shop")];
        assert!(n.owns_tagged(&tags));
        assert!(!other.owns_tagged(&tags), "prod-2 must not own prod's objects");
        assert!(!n.owns_tagged(&[n.cluster_tag("shop")]), "marker is required");
        assert!(!n.owns_tagged(&[MARKER_TAG.to_owned()]), "deployment tag is required");
        assert!(n.route_prefix().starts_with("pke-") && n.route_prefix().len() == 9);
        assert!(n.owns_route(&format!("{}10.0.0.0_16-abcd", n.route_prefix())));
        assert!(!n.owns_route("pke-zzzz-10.0.0.0_16-abcd") || n.route_prefix() == "pke-zzzz-");
        let tag = |name: &str, c: Option<&str>| Tag { name: name.into(), color: None, comments: c.map(Into::into), unmodelled: vec![] };
        assert!(n.owns_tag_object(&tag("pano-eks.prod.shop", Some("managed by pano-eks: x"))));
        assert!(!n.owns_tag_object(&tag("pano-eks.prod.shop", Some("hand made"))));
        assert!(!n.owns_tag_object(&tag("pano-eks.prod-2.shop", Some("managed by pano-eks"))));
    }

    #[test]
    fn name_shapes() {
        let n = Names::new("prod");
        let net: Ipv4Net = "192.168.110.0/24".parse().unwrap();
        let a = n.address("shop", "default", "web");
        assert_eq!(fit(a.prefix(), a.tail(), 63), "prod.shop.default.web");
        let r = n.route(net, "192.168.2.1".parse().unwrap());
        let route = fit(r.prefix(), r.tail(), ROUTE_NAME_MAX);
        assert!(route.len() <= ROUTE_NAME_MAX && route.contains("192.168.110.0_24"), "{route}");
        let wide: Ipv4Net = "192.168.100.128/25".parse().unwrap();
        let r = n.route(wide, "192.168.2.1".parse().unwrap());
        let route = fit(r.prefix(), r.tail(), ROUTE_NAME_MAX);
        assert_eq!(route.len(), ROUTE_NAME_MAX, "{route}");
        assert!(n.owns_route(&route));
        assert_eq!(n.cluster_tag(&"c".repeat(200)).len(), TAG_NAME_MAX);
        assert!(n.cluster_tag(&"c".repeat(200)).starts_with("pano-eks.prod.ccc"));
    }
}
