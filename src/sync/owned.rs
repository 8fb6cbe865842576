//! "Is anything of ours uncommitted?" without holding the candidate and the running config at
//! once (issue 18: 16,000 Services are ~48,000 decoded entries per view). Each view is reduced to
//! a [`Fingerprint`] of the entries this deployment owns: per kind, (name, SHA-256 of the decoded
//! entry), sorted by name; security rules in rulebase order, each with the rule before it (a
//! `move` changes only a position, which a partial commit must carry too). The candidate's is
//! taken from the view the converge already holds, which can then be dropped; the running
//! config's as it is read, one entry at a time, so it is never held whole.
//!
//! Two views' fingerprints are equal exactly when their owned entries are equal (the digest is
//! of the entry's full serialization, which skips no field; a SHA-256 collision aside).

use std::collections::BTreeMap;
use std::io::Write;

use pano_eks_core::{Kind, Names, Object, Observed, Scope};
use sha2::{Digest, Sha256};

use crate::panorama::kinds;
use crate::panorama::locations::{KINDS, Locations};
use crate::panorama::observe::{self, Which};
use crate::panorama::{PanoramaClient, PanosError};

/// One owned entry: its name, the rule before it (security rules only), its digest.
type Print = (String, Option<String>, [u8; 32]);

/// What of ours one view holds, per kind (see the module documentation).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    kinds: BTreeMap<Kind, Vec<Print>>,
    /// The last security rule seen, owned or not (the next owned rule's predecessor).
    last_rule: Option<String>,
}

impl Fingerprint {
    /// The fingerprint of a view held in memory.
    pub fn of(names: &Names, o: &Observed) -> Fingerprint {
        let mut f = Fingerprint::default();
        for kind in KINDS {
            for object in kinds::objects(o, kind) {
                f.push(names, &object);
            }
        }
        f.finish()
    }

    /// The fingerprint of the running config, read one container at a time (concurrently) and
    /// never held whole: each entry is reduced to its digest as it is parsed.
    pub async fn running(client: &PanoramaClient, locs: &Locations, names: &Names) -> Result<Fingerprint, PanosError> {
        let reads = KINDS.map(|kind| async move {
            let mut f = Fingerprint::default();
            observe::read_kind_each(client, locs, Which::Running, kind, &mut |o: Object| f.push(names, &o)).await?;
            Ok::<_, PanosError>(f.finish())
        });
        let mut all = Fingerprint::default();
        for f in futures::future::join_all(reads).await {
            all.merge(f?);
        }
        Ok(all)
    }

    /// Adds one entry, in the order its container holds it.
    pub fn push(&mut self, names: &Names, object: &Object) {
        let owned = match object {
            Object::Tag(t) => names.owns_tag_object(t),
            Object::Address(x) => names.owns_tagged(&x.tags),
            Object::Service(x) => names.owns_tagged(&x.tags),
            Object::NatRule(x) => names.owns_tagged(&x.tags),
            Object::StaticRoute(x) => names.owns_route(&x.name),
            Object::AddressGroup(x) => names.owns_tagged(&x.tags),
            Object::SecurityRule(x) => names.owns_tagged(&x.tags),
        };
        let before = match object {
            Object::SecurityRule(r) => self.last_rule.replace(r.name.clone()),
            _ => None,
        };
        if owned {
            self.kinds.entry(object.kind()).or_default().push((object.name().to_owned(), before, digest(object)));
        }
    }

    /// Puts every kind but the security rules in name order (a container's order is
    /// Panorama's business); call once every entry is in.
    pub fn finish(mut self) -> Fingerprint {
        for (kind, v) in &mut self.kinds {
            if *kind != Kind::SecurityRule {
                v.sort();
            }
        }
        self.last_rule = None;
        self
    }

    /// Merges the fingerprint of other kinds (each view's kinds are read concurrently).
    pub fn merge(&mut self, other: Fingerprint) {
        self.kinds.extend(other.kinds);
    }

    /// Whether our entries differ, per scope: (device group, template).
    pub fn differs(&self, other: &Fingerprint) -> (bool, bool) {
        (self.scope(Scope::DeviceGroup) != other.scope(Scope::DeviceGroup), self.scope(Scope::Template) != other.scope(Scope::Template))
    }

    fn scope(&self, s: Scope) -> Vec<(Kind, &[Print])> {
        self.kinds.iter().filter(|(k, v)| k.scope() == s && !v.is_empty()).map(|(k, v)| (*k, v.as_slice())).collect()
    }
}

/// SHA-256 of the entry's JSON serialization (deterministic: fields in declaration order).
fn digest(object: &Object) -> [u8; 32] {
    struct Hashing(Sha256);
    impl Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hashing(Sha256::new());
    serde_json::to_writer(&mut h, object).expect("an entry serializes");
    h.0.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pano_eks_core::panorama::model::SecurityRule;
    use pano_eks_core::{Address, AddressValue, NextHop, StaticRoute};

    fn names() -> Names {
        Names::new("demo")
    }

    const OURS: [&str; 2] = ["pano-eks", "pano-eks.demo.shop"];

    fn address(name: &str, fqdn: &str, tags: &[&str]) -> Address {
        Address {
            name: name.into(),
            value: AddressValue::Fqdn(fqdn.into()),
            description: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            unmodelled: vec![],
        }
    }

    fn differs(a: &Observed, b: &Observed) -> (bool, bool) {
        Fingerprint::of(&names(), a).differs(&Fingerprint::of(&names(), b))
    }

    #[test]
    fn equal_views_agree_whatever_the_order_and_the_foreign_entries() {
        let mut a = Observed::default();
        a.addresses = vec![address("x", "a.example", &OURS), address("y", "b.example", &OURS)];
        let mut b = Observed::default();
        b.addresses = vec![address("y", "b.example", &OURS), address("x", "a.example", &OURS), address("theirs", "c.example", &[])];
        assert_eq!(differs(&a, &b), (false, false));
    }

    #[test]
    fn a_changed_or_missing_owned_entry_differs_in_its_scope_only() {
        let (mut a, mut b) = (Observed::default(), Observed::default());
        a.addresses = vec![address("x", "a.example", &OURS)];
        b.addresses = vec![address("x", "changed.example", &OURS)];
        assert_eq!(differs(&a, &b), (true, false));
        assert_eq!(differs(&a, &Observed::default()), (true, false));
        let route = |hop: &str| StaticRoute {
            name: format!("{}shop-1", names().route_prefix()),
            destination: "10.0.0.0/24".into(),
            nexthop: Some(NextHop::IpAddress(hop.into())),
            interface: None,
            metric: 10,
            admin_dist: None,
            unmodelled: vec![],
        };
        let (mut c, mut d) = (Observed::default(), Observed::default());
        c.static_routes = vec![route("192.168.2.1")];
        d.static_routes = vec![route("192.168.2.2")];
        assert_eq!(differs(&c, &d), (false, true));
        assert_eq!(differs(&c, &Observed::default()), (false, true));
        assert_eq!(differs(&c, &c.clone()), (false, false));
    }

    #[test]
    fn a_moved_security_rule_differs() {
        let rule = |name: &str, tags: &[&str]| SecurityRule {
            name: name.into(),
            from: vec![],
            to: vec![],
            source: vec![],
            destination: vec![],
            application: vec![],
            service: vec![],
            action: "allow".into(),
            profile_group: None,
            log_start: false,
            log_end: true,
            description: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            disabled: false,
            unmodelled: vec![],
            uuid: None,
        };
        let (mut a, mut b) = (Observed::default(), Observed::default());
        a.security_rules = vec![rule("theirs", &[]), rule("ours", &OURS)];
        b.security_rules = vec![rule("ours", &OURS), rule("theirs", &[])];
        assert_eq!(differs(&a, &b), (true, false));
        assert_eq!(differs(&a, &a.clone()), (false, false));
    }
}
